import { Aws, Duration, Stack, TimeZone } from "aws-cdk-lib";
import * as apigw from "aws-cdk-lib/aws-apigateway";
import * as events from "aws-cdk-lib/aws-events";
import * as eventTargets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import * as scheduler from "aws-cdk-lib/aws-scheduler";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { suppress } from "../nag.ts";
import { ecrPushPattern } from "./ecr-events.ts";
import type { MigrationSchedule, PromotionProps } from "./props/triggers.ts";

export interface TransferApiProps {
  readonly handler: lambda.IFunction;
  readonly logRetention: logs.RetentionDays;
  readonly name: string;
}

/**
 * REST API: `POST /transfers` starts a copy, `GET /transfers/{id}` describes it. Every method needs
 * SigV4 (AuthorizationType.IAM): callers need `execute-api:Invoke` on the method's ARN. The function
 * starts the execution and answers at once (API Gateway integrations time out at 29 s).
 */
export class TransferApi extends Construct {
  public readonly api: apigw.RestApi;
  public readonly accessLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: TransferApiProps) {
    super(scope, id);
    this.accessLogs = new logs.LogGroup(this, "AccessLogs", { retention: props.logRetention });
    this.api = new apigw.RestApi(this, "Api", {
      restApiName: props.name,
      description: "ferry: start and follow image copies",
      endpointTypes: [apigw.EndpointType.REGIONAL],
      // Execution logging (loggingLevel) needs the account-level CloudWatch role; CDK creates it.
      cloudWatchRole: true,
      defaultMethodOptions: { authorizationType: apigw.AuthorizationType.IAM },
      deployOptions: {
        stageName: "v1",
        accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogs),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: apigw.MethodLoggingLevel.INFO,
        dataTraceEnabled: false, // request bodies name registries; keep them out of the logs
        metricsEnabled: true,
        tracingEnabled: true,
        throttlingRateLimit: 50,
        throttlingBurstLimit: 100,
      },
    });

    const integration = new apigw.LambdaIntegration(props.handler, { proxy: true });
    const validator = new apigw.RequestValidator(this, "Validator", {
      restApi: this.api,
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    // The shape of CopyRequestSchema (shared/workflow/schemas.ts), checked at the edge so that malformed
    // bodies never reach the function; the function validates in depth (references, platforms).
    const transferRequest = this.api.addModel("TransferRequest", {
      contentType: "application/json",
      description: "A copy request: source and destination image references (CopyRequestSchema)",
      schema: {
        schema: apigw.JsonSchemaVersion.DRAFT4,
        title: "TransferRequest",
        type: apigw.JsonSchemaType.OBJECT,
        required: ["source", "destination"],
        // as CopyRequestSchema: a misspelt key is refused, not ignored
        additionalProperties: false,
        properties: {
          source: { type: apigw.JsonSchemaType.STRING, minLength: 1, maxLength: 512 },
          destination: { type: apigw.JsonSchemaType.STRING, minLength: 1, maxLength: 512 },
          tags: {
            type: apigw.JsonSchemaType.ARRAY,
            maxItems: 50,
            items: { type: apigw.JsonSchemaType.STRING, pattern: "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$" },
          },
          platforms: {
            type: apigw.JsonSchemaType.ARRAY,
            maxItems: 32,
            items: { type: apigw.JsonSchemaType.STRING },
          },
          options: { type: apigw.JsonSchemaType.OBJECT },
          requestId: { type: apigw.JsonSchemaType.STRING, pattern: "^[A-Za-z0-9_.-]{1,64}$" },
        },
      },
    });

    const transfers = this.api.root.addResource("transfers");
    transfers.addMethod("POST", integration, {
      authorizationType: apigw.AuthorizationType.IAM,
      requestValidator: validator,
      requestModels: { "application/json": transferRequest },
    });
    transfers.addResource("{id}").addMethod("GET", integration, {
      authorizationType: apigw.AuthorizationType.IAM,
      requestValidator: validator,
      requestParameters: { "method.request.path.id": true },
    });

    suppress(this.api, [
      [
        "AwsSolutions-APIG3",
        "Every method requires SigV4 (IAM authorization), so unsigned traffic is refused before any integration runs; stage throttling caps the rate. Associate a WAFv2 web ACL with the stage if the API faces untrusted networks.",
      ],
      [
        "AwsSolutions-COG4",
        "The API uses IAM authorization instead of a Cognito user pool: its callers are AWS principals (CI roles, operators, other services), not end users.",
      ],
      [
        "AwsSolutions-IAM4",
        "The account-level API Gateway CloudWatch role uses AmazonAPIGatewayPushToCloudWatchLogs, the AWS managed policy API Gateway documents for execution logging (needed by APIG6).",
        ["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"],
      ],
    ]);
  }

  /** The invoke URL of the `v1` stage. */
  public get url(): string {
    return this.api.url;
  }
}

export interface PromotionTriggerProps {
  readonly promotion: PromotionProps;
  readonly handler: lambda.IFunction;
  readonly namePrefix: string;
}

/**
 * Promotion: an EventBridge rule on the default bus matches successful ECR pushes to the named
 * repositories and tags, in this account and in `sourceAccounts` (whose events arrive through an
 * EcrEventForwarder there and the bus policy here), and invokes the event function. Failed deliveries
 * land in an encrypted dead-letter queue.
 */
export class PromotionTrigger extends Construct {
  public readonly rule: events.Rule;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly busPolicies: events.CfnEventBusPolicy[] = [];

  constructor(scope: Construct, id: string, props: PromotionTriggerProps) {
    super(scope, id);
    const { promotion } = props;
    const sourceAccounts = promotion.sourceAccounts ?? [];

    this.deadLetterQueue = new sqs.Queue(this, "DeadLetters", {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    suppress(this.deadLetterQueue, [
      ["AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the promotion rule's target."],
    ]);

    this.rule = new events.Rule(this, "Rule", {
      description: "ferry: promote images pushed to ECR",
      eventPattern: ecrPushPattern(
        promotion.repositories,
        promotion.tags,
        sourceAccounts.length > 0 ? [Aws.ACCOUNT_ID, ...sourceAccounts] : undefined,
      ),
    });
    this.rule.addTarget(
      new eventTargets.LambdaFunction(props.handler, {
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: 8,
        maxEventAge: Duration.hours(2),
      }),
    );

    // L1 on purpose: the L2 EventBusPolicy renders its statement only under a feature flag
    // (@aws-cdk/aws-events:requireEventBusPolicySid). (cdk-nag's EVB1 check reads the deprecated
    // `principal` property, hence a jsii deprecation notice at synth.)
    const defaultBusArn = Stack.of(this).formatArn({
      service: "events",
      resource: "event-bus",
      resourceName: "default",
    });
    for (const account of sourceAccounts) {
      this.busPolicies.push(
        new events.CfnEventBusPolicy(this, `AllowPutEvents${account}`, {
          eventBusName: "default",
          statementId: `${props.namePrefix}-${account}`,
          statement: {
            Sid: `${props.namePrefix}-${account}`,
            Effect: "Allow",
            Principal: { AWS: `arn:${Aws.PARTITION}:iam::${account}:root` },
            Action: "events:PutEvents",
            Resource: defaultBusArn,
          },
        }),
      );
    }
  }
}

export interface MigrationSchedulesProps {
  readonly migrations: readonly MigrationSchedule[];
  readonly handler: lambda.IFunction;
}

/**
 * One EventBridge Scheduler schedule per migration, invoking the schedule function with
 * `{"name", "time": <scheduled time>, "config"}`. The schedules share a role that may invoke that
 * function only.
 */
export class MigrationSchedules extends Construct {
  public readonly schedules: scheduler.Schedule[] = [];
  public readonly role: iam.Role | undefined;

  constructor(scope: Construct, id: string, props: MigrationSchedulesProps) {
    super(scope, id);
    if (props.migrations.length === 0) return;
    const stack = Stack.of(this);
    const role = new iam.Role(this, "Role", {
      description: "ferry: EventBridge Scheduler invokes the schedule function",
      assumedBy: new iam.ServicePrincipal("scheduler.amazonaws.com", {
        conditions: {
          StringEquals: {
            "aws:SourceAccount": Aws.ACCOUNT_ID,
            "aws:SourceArn": stack.formatArn({
              service: "scheduler",
              resource: "schedule-group",
              resourceName: "default",
            }),
          },
        },
      }),
    });
    // The unqualified ARN only (grantInvoke would add a `:*` version wildcard).
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ["lambda:InvokeFunction"], resources: [props.handler.functionArn] }),
    );
    this.role = role;

    for (const migration of props.migrations) {
      // Scheduler fills <aws.scheduler.scheduled-time> in: the schedule function names the execution after
      // it, so a retried or repeated delivery of one tick starts one migration.
      const input = scheduler.ScheduleTargetInput.fromObject({
        name: migration.name,
        time: "<aws.scheduler.scheduled-time>",
        config: migration.config,
      });
      const target: scheduler.IScheduleTarget = {
        bind: () => ({
          arn: props.handler.functionArn,
          role,
          input,
          retryPolicy: { maximumRetryAttempts: 3, maximumEventAgeInSeconds: Duration.hours(1).toSeconds() },
        }),
      };
      this.schedules.push(
        new scheduler.Schedule(this, `Schedule-${migration.name}`, {
          description: `ferry bulk migration "${migration.name}"`,
          schedule: scheduler.ScheduleExpression.expression(
            migration.schedule,
            TimeZone.of(migration.timeZone ?? "UTC"),
          ),
          target,
          enabled: migration.enabled ?? true,
        }),
      );
    }
  }
}
