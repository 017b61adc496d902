import { Duration } from "aws-cdk-lib";
import type * as apigw from "aws-cdk-lib/aws-apigateway";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as actions from "aws-cdk-lib/aws-cloudwatch-actions";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as sns from "aws-cdk-lib/aws-sns";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import type * as sfn from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";

export interface OperationsProps {
  readonly namePrefix: string;
  readonly stateMachines: Readonly<Record<string, sfn.StateMachine>>;
  /** Functions whose errors are not retried by a workflow (triggers): each error is an alarm. */
  readonly triggerFunctions: Readonly<Record<string, lambda.IFunction>>;
  /** Workflow steps shown on the dashboard (their errors surface as failed executions). */
  readonly stepFunctions: Readonly<Record<string, lambda.IFunction>>;
  readonly api?: apigw.RestApi;
  readonly deadLetterQueue?: sqs.IQueue;
  readonly alarmTopic?: sns.ITopic;
  readonly dashboard: boolean;
}

const PERIOD = Duration.minutes(5);

/**
 * Alarms: any failed or timed-out execution of either workflow, any error of a trigger function, any
 * 5XX from the API, any event in the promotion dead-letter queue. Missing data is "not breaching": no
 * traffic is fine. With an `alarmTopic`, alarms and recoveries notify it.
 */
export class Operations extends Construct {
  public readonly alarms: cloudwatch.Alarm[] = [];
  public readonly dashboard: cloudwatch.Dashboard | undefined;

  constructor(scope: Construct, id: string, props: OperationsProps) {
    super(scope, id);

    for (const [name, machine] of Object.entries(props.stateMachines)) {
      this.alarm(`${name}Failed`, props, {
        alarmDescription: `ferry: ${name} executions failed or timed out`,
        metric: new cloudwatch.MathExpression({
          expression: "FILL(failed, 0) + FILL(timedOut, 0)",
          usingMetrics: {
            failed: machine.metricFailed({ period: PERIOD, statistic: "Sum" }),
            timedOut: machine.metricTimedOut({ period: PERIOD, statistic: "Sum" }),
          },
          label: `${name} failed + timed out`,
          period: PERIOD,
        }),
      });
    }
    for (const [name, fn] of Object.entries(props.triggerFunctions)) {
      this.alarm(`${name}Errors`, props, {
        alarmDescription: `ferry: the ${name} function failed`,
        metric: fn.metricErrors({ period: PERIOD, statistic: "Sum" }),
      });
    }
    if (props.api) {
      this.alarm("Api5xx", props, {
        alarmDescription: "ferry: the API answered 5XX",
        metric: props.api.metricServerError({ period: PERIOD, statistic: "Sum" }),
      });
    }
    if (props.deadLetterQueue) {
      this.alarm("PromotionDeadLetters", props, {
        alarmDescription: "ferry: promotion events could not be delivered to the event function",
        metric: props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: PERIOD,
          statistic: "Maximum",
        }),
      });
    }

    if (props.dashboard) {
      const dashboard = new cloudwatch.Dashboard(this, "Dashboard", {
        dashboardName: `${props.namePrefix}-ferry`,
        defaultInterval: Duration.days(1),
      });
      for (const [name, machine] of Object.entries(props.stateMachines)) {
        dashboard.addWidgets(
          new cloudwatch.GraphWidget({
            title: `${name} executions`,
            width: 12,
            left: [
              machine.metricStarted({ period: PERIOD, statistic: "Sum" }),
              machine.metricSucceeded({ period: PERIOD, statistic: "Sum" }),
              machine.metricFailed({ period: PERIOD, statistic: "Sum" }),
              machine.metricTimedOut({ period: PERIOD, statistic: "Sum" }),
            ],
          }),
          new cloudwatch.GraphWidget({
            title: `${name} execution time (p50, p99)`,
            width: 12,
            left: [
              machine.metricTime({ period: PERIOD, statistic: "p50" }),
              machine.metricTime({ period: PERIOD, statistic: "p99" }),
            ],
          }),
        );
      }
      const steps = Object.entries(props.stepFunctions);
      dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: "Step duration p99 (ms)",
          width: 12,
          left: steps.map(([name, fn]) =>
            fn.metricDuration({ period: PERIOD, statistic: "p99", label: name }),
          ),
        }),
        new cloudwatch.GraphWidget({
          title: "Step errors and throttles",
          width: 12,
          left: steps.flatMap(([name, fn]) => [
            fn.metricErrors({ period: PERIOD, statistic: "Sum", label: `${name} errors` }),
            fn.metricThrottles({ period: PERIOD, statistic: "Sum", label: `${name} throttles` }),
          ]),
        }),
      );
      if (props.api) {
        dashboard.addWidgets(
          new cloudwatch.GraphWidget({
            title: "API requests, 4XX, 5XX",
            width: 12,
            left: [
              props.api.metricCount({ period: PERIOD, statistic: "Sum" }),
              props.api.metricClientError({ period: PERIOD, statistic: "Sum" }),
              props.api.metricServerError({ period: PERIOD, statistic: "Sum" }),
            ],
          }),
        );
      }
      dashboard.addWidgets(
        new cloudwatch.AlarmStatusWidget({ title: "Alarms", width: 12, alarms: this.alarms }),
      );
      this.dashboard = dashboard;
    }
  }

  private alarm(
    id: string,
    props: OperationsProps,
    options: { readonly alarmDescription: string; readonly metric: cloudwatch.IMetric },
  ): void {
    const alarm = new cloudwatch.Alarm(this, id, {
      alarmDescription: options.alarmDescription,
      metric: options.metric,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmTopic) {
      alarm.addAlarmAction(new actions.SnsAction(props.alarmTopic));
      alarm.addOkAction(new actions.SnsAction(props.alarmTopic));
    }
    this.alarms.push(alarm);
  }
}
