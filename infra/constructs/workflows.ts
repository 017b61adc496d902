import { Annotations, ArnFormat, Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import * as sfn from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";
import { FUNCTIONS, type FunctionName } from "../../shared/workflow/contract.ts";
import {
  BENCH_FANOUT_DEFINITION,
  BULK_MIGRATE_DEFINITION,
  COPY_IMAGE_DEFINITION,
  type LoadedDefinition,
  loadDefinition,
  nonStandardDistributedMaps,
  type WorkflowDefinition,
} from "../definitions.ts";
import { resourceFinding, suppress } from "../nag.ts";
import { grantStagingKey } from "./grants.ts";
import { STAGING_PREFIXES } from "./staging-bucket.ts";

export interface WorkflowsProps {
  readonly sourceRoot: string;
  readonly namePrefix: string;
  readonly logRetention: logs.RetentionDays;
  /** What the state machines log (ERROR by default: no transition of a healthy run). */
  readonly logLevel: sfn.LogLevel;
  /** Whether the logs include state inputs and outputs. */
  readonly logExecutionData: boolean;
  readonly stagingBucket: s3.IBucket;
  readonly functions: {
    readonly resolve: lambda.IFunction;
    readonly stageBlob: lambda.IFunction;
    readonly uploadBlob: lambda.IFunction;
    readonly putManifests: lambda.IFunction;
    readonly cleanup: lambda.IFunction;
    readonly enumerate: lambda.IFunction;
    readonly summarize: lambda.IFunction;
  };
  /** The load-test fan-out's functions: deploys load/fanout.asl.json too. */
  readonly bench?: { readonly worker: lambda.IFunction; readonly aggregate: lambda.IFunction };
}

const REASON_LOG_LEVEL =
  "The state machines log ERROR events by default (stateMachineLogLevel; ALL on request): every execution's full history stays in Step Functions for 90 days, failures reach CloudWatch Logs and the alarms, and a healthy run does not pay for logging each transition.";

/**
 * EventBridge managed rule that Step Functions creates for `.sync` integrations with Step Functions
 * (https://docs.aws.amazon.com/step-functions/latest/dg/stepfunctions-iam.html).
 */
const SYNC_RULE_NAME = "StepFunctionsGetEventsForStepFunctionsExecutionRule";

const REASON_STAR =
  "Actions without resource-level permissions: X-Ray tracing (xray:PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets) and CloudWatch Logs vended-log delivery for Step Functions logging (logs:CreateLogDelivery/GetLogDelivery/UpdateLogDelivery/DeleteLogDelivery/ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups). CDK adds them for tracingEnabled and logs.";

/**
 * The state machines, from the ASL files the local runner executes (shared/workflow, bench/load):
 * STANDARD, logging to CloudWatch Logs at `logLevel` (ERROR and no execution data unless configured),
 * traced with X-Ray. Task resources are Lambda ARNs used directly (no `Payload` wrapping), so CDK infers
 * no permissions: each grant below is written out.
 */
export class Workflows extends Construct {
  public readonly copyImage: sfn.StateMachine;
  public readonly bulkMigrate: sfn.StateMachine;
  public readonly benchFanout: sfn.StateMachine | undefined;
  public readonly definitions: Readonly<Record<string, LoadedDefinition>>;

  constructor(scope: Construct, id: string, props: WorkflowsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const f = props.functions;
    const definitions: Record<string, LoadedDefinition> = {};

    const bulkDefinition = loadDefinition(props.sourceRoot, BULK_MIGRATE_DEFINITION);
    const express = nonStandardDistributedMaps(bulkDefinition.parsed);
    if (express.length > 0) {
      throw new Error(
        `ImageTransfer: ${BULK_MIGRATE_DEFINITION.file}: the Distributed Map state(s) ${express.join(", ")} must run ` +
          'STANDARD child executions (ProcessorConfig.ExecutionType "STANDARD"): copying a big layer outlives Express\'s 5 minutes',
      );
    }

    const copyName = `${props.namePrefix}-copy-image`;
    const bulkName = `${props.namePrefix}-bulk-migrate`;

    // Every `${…FunctionArn}` the contract names, filled with that function's ARN.
    const arns = functionArns({
      ...f,
      ...(props.bench ? { benchWorker: props.bench.worker, benchAggregate: props.bench.aggregate } : {}),
    });
    this.copyImage = this.stateMachine(
      "CopyImage",
      copyName,
      COPY_IMAGE_DEFINITION,
      props,
      definitions,
      arns,
    );
    this.allowInvoke(this.copyImage, [f.resolve, f.stageBlob, f.uploadBlob, f.putManifests, f.cleanup]);

    this.bulkMigrate = this.stateMachine(
      "BulkMigrate",
      bulkName,
      BULK_MIGRATE_DEFINITION,
      props,
      definitions,
      {
        ...arns,
        CopyImageStateMachineArn: this.copyImage.stateMachineArn,
        StagingBucket: props.stagingBucket.bucketName,
      },
    );
    this.allowInvoke(this.bulkMigrate, [f.enumerate, f.summarize]);

    const bulkRole = this.bulkMigrate.role;
    const childExecutions = executionsOf(stack, copyName);
    const bulkObjects = props.stagingBucket.arnForObjects(`${STAGING_PREFIXES.bulk}*`);
    // Children: each item starts a copy-image execution and waits for it (.sync:2).
    bulkRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ["states:StartExecution"],
        resources: [this.copyImage.stateMachineArn],
      }),
    );
    bulkRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ["states:DescribeExecution", "states:StopExecution"],
        resources: [childExecutions],
      }),
    );
    bulkRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
        resources: [stack.formatArn({ service: "events", resource: "rule", resourceName: SYNC_RULE_NAME })],
      }),
    );
    const mapRunExecutions = this.allowOwnMapRuns(this.bulkMigrate, bulkName, [
      "states:DescribeExecution",
      "states:StopExecution",
      "states:RedriveExecution",
    ]);
    // ItemReader reads the item list and ResultWriter writes the results: bulk/<id>/ in staging.
    bulkRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
        resources: [bulkObjects],
      }),
    );
    if (props.stagingBucket.encryptionKey) grantStagingKey(bulkRole, props.stagingBucket.encryptionKey, true);

    suppress(this.bulkMigrate, [
      [
        "AwsSolutions-IAM5",
        "Execution names are chosen at run time: DescribeExecution/StopExecution are scoped to the executions of the copy-image machine (the .sync children) and to this machine's own Distributed Map child executions.",
        [resourceFinding(this, childExecutions), resourceFinding(this, mapRunExecutions)],
      ],
      [
        "AwsSolutions-IAM5",
        "ItemReader and ResultWriter read and write the objects of each migration, whose keys are chosen at run time, under the bulk/ prefix of the staging bucket only.",
        [resourceFinding(this, bulkObjects)],
      ],
    ]);

    if (props.bench) {
      const benchName = `${props.namePrefix}-bench-fanout`;
      this.benchFanout = this.stateMachine(
        "BenchFanout",
        benchName,
        BENCH_FANOUT_DEFINITION,
        props,
        definitions,
        arns,
      );
      this.allowInvoke(this.benchFanout, [props.bench.worker, props.bench.aggregate]);
      // The workers are a Distributed Map (an inline Map runs at most 40 at once).
      const benchChildren = this.allowOwnMapRuns(this.benchFanout, benchName, [
        "states:DescribeExecution",
        "states:StopExecution",
      ]);
      suppress(this.benchFanout, [
        [
          "AwsSolutions-IAM5",
          "The Distributed Map's child executions are named at run time: DescribeExecution/StopExecution are scoped to this machine's own map-run executions.",
          [resourceFinding(this, benchChildren)],
        ],
      ]);
    }
    this.definitions = definitions;
  }

  /**
   * A Distributed Map runs its child workflows as executions of this very state machine: its role may
   * start them (the ARN is built from the fixed name: referencing the resource would make the role depend
   * on itself) and `watch` them. Returns the children's execution ARNs (named at run time).
   */
  private allowOwnMapRuns(machine: sfn.StateMachine, name: string, watch: string[]): string {
    const stack = Stack.of(this);
    const self = stack.formatArn({
      service: "states",
      resource: "stateMachine",
      resourceName: name,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    machine.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ["states:StartExecution"], resources: [self] }),
    );
    const children = executionsOf(stack, `${name}/*`);
    machine.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: watch, resources: [children] }));
    return children;
  }

  private stateMachine(
    id: string,
    name: string,
    contract: WorkflowDefinition,
    props: WorkflowsProps,
    definitions: Record<string, LoadedDefinition>,
    substitutions: Record<string, string>,
  ): sfn.StateMachine {
    const definition = loadDefinition(props.sourceRoot, contract);
    definitions[id] = definition;
    const unused = contract.substitutions.filter((key) => !definition.placeholders.has(key));
    if (unused.length > 0) {
      Annotations.of(this).addWarningV2(
        "ferry:unusedPlaceholder",
        `${contract.file} does not use ${unused.map((u) => `\${${u}}`).join(", ")}: check it against the contract`,
      );
    }
    const logGroup = new logs.LogGroup(this, `${id}Logs`, {
      // The /aws/vendedlogs/ prefix keeps CloudWatch Logs' resource policy small
      // (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html).
      logGroupName: `/aws/vendedlogs/states/${name}`,
      retention: props.logRetention,
    });
    const machine = new sfn.StateMachine(this, id, {
      stateMachineName: name,
      stateMachineType: sfn.StateMachineType.STANDARD,
      // The file's text, embedded in the template unchanged (fromFile would upload it as an S3 asset);
      // CloudFormation replaces the ${...} placeholders with DefinitionSubstitutions.
      definitionBody: sfn.DefinitionBody.fromString(definition.text),
      definitionSubstitutions: Object.fromEntries(
        Object.entries(substitutions).filter(([key]) => definition.placeholders.has(key)),
      ),
      logs: { destination: logGroup, level: props.logLevel, includeExecutionData: props.logExecutionData },
      tracingEnabled: true,
    });
    suppress(machine, [
      ["AwsSolutions-IAM5", REASON_STAR, ["Resource::*"]],
      ...(props.logLevel === sfn.LogLevel.ALL ? [] : ([["AwsSolutions-SF1", REASON_LOG_LEVEL]] as const)),
    ]);
    return machine;
  }

  /** lambda:InvokeFunction on the unqualified ARNs the definition names (no `:*` version wildcard). */
  private allowInvoke(machine: sfn.StateMachine, functions: readonly lambda.IFunction[]): void {
    machine.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ["lambda:InvokeFunction"],
        resources: functions.map((fn) => fn.functionArn),
      }),
    );
  }
}

/** The ARNs of a state machine's executions (their names are chosen at run time). */
function executionsOf(stack: Stack, machineName: string): string {
  return stack.formatArn({
    service: "states",
    resource: "execution",
    resourceName: `${machineName}:*`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

/** `${…FunctionArn}` → the function's ARN, for every function the contract gives a placeholder and `functions` has. */
function functionArns(functions: Partial<Record<FunctionName, lambda.IFunction>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(FUNCTIONS) as [
    FunctionName,
    (typeof FUNCTIONS)[FunctionName],
  ][]) {
    const fn = functions[name];
    if (spec.placeholder && fn) out[spec.placeholder] = fn.functionArn;
  }
  return out;
}
