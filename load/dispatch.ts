/**
 * Running a bench's workers, whatever the scenario: in process, through the local Step Functions fan-out
 * (aws-local-stepfunctions over fanout.asl.json), or on AWS (the deployed state machine). Every path
 * merges serialised worker results, so one worker and many report alike.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RegistryClient } from "../shared/registry/client.ts";
import type { ClientOptions } from "../shared/registry/options.ts";
import { FsStagingStore } from "../shared/staging/fs.ts";
import type { StagingStore } from "../shared/staging/types.ts";
import { type AwsFanout, runOnAws } from "./aws.ts";
import type { BenchConfig } from "./config.ts";
import { runFanout } from "./fanout.ts";
import type { Metrics } from "./metrics.ts";
import { makeAggregateHandler, makeWorkerHandler, readResult } from "./results.ts";
import { mergeWorkerResults, type WorkerDeps, type WorkerInput, type WorkerResult } from "./runner.ts";
import { runAnyWorker } from "./worker.ts";

/** The User-Agent of setup, read-back and cleanup requests (the load itself: BENCH_USER_AGENT). */
export const BENCH_SETUP_USER_AGENT = "ferry-bench-setup/0.1";

export interface RunDeps {
  /** Credentials and TLS options for every client of the run. */
  clientOptions?: ClientOptions;
  /** Each worker's live recorder, as it starts (terminal view). */
  onMetrics?: (m: Metrics) => void;
  /** Progress notes (setup, read-back, cleanup) for stderr. */
  log?: (line: string) => void;
  /** With `viaWorkflow`: run the fan-out on AWS (the deployed state machine) instead of locally. */
  aws?: AwsFanout;
  /** A replay's starts (local workers only): WorkerDeps.onReplayStart. */
  onReplayStart?: WorkerDeps["onReplayStart"];
}

/** The client of set-up, read-back and cleanup: retries, and no observer (not part of the measurement). */
export function setupClient(config: BenchConfig, deps: RunDeps): RegistryClient {
  return new RegistryClient({
    ...deps.clientOptions,
    retries: 3,
    retryBaseMs: 100,
    userAgent: `${BENCH_SETUP_USER_AGENT} run=${config.runId}`,
    rateBudget: false,
  });
}

/**
 * Runs the workers and returns their exact merge. `store`: where workers read their inputs (a replay's
 * trace parts); the local fan-out then hands results over through it too, as on AWS the staging bucket.
 */
export async function runWorkers(
  config: BenchConfig,
  inputs: WorkerInput[],
  deps: RunDeps,
  store?: StagingStore,
): Promise<WorkerResult> {
  const workerDeps = {
    ...(deps.clientOptions ? { clientOptions: deps.clientOptions } : {}),
    ...(deps.onMetrics ? { onMetrics: deps.onMetrics } : {}),
    ...(store ? { store } : {}),
    ...(deps.onReplayStart ? { onReplayStart: deps.onReplayStart } : {}),
  };
  if (config.viaWorkflow && deps.aws) {
    deps.log?.(`starting ${config.workers} workers on AWS (${deps.aws.stateMachineArn}) …`);
    return runOnAws(inputs, deps.aws);
  }
  if (config.viaWorkflow) {
    // Results travel through a staging store, as on AWS (there: the staging bucket).
    const dir = store ? undefined : await mkdtemp(join(tmpdir(), "ferry-bench-results-"));
    try {
      const s = store ?? new FsStagingStore(dir!);
      const out = await runFanout(
        inputs,
        makeWorkerHandler({ ...workerDeps, store: s }),
        makeAggregateHandler(s),
      );
      return await readResult(s, out.resultKey);
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  }
  // The same serialise → merge path as the workflow, so one worker and many report alike.
  return mergeWorkerResults(await Promise.all(inputs.map((i) => runAnyWorker(i, workerDeps))));
}
