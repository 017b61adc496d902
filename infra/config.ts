import * as fs from "node:fs";
import * as path from "node:path";
import { Duration, RemovalPolicy } from "aws-cdk-lib";
import * as kms from "aws-cdk-lib/aws-kms";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as sns from "aws-cdk-lib/aws-sns";
import * as sfn from "aws-cdk-lib/aws-stepfunctions";
import type { Construct } from "constructs";
import type { EcrEventForwarderProps } from "./constructs/ecr-events.ts";
import type {
  EcrAccess,
  ImageTransferProps,
  MigrationSchedule,
  PromotionProps,
  ProxyProps,
  RegistryCredentials,
} from "./constructs/props.ts";

/**
 * ferry's deployment settings as JSON (cdk.json context, `-c ferry=<json>`, or a file named by
 * `-c ferryConfig=<path>`). Plain values only; they map onto ImageTransferProps one to one, except
 * where a CDK object is needed (noted).
 */
export interface FerryConfig {
  readonly stepThroughputMiBps?: number;
  /** Minutes (→ blobStepTimeout). */
  readonly blobStepTimeoutMinutes?: number;
  readonly blobStepMemoryMiB?: number;
  readonly directMaxBytes?: number;
  readonly stagingExpirationDays?: number;
  /** "retain" | "destroy" (→ removalPolicy). */
  readonly removalPolicy?: "retain" | "destroy";
  readonly autoDeleteObjects?: boolean;
  /** An existing bucket's name, or false (→ accessLogsBucket). */
  readonly accessLogsBucketName?: string | false;
  /** → encryptionKey. */
  readonly encryptionKeyArn?: string;
  /** Days; one of CloudWatch Logs' retention values (→ logRetention). */
  readonly logRetentionDays?: number;
  readonly registries?: Record<string, RegistryCredentials>;
  readonly ecr?: EcrAccess;
  readonly ecrRoleArn?: string;
  readonly promotion?: PromotionProps;
  readonly migrations?: MigrationSchedule[];
  readonly allowedSources?: string[];
  readonly allowedDestinations?: string[];
  readonly privateRegistries?: string[];
  readonly proxy?: ProxyProps;
  /** "ALL" | "ERROR" | "FATAL" | "OFF" (→ stateMachineLogLevel). */
  readonly stateMachineLogLevel?: "ALL" | "ERROR" | "FATAL" | "OFF";
  readonly logExecutionData?: boolean;
  /** → alarmTopic. */
  readonly alarmTopicArn?: string;
  readonly dashboard?: boolean;
  readonly benchWorkers?: boolean;
  readonly namePrefix?: string;
}

const KEYS: ReadonlySet<string> = new Set([
  "stepThroughputMiBps",
  "blobStepTimeoutMinutes",
  "blobStepMemoryMiB",
  "directMaxBytes",
  "stagingExpirationDays",
  "removalPolicy",
  "autoDeleteObjects",
  "accessLogsBucketName",
  "encryptionKeyArn",
  "logRetentionDays",
  "registries",
  "ecr",
  "ecrRoleArn",
  "promotion",
  "migrations",
  "allowedSources",
  "allowedDestinations",
  "privateRegistries",
  "proxy",
  "stateMachineLogLevel",
  "logExecutionData",
  "alarmTopicArn",
  "dashboard",
  "benchWorkers",
  "namePrefix",
]);

/** A context value as given: an object (cdk.json) or a JSON string (`-c key=<json>`). */
function contextObject(value: unknown, what: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  let parsed = value;
  if (typeof value === "string") {
    try {
      parsed = JSON.parse(value);
    } catch (error) {
      throw new Error(`${what} is not valid JSON: ${(error as Error).message}`);
    }
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error(`${what} must be a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** Reads `ferry` or `ferryConfig` (a JSON file path, relative to the working directory) from context. */
export function readFerryConfig(scope: Construct): FerryConfig {
  const file = scope.node.tryGetContext("ferryConfig") as string | undefined;
  const inline = contextObject(scope.node.tryGetContext("ferry"), "context `ferry`");
  if (file !== undefined && inline !== undefined) {
    throw new Error("give ferry's settings either as context `ferry` or as a file `ferryConfig`, not both");
  }
  const config =
    file !== undefined
      ? contextObject(fs.readFileSync(path.resolve(file), "utf8"), `ferryConfig ${file}`)
      : (inline ?? {});
  const unknown = Object.keys(config ?? {}).filter((k) => !KEYS.has(k));
  if (unknown.length > 0) {
    throw new Error(`unknown ferry setting(s): ${unknown.join(", ")} (known: ${[...KEYS].join(", ")})`);
  }
  return (config ?? {}) as FerryConfig;
}

/** FerryConfig → ImageTransferProps (the construct validates the values). */
export function toTransferProps(scope: Construct, config: FerryConfig): ImageTransferProps {
  const removal = config.removalPolicy;
  if (removal !== undefined && removal !== "retain" && removal !== "destroy") {
    throw new Error(`removalPolicy must be "retain" or "destroy", got ${JSON.stringify(removal)}`);
  }
  const level = config.stateMachineLogLevel;
  if (level !== undefined && !Object.values(sfn.LogLevel).includes(level as sfn.LogLevel)) {
    throw new Error(
      `stateMachineLogLevel must be one of ${Object.values(sfn.LogLevel).join(", ")}, got ${JSON.stringify(level)}`,
    );
  }
  return {
    stepThroughputMiBps: config.stepThroughputMiBps,
    blobStepTimeout:
      config.blobStepTimeoutMinutes === undefined
        ? undefined
        : Duration.minutes(config.blobStepTimeoutMinutes),
    blobStepMemoryMiB: config.blobStepMemoryMiB,
    directMaxBytes: config.directMaxBytes,
    stagingExpirationDays: config.stagingExpirationDays,
    removalPolicy:
      removal === undefined
        ? undefined
        : removal === "destroy"
          ? RemovalPolicy.DESTROY
          : RemovalPolicy.RETAIN,
    autoDeleteObjects: config.autoDeleteObjects,
    accessLogsBucket:
      config.accessLogsBucketName === undefined
        ? undefined
        : config.accessLogsBucketName === false
          ? false
          : s3.Bucket.fromBucketName(scope, "AccessLogsBucket", config.accessLogsBucketName),
    encryptionKey: config.encryptionKeyArn
      ? kms.Key.fromKeyArn(scope, "StagingKey", config.encryptionKeyArn)
      : undefined,
    logRetention: config.logRetentionDays,
    registries: config.registries,
    ecr: config.ecr,
    ecrRoleArn: config.ecrRoleArn,
    promotion: config.promotion,
    migrations: config.migrations,
    allowedSources: config.allowedSources,
    allowedDestinations: config.allowedDestinations,
    privateRegistries: config.privateRegistries,
    proxy: config.proxy,
    stateMachineLogLevel: level as sfn.LogLevel | undefined,
    logExecutionData: config.logExecutionData,
    alarmTopic: config.alarmTopicArn
      ? sns.Topic.fromTopicArn(scope, "AlarmTopic", config.alarmTopicArn)
      : undefined,
    dashboard: config.dashboard,
    benchWorkers: config.benchWorkers,
    namePrefix: config.namePrefix,
  };
}

/** `-c ferryForwarder=<json>`: settings of the source-account stack (EcrEventForwarder). */
export function readForwarderConfig(scope: Construct): EcrEventForwarderProps | undefined {
  const value = contextObject(scope.node.tryGetContext("ferryForwarder"), "context `ferryForwarder`");
  return value as EcrEventForwarderProps | undefined;
}
