/**
 * The workflow contract, written once: what the CDK app (infra/) and the code it deploys (functions/,
 * shared/workflow) must agree on — the definition files and the ARN placeholders each one uses, the Lambda
 * functions (handler entry, export, the placeholder of its ARN), which function each Task state invokes,
 * the defaults both sides apply, and the migration name pattern. Data only, no imports: infra/ may import
 * this module (it imports no runtime code). names.ts holds the policy's environment names, likewise.
 */

const MiB = 1024 * 1024;

/** Bytes a stage or upload step moves at most, unless the deployment says (STEP_BYTES). 2 GiB: well inside 15 minutes. */
export const DEFAULT_STEP_BYTES = 2048 * MiB;
/** Blobs up to this size go source → destination in one step, without staging (DIRECT_MAX_BYTES). */
export const DEFAULT_DIRECT_MAX_BYTES = 32 * MiB;
/** Blobs copied at once per image (the copy Map's MaxConcurrency). */
export const DEFAULT_BLOB_CONCURRENCY = 4;

/** A migration's name (schedules, execution names): 1-40 of [A-Za-z0-9_-]. */
export const MIGRATION_NAME = /^[A-Za-z0-9_-]{1,40}$/;

/**
 * The Lambda functions. `placeholder`: the `${…}` a definition uses for the function's ARN (Task states
 * invoke it directly); none for the triggers, which no definition invokes.
 */
export const FUNCTIONS = {
  resolve: {
    entry: "functions/resolve/handler.ts",
    exportName: "handler",
    placeholder: "ResolveFunctionArn",
  },
  stageBlob: {
    entry: "functions/stage-blob/handler.ts",
    exportName: "handler",
    placeholder: "StageBlobFunctionArn",
  },
  uploadBlob: {
    entry: "functions/upload-blob/handler.ts",
    exportName: "handler",
    placeholder: "UploadBlobFunctionArn",
  },
  putManifests: {
    entry: "functions/put-manifests/handler.ts",
    exportName: "handler",
    placeholder: "PutManifestsFunctionArn",
  },
  cleanup: {
    entry: "functions/cleanup/handler.ts",
    exportName: "handler",
    placeholder: "CleanupFunctionArn",
  },
  enumerate: {
    entry: "functions/enumerate/handler.ts",
    exportName: "handler",
    placeholder: "EnumerateFunctionArn",
  },
  summarize: {
    entry: "functions/summarize/handler.ts",
    exportName: "handler",
    placeholder: "SummarizeFunctionArn",
  },
  api: { entry: "functions/api/handler.ts", exportName: "handler", placeholder: undefined },
  event: { entry: "functions/event/handler.ts", exportName: "handler", placeholder: undefined },
  schedule: { entry: "functions/schedule/handler.ts", exportName: "handler", placeholder: undefined },
  benchWorker: {
    entry: "load/lambda.ts",
    exportName: "workerHandler",
    placeholder: "BenchWorkerFunctionArn",
  },
  benchAggregate: {
    entry: "load/lambda.ts",
    exportName: "aggregateHandler",
    placeholder: "BenchAggregateFunctionArn",
  },
} as const;

export type FunctionName = keyof typeof FUNCTIONS;

/** The definition files (repository-relative) and every placeholder each uses: the CDK app fills each one. */
export const DEFINITIONS = {
  copyImage: {
    file: "shared/workflow/copy-image.asl.json",
    placeholders: [
      "ResolveFunctionArn",
      "StageBlobFunctionArn",
      "UploadBlobFunctionArn",
      "PutManifestsFunctionArn",
      "CleanupFunctionArn",
    ],
  },
  bulkMigrate: {
    file: "shared/workflow/bulk-migrate.asl.json",
    placeholders: [
      "EnumerateFunctionArn",
      "SummarizeFunctionArn",
      "CopyImageStateMachineArn",
      "StagingBucket",
    ],
  },
  /** The load-test fan-out (load/fanout.ts runs it locally), deployed with `benchWorkers`. */
  benchFanout: {
    file: "load/fanout.asl.json",
    placeholders: ["BenchWorkerFunctionArn", "BenchAggregateFunctionArn"],
  },
} as const;

/** Task state name → the function it invokes, per definition (several states may share a function). */
export const COPY_IMAGE_TASKS = {
  Resolve: "resolve",
  CopyBlobDirect: "uploadBlob",
  MountBlob: "uploadBlob",
  StageBlob: "stageBlob",
  UploadBlob: "uploadBlob",
  AbortBlob: "cleanup",
  PutManifests: "putManifests",
  Cleanup: "cleanup",
  CleanupAfterFailure: "cleanup",
} as const satisfies Record<string, FunctionName>;

export const BULK_MIGRATE_TASKS = {
  Enumerate: "enumerate",
  Summarize: "summarize",
} as const satisfies Record<string, FunctionName>;

/** Task states of bulk-migrate that are Step Functions integrations, not Lambdas. */
export const BULK_MIGRATE_INTEGRATIONS = {
  CopyImage: "arn:aws:states:::states:startExecution.sync:2",
} as const;
