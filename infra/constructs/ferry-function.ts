import * as fs from "node:fs";
import * as path from "node:path";
import { Duration } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { type FunctionName as ContractFunction, FUNCTIONS } from "../../shared/workflow/contract.ts";
import { LAMBDA_FILE, lambdaCodeDirectory } from "../bundling/layout.ts";

/** What one Lambda function runs and how it is sized. */
export interface FunctionSpec {
  /** Its code: the directory `dist/lambda/<bundle>` of the package (the contract's function name). */
  readonly bundle: ContractFunction;
  /** Source file its code is built from, relative to the repository root. */
  readonly entry: string;
  /** Exported handler name. */
  readonly exportName: string;
  readonly memoryMiB: number;
  readonly timeout: Duration;
  readonly description: string;
  /** Streams blob bytes for minutes: gets STREAMING_ENVIRONMENT. */
  readonly streams?: boolean;
}

/**
 * For processes that stream blobs: glibc's malloc returns freed memory at the top of its heap to the
 * kernel once 128 KiB are free, so a stream of 64 KiB socket buffers faults its pages in again and again
 * (measured: 50,000-370,000 page faults and up to half the CPU of a 3 GB download). Keeping up to 64 MiB
 * cuts that to ~25,000 faults and 15-40 % of the CPU per byte. The `ferry` executable sets the same on its
 * shebang line (cli/ferry.js; a test keeps the two equal). glibc reads it at process start, so it is an
 * environment variable, not code.
 */
export const STREAMING_ENVIRONMENT: Readonly<Record<string, string>> = {
  MALLOC_TRIM_THRESHOLD_: String(64 * 1024 * 1024),
};

/**
 * Every function ferry deploys, sized per step. Blob steps stream bytes for up to 15 minutes at one full
 * vCPU (memory and timeout come from props); the rest handle small JSON and finish in seconds.
 */
/** A function's code as the workflow contract names it (shared/workflow/contract.ts). */
const code = (name: ContractFunction) => ({
  bundle: name,
  entry: FUNCTIONS[name].entry,
  exportName: FUNCTIONS[name].exportName,
});

export const FUNCTION_SPECS = {
  resolve: {
    ...code("resolve"),
    memoryMiB: 512,
    timeout: Duration.minutes(2),
    description: "ferry copy: resolve the source manifest(s) into a transfer plan",
  },
  stageBlob: {
    ...code("stageBlob"),
    memoryMiB: 1769, // replaced by blobStepMemoryMiB
    timeout: Duration.minutes(15), // replaced by blobStepTimeout
    description:
      "ferry copy: stage up to STEP_BYTES of a blob from the source registry into S3 (or copy it directly)",
    streams: true,
  },
  uploadBlob: {
    ...code("uploadBlob"),
    memoryMiB: 1769,
    timeout: Duration.minutes(15),
    description: "ferry copy: upload up to STEP_BYTES of a staged blob to the destination registry",
    streams: true,
  },
  putManifests: {
    ...code("putManifests"),
    memoryMiB: 512,
    timeout: Duration.minutes(2),
    description: "ferry copy: put the manifests, children first, then the index and tags",
  },
  cleanup: {
    ...code("cleanup"),
    memoryMiB: 256,
    timeout: Duration.minutes(1),
    description: "ferry copy: delete staged objects and abort unfinished multipart uploads",
  },
  enumerate: {
    ...code("enumerate"),
    memoryMiB: 512,
    timeout: Duration.minutes(5), // paginates catalogs and tag lists
    description: "ferry bulk migration: list the images to copy into an S3 item list",
  },
  summarize: {
    ...code("summarize"),
    memoryMiB: 512,
    timeout: Duration.minutes(2),
    description: "ferry bulk migration: summarise the Distributed Map results",
  },
  api: {
    ...code("api"),
    memoryMiB: 256,
    timeout: Duration.seconds(10), // API Gateway gives up after 29 s; start executions asynchronously
    description: "ferry API: POST /transfers starts a copy, GET /transfers/{id} describes it",
  },
  event: {
    ...code("event"),
    memoryMiB: 256,
    timeout: Duration.seconds(30),
    description: "ferry promotion: an ECR push event starts a copy to the promotion destination",
  },
  schedule: {
    ...code("schedule"),
    memoryMiB: 256,
    timeout: Duration.seconds(30),
    description: "ferry schedule: start a bulk migration with the configuration in the event",
  },
  benchWorker: {
    ...code("benchWorker"),
    memoryMiB: 1769,
    timeout: Duration.minutes(15),
    description: "ferry load test: one worker of the fan-out",
    streams: true,
  },
  benchAggregate: {
    ...code("benchAggregate"),
    memoryMiB: 512,
    timeout: Duration.minutes(2),
    description: "ferry load test: merge the workers' histograms",
  },
} as const satisfies Record<string, FunctionSpec>;

export type FunctionName = keyof typeof FUNCTION_SPECS;

export interface FerryFunctionProps {
  readonly spec: FunctionSpec;
  /** The package root: its `dist/lambda/` holds the functions' code (scripts/build.js). */
  readonly sourceRoot: string;
  readonly logRetention: logs.RetentionDays;
  readonly environment: Readonly<Record<string, string>>;
}

/**
 * A Lambda function with ferry's defaults: nodejs22.x on arm64, the package's prebuilt code
 * (`dist/lambda/<function>/index.mjs`, bundled by scripts/build.js with LAMBDA_OPTIONS; nothing is bundled
 * at synth time, so an app that installs the package needs neither esbuild nor ferry's sources), JSON
 * logs into its own log group with a retention, active X-Ray tracing, and its own role that starts with
 * nothing but writing to that log group (no AWSLambdaBasicExecutionRole).
 */
export class FerryFunction extends Construct {
  public readonly function: lambda.Function;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;
  /** Absolute path of the source file the code was built from (not shipped in an installed package). */
  public readonly entry: string;
  /** Absolute path of the directory deployed as the function's code. */
  public readonly codeDirectory: string;

  constructor(scope: Construct, id: string, props: FerryFunctionProps) {
    super(scope, id);
    const { spec, sourceRoot } = props;
    this.entry = path.join(sourceRoot, spec.entry);
    this.codeDirectory = lambdaCodeDirectory(sourceRoot, spec.bundle);
    if (!fs.existsSync(path.join(this.codeDirectory, LAMBDA_FILE))) {
      throw new Error(
        `ImageTransfer: the code of the ${spec.bundle} function (${path.relative(sourceRoot, path.join(this.codeDirectory, LAMBDA_FILE))}) ` +
          `is missing under ${sourceRoot}: run \`npm run build\` in ferry's repository (an installed package ships it).`,
      );
    }

    this.logGroup = new logs.LogGroup(this, "Logs", { retention: props.logRetention });
    this.role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: `ferry ${id}: ${spec.description}`.slice(0, 1000),
    });
    this.logGroup.grantWrite(this.role);

    this.function = new lambda.Function(this, "Function", {
      code: lambda.Code.fromAsset(this.codeDirectory),
      handler: `${path.basename(LAMBDA_FILE, ".mjs")}.${spec.exportName}`,
      description: spec.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: spec.memoryMiB,
      timeout: spec.timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: lambda.Tracing.ACTIVE,
      environment: { ...(spec.streams ? STREAMING_ENVIRONMENT : {}), ...props.environment },
    });
  }
}
