import { App, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import * as sns from "aws-cdk-lib/aws-sns";
import { describe, expect, it } from "vitest";
import { EcrForwarderStack, FerryStack } from "../../infra/stack.ts";
import { CDK_CONTEXT, FULL, logicalId, synth, testApp } from "./helpers.ts";

const full = synth(FULL);
const { stack, json, template } = full;
const t = stack.transfer;
const fnArn = (name: "api" | "event" | "schedule") => ({
  "Fn::GetAtt": [logicalId(stack, t.functions[name]!.function), "Arn"],
});

describe("API Gateway", () => {
  const apiId = logicalId(stack, t.api.api);

  it("is a regional REST API with POST /transfers and GET /transfers/{id}, both IAM-authorised", () => {
    template.hasResourceProperties("AWS::ApiGateway::RestApi", {
      Name: "Ferry-Transfer-api",
      EndpointConfiguration: { Types: ["REGIONAL"] },
    });
    const methods = Object.values(json.Resources).filter((r) => r.Type === "AWS::ApiGateway::Method");
    expect(methods.map((m) => m.Properties?.HttpMethod).sort()).toEqual(["GET", "POST"]);
    for (const m of methods) {
      expect(m.Properties).toMatchObject({
        AuthorizationType: "AWS_IAM",
        RestApiId: { Ref: apiId },
        Integration: { Type: "AWS_PROXY", IntegrationHttpMethod: "POST" },
      });
      expect(JSON.stringify(m.Properties?.Integration)).toContain(JSON.stringify(fnArn("api")));
    }
    template.hasResourceProperties("AWS::ApiGateway::Resource", { PathPart: "transfers" });
    template.hasResourceProperties("AWS::ApiGateway::Resource", { PathPart: "{id}" });
  });

  it("validates the POST body against the copy request's shape", () => {
    template.hasResourceProperties("AWS::ApiGateway::RequestValidator", {
      ValidateRequestBody: true,
      ValidateRequestParameters: true,
    });
    template.hasResourceProperties("AWS::ApiGateway::Model", {
      ContentType: "application/json",
      Schema: Match.objectLike({
        required: ["source", "destination"],
        type: "object",
        additionalProperties: false,
      }),
    });
    template.hasResourceProperties("AWS::ApiGateway::Method", {
      HttpMethod: "POST",
      RequestModels: { "application/json": Match.anyValue() },
      RequestValidatorId: Match.anyValue(),
    });
  });

  it("stage v1: JSON access logs, INFO execution logs without bodies, metrics, X-Ray, throttling", () => {
    template.hasResourceProperties("AWS::ApiGateway::Stage", {
      StageName: "v1",
      TracingEnabled: true,
      AccessLogSetting: { DestinationArn: { "Fn::GetAtt": [logicalId(stack, t.api.accessLogs), "Arn"] } },
      MethodSettings: [
        Match.objectLike({
          LoggingLevel: "INFO",
          DataTraceEnabled: false,
          MetricsEnabled: true,
          ThrottlingRateLimit: 50,
          ThrottlingBurstLimit: 100,
        }),
      ],
    });
    template.resourceCountIs("AWS::ApiGateway::Account", 1);
  });

  it("only API Gateway may invoke the API function, for these two methods", () => {
    const permissions = Object.values(json.Resources).filter(
      (r) =>
        r.Type === "AWS::Lambda::Permission" &&
        JSON.stringify(r.Properties?.FunctionName).includes(logicalId(stack, t.functions.api!.function)),
    );
    expect(permissions.length).toBe(4); // each method, and its console test invocation
    for (const p of permissions) {
      expect(p.Properties).toMatchObject({
        Action: "lambda:InvokeFunction",
        Principal: "apigateway.amazonaws.com",
      });
      expect(JSON.stringify(p.Properties?.SourceArn)).toMatch(/\/(POST|GET)\/transfers/);
    }
  });
});

describe("promotion (EventBridge)", () => {
  it("matches successful ECR pushes of the named repositories and tags, here and in the source accounts", () => {
    template.hasResourceProperties("AWS::Events::Rule", {
      EventPattern: {
        source: ["aws.ecr"],
        "detail-type": ["ECR Image Action"],
        account: [{ Ref: "AWS::AccountId" }, "111111111111"],
        detail: {
          "action-type": ["PUSH"],
          result: ["SUCCESS"],
          "repository-name": ["app", { wildcard: "team-*" }],
          "image-tag": [{ wildcard: "v*" }, "latest"],
        },
      },
      State: "ENABLED",
      Targets: [
        {
          Arn: fnArn("event"),
          Id: Match.anyValue(),
          RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 7200 },
          DeadLetterConfig: {
            Arn: { "Fn::GetAtt": [logicalId(stack, t.promotion!.deadLetterQueue), "Arn"] },
          },
        },
      ],
    });
    template.hasResourceProperties("AWS::SQS::Queue", {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 1209600,
    });
  });

  it("lets each source account put events on the default bus (and nobody else)", () => {
    template.resourceCountIs("AWS::Events::EventBusPolicy", 1);
    template.hasResourceProperties("AWS::Events::EventBusPolicy", {
      EventBusName: "default",
      StatementId: "Ferry-Transfer-111111111111",
      Statement: {
        Effect: "Allow",
        Action: "events:PutEvents",
        Principal: {
          AWS: { "Fn::Join": ["", ["arn:", { Ref: "AWS::Partition" }, ":iam::111111111111:root"]] },
        },
      },
    });
  });

  it("without sourceAccounts: this account only, no bus policy; without promotion: no rule, no event function", () => {
    const local = synth({ promotion: { destination: "ghcr.io/acme", repositories: ["app"] } });
    local.template.resourceCountIs("AWS::Events::EventBusPolicy", 0);
    local.template.hasResourceProperties("AWS::Events::Rule", {
      EventPattern: Match.objectLike({
        account: Match.absent(),
        detail: Match.objectLike({ "image-tag": [{ exists: true }] }),
      }),
    });
    const none = synth();
    none.template.resourceCountIs("AWS::Events::Rule", 0);
    expect(none.stack.transfer.functions.event).toBeUndefined();
  });

  it("the source-account stack forwards matching pushes to ferry's event bus", () => {
    const app = new App({ context: CDK_CONTEXT });
    const target = "arn:aws:events:us-east-1:123456789012:event-bus/default";
    const fwd = new EcrForwarderStack(app, "Fwd", {
      forwarder: { targetEventBusArn: target, repositories: ["app", "team-*"] },
    });
    const tpl = Template.fromStack(fwd);
    tpl.hasResourceProperties("AWS::Events::Rule", {
      EventPattern: {
        source: ["aws.ecr"],
        "detail-type": ["ECR Image Action"],
        detail: {
          "action-type": ["PUSH"],
          result: ["SUCCESS"],
          "repository-name": ["app", { wildcard: "team-*" }],
          "image-tag": [{ exists: true }],
        },
      },
      Targets: [{ Arn: target, Id: Match.anyValue(), RoleArn: Match.anyValue() }],
    });
    tpl.hasResourceProperties("AWS::IAM::Policy", {
      PolicyDocument: { Statement: [{ Action: "events:PutEvents", Effect: "Allow", Resource: target }] },
    });
    expect(
      () =>
        new EcrForwarderStack(new App(), "Bad", {
          forwarder: { targetEventBusArn: "default", repositories: ["app"] },
        }),
    ).toThrow(/targetEventBusArn is not an event bus ARN/);
  });
});

describe("migration schedules (EventBridge Scheduler)", () => {
  it("one schedule per migration, invoking the schedule function with its name, the tick's time and config", () => {
    template.resourceCountIs("AWS::Scheduler::Schedule", 2);
    const role = { "Fn::GetAtt": [logicalId(stack, t.schedules.role!), "Arn"] };
    template.hasResourceProperties("AWS::Scheduler::Schedule", {
      ScheduleExpression: "cron(0 3 * * ? *)",
      ScheduleExpressionTimezone: "Europe/Paris",
      State: "ENABLED",
      FlexibleTimeWindow: { Mode: "OFF" },
      Target: {
        Arn: fnArn("schedule"),
        RoleArn: role,
        Input: JSON.stringify({
          name: "nightly-ghcr",
          time: "<aws.scheduler.scheduled-time>",
          config: {
            source: "ghcr.io/acme",
            destination: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme",
          },
        }),
        RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 3600 },
      },
    });
    template.hasResourceProperties("AWS::Scheduler::Schedule", {
      ScheduleExpression: "rate(7 days)",
      ScheduleExpressionTimezone: "UTC",
      Target: Match.objectLike({ Arn: fnArn("schedule"), RoleArn: role }),
    });
  });

  it("no migrations: no schedules and no scheduler role", () => {
    const none = synth();
    none.template.resourceCountIs("AWS::Scheduler::Schedule", 0);
    expect(none.stack.transfer.schedules.role).toBeUndefined();
  });
});

describe("operations", () => {
  it("alarms on failed or timed-out executions of both workflows, trigger errors, API 5XX, dead letters", () => {
    for (const m of [t.copyImage, t.bulkMigrate]) {
      template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        Threshold: 1,
        ComparisonOperator: "GreaterThanOrEqualToThreshold",
        TreatMissingData: "notBreaching",
        Metrics: Match.arrayWith([
          Match.objectLike({ Expression: "FILL(failed, 0) + FILL(timedOut, 0)" }),
          Match.objectLike({
            Id: "failed",
            MetricStat: Match.objectLike({
              Metric: {
                Namespace: "AWS/States",
                MetricName: "ExecutionsFailed",
                Dimensions: [{ Name: "StateMachineArn", Value: { Ref: logicalId(stack, m) } }],
              },
            }),
          }),
        ]),
      });
    }
    for (const name of ["api", "event", "schedule"] as const) {
      template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        Namespace: "AWS/Lambda",
        MetricName: "Errors",
        Dimensions: [{ Name: "FunctionName", Value: { Ref: logicalId(stack, t.functions[name]!.function) } }],
      });
    }
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: "AWS/ApiGateway",
      MetricName: "5XXError",
    });
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: "AWS/SQS",
      MetricName: "ApproximateNumberOfMessagesVisible",
    });
    template.resourceCountIs("AWS::CloudWatch::Alarm", 7);
    template.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
  });

  it("notifies an SNS topic when given one; the dashboard can be left out", () => {
    const app = testApp();
    const ops = new Stack(app, "Ops");
    new sns.Topic(ops, "Other", { enforceSSL: true }); // (a stack needs one resource)
    const topic = sns.Topic.fromTopicArn(ops, "Topic", "arn:aws:sns:us-east-1:123456789012:ops");
    const ferry = new FerryStack(app, "Ferry", { transfer: { alarmTopic: topic, dashboard: false } });
    const tpl = Template.fromStack(ferry);
    tpl.allResourcesProperties("AWS::CloudWatch::Alarm", {
      AlarmActions: ["arn:aws:sns:us-east-1:123456789012:ops"],
      OKActions: ["arn:aws:sns:us-east-1:123456789012:ops"],
    });
    tpl.resourceCountIs("AWS::CloudWatch::Dashboard", 0);
  });

  it("outputs the API URL, the bucket, and the state machine ARNs", () => {
    const outputs = json.Outputs as Record<string, { Value: unknown }>;
    expect(outputs.StagingBucketName?.Value).toEqual({ Ref: logicalId(stack, t.stagingBucket) });
    expect(outputs.CopyImageStateMachineArn?.Value).toEqual({ Ref: logicalId(stack, t.copyImage) });
    expect(outputs.BulkMigrateStateMachineArn?.Value).toEqual({ Ref: logicalId(stack, t.bulkMigrate) });
    expect(outputs.BenchFanoutStateMachineArn?.Value).toEqual({ Ref: logicalId(stack, t.benchFanout!) });
    expect(JSON.stringify(outputs.ApiUrl?.Value)).toContain(logicalId(stack, t.api.api));
    // Only the secret the stack created needs filling in (the others were given by ARN).
    expect(outputs.RegistrySecret0?.Value).toEqual({
      Ref: logicalId(stack, t.registrySecrets.secrets.get("ghcr.io")!),
    });
    expect(outputs.RegistrySecret1).toBeUndefined();
  });
});
