/**
 * Distributed `ferry bench` on AWS: the workers run as Lambda invocations of the deployed fan-out state
 * machine (fanout.asl.json, `BenchFanoutStateMachineArn` of the stack). The CLI starts the execution,
 * waits for it, and reads the merged result the Aggregate state wrote to the staging bucket; the report
 * is then built exactly as for a local run. AWS credentials and the region come from the SDK's default
 * chain and the state machine's ARN.
 */
import type { StartExecutionCommandInput } from "@aws-sdk/client-sfn";
import { FerryError } from "../shared/registry/errors.ts";
import type { StagingStore } from "../shared/staging/types.ts";
import { stateMachineRegion } from "./config.ts";
import { fanoutInput } from "./fanout.ts";
import { readResult, type StoredResult, workerResultKey } from "./results.ts";
import type { WorkerInput, WorkerResult } from "./runner.ts";

/** How far ahead the workers' common start is set (see runOnAws). */
export const START_LEAD_MS = 15_000;

/** The largest input or output of a Step Functions execution. */
export const STATES_PAYLOAD_MAX = 256 * 1024;

/** The part of the SFN client this uses (tests pass their own). */
export interface SfnLike {
  send(command: { input: unknown }): Promise<unknown>;
}

export interface AwsFanout {
  /** `arn:aws:states:<region>:<account>:stateMachine:<name>` */
  stateMachineArn: string;
  /** An S3-compatible endpoint to read the result from (default: AWS S3 in the ARN's region). */
  s3Endpoint?: string;
  /** Default: an SFNClient in the ARN's region. */
  sfn?: SfnLike;
  /** Where the result is read (default: the bucket the Aggregate state names, through S3). */
  store?: (bucket: string) => StagingStore;
  /** Between DescribeExecution calls, ms (default 2000). */
  pollMs?: number;
  /** How far ahead the workers' common start is set, ms (default START_LEAD_MS). */
  startLeadMs?: number;
}

export async function runOnAws(inputs: WorkerInput[], aws: AwsFanout): Promise<WorkerResult> {
  const region = stateMachineRegion(aws.stateMachineArn);
  const config = inputs[0]!.config;
  // The workers start their load together, START_LEAD_MS from now: time for the Distributed Map to start
  // its child executions and for Lambda's cold starts (a worker that comes late starts at once).
  const input = JSON.stringify(fanoutInput(inputs, Date.now() + (aws.startLeadMs ?? START_LEAD_MS)));
  // The Map's output lists every worker's { worker, resultKey }: it must fit a state's payload too.
  const results = JSON.stringify(
    inputs.map((i) => ({ worker: i.worker, resultKey: workerResultKey(config.runId, i.worker) })),
  );
  const largest = Math.max(input.length, results.length);
  if (largest > STATES_PAYLOAD_MAX)
    throw new FerryError(
      "USAGE",
      `${inputs.length} workers make a ${largest}-byte state payload, over Step Functions' 256 KiB: use fewer --workers`,
    );
  const sdk = await import("@aws-sdk/client-sfn");
  const sfn: SfnLike = aws.sfn ?? new sdk.SFNClient({ region });
  const start: StartExecutionCommandInput = {
    stateMachineArn: aws.stateMachineArn,
    name: `ferry-bench-${config.runId}`,
    input,
  };
  let executionArn: string;
  try {
    ({ executionArn } = (await sfn.send(new sdk.StartExecutionCommand(start))) as { executionArn: string });
  } catch (e) {
    throw new FerryError("WORKFLOW", `cannot start ${aws.stateMachineArn}: ${(e as Error).message}`, {
      cause: e,
    });
  }

  // The workers stop by themselves after the duration and grace; Lambda allows 15 minutes at most.
  const deadline = Date.now() + config.durationMs + config.graceMs + 16 * 60_000;
  for (;;) {
    await new Promise((r) => setTimeout(r, aws.pollMs ?? 2000));
    const d = (await sfn.send(new sdk.DescribeExecutionCommand({ executionArn }))) as {
      status?: string;
      output?: string;
      error?: string;
      cause?: string;
    };
    if (d.status === "SUCCEEDED") {
      let out: StoredResult;
      try {
        out = JSON.parse(d.output ?? "") as StoredResult;
      } catch {
        throw new FerryError("WORKFLOW", `${executionArn} succeeded without a JSON output`);
      }
      if (!out?.bucket || !out.resultKey)
        throw new FerryError(
          "WORKFLOW",
          `${executionArn}: the output names no result ({ bucket, resultKey })`,
        );
      const store = aws.store
        ? aws.store(out.bucket)
        : new (await import("../shared/staging/s3.ts")).S3StagingStore({
            bucket: out.bucket,
            region,
            ...(aws.s3Endpoint ? { endpoint: aws.s3Endpoint } : {}),
          });
      return readResult(store, out.resultKey);
    }
    if (d.status !== "RUNNING" && d.status !== "PENDING_REDRIVE")
      throw new FerryError(
        "WORKFLOW",
        `bench fan-out ${executionArn} ended ${d.status}${d.error ? `: ${d.error}` : ""}${d.cause ? ` (${d.cause.slice(0, 500)})` : ""}`,
      );
    if (Date.now() > deadline)
      throw new FerryError(
        "WORKFLOW",
        `bench fan-out ${executionArn} still running after its time; look it up in the console`,
      );
  }
}
