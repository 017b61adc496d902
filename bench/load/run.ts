/**
 * `ferry bench` end to end: set up (seed image), run the workers (in process, or through the local
 * Step Functions fan-out), merge their serialised metrics, read back what was pushed, clean up, report.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RegistryClient } from "../../shared/registry/client.ts";
import type { ClientOptions } from "../../shared/registry/options.ts";
import { formatReference } from "../../shared/registry/reference.ts";
import { FsStagingStore } from "../../shared/staging/fs.ts";
import { type AwsFanout, runOnAws } from "./aws.ts";
import { type BenchConfig, needsSeed } from "./config.ts";
import { runFanout } from "./fanout.ts";
import { type CleanupReport, cleanUp, pushSeed, type ReadbackReport, readBack } from "./lifecycle.ts";
import type { Metrics } from "./metrics.ts";
import { type BenchReport, buildReport } from "./report.ts";
import { makeAggregateHandler, makeWorkerHandler, readResult } from "./results.ts";
import { mergeWorkerResults, runWorker, type WorkerInput, type WorkerResult } from "./runner.ts";
import type { CreatedImage } from "./scenarios.ts";

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
}

export async function runBench(config: BenchConfig, deps: RunDeps = {}): Promise<BenchReport> {
  const log = deps.log ?? (() => {});
  // Setup, read-back and cleanup use their own client: their traffic is not part of the measurement.
  const setup = new RegistryClient({
    ...deps.clientOptions,
    retries: 3,
    retryBaseMs: 100,
    userAgent: `${BENCH_SETUP_USER_AGENT} run=${config.runId}`,
  });
  try {
    let seed: CreatedImage | undefined;
    let images = config.images;
    if (needsSeed(config)) {
      log(`pushing a seed image to ${config.registry}/${config.repository} …`);
      seed = await pushSeed(setup, config);
      images = [formatReference({ registry: config.registry, repository: seed.repository, tag: seed.tag })];
    }

    const inputs: WorkerInput[] = Array.from({ length: config.workers }, (_, worker) => ({
      config,
      worker,
      workers: config.workers,
      targets: images,
    }));
    const workerDeps = {
      ...(deps.clientOptions ? { clientOptions: deps.clientOptions } : {}),
      ...(deps.onMetrics ? { onMetrics: deps.onMetrics } : {}),
    };
    let merged: WorkerResult;
    if (config.viaWorkflow && deps.aws) {
      log(`starting ${config.workers} workers on AWS (${deps.aws.stateMachineArn}) …`);
      merged = await runOnAws(inputs, deps.aws);
    } else if (config.viaWorkflow) {
      // Results travel through a staging store, as on AWS (there: the staging bucket).
      const dir = await mkdtemp(join(tmpdir(), "ferry-bench-results-"));
      try {
        const store = new FsStagingStore(dir);
        const out = await runFanout(
          inputs,
          makeWorkerHandler({ ...workerDeps, store }),
          makeAggregateHandler(store),
        );
        merged = await readResult(store, out.resultKey);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    } else {
      // The same serialise → merge path as the workflow, so one worker and many report alike.
      merged = mergeWorkerResults(await Promise.all(inputs.map((i) => runWorker(i, workerDeps))));
    }
    if (seed) merged.created.unshift(seed);

    let readback: ReadbackReport | undefined;
    if (config.readback && merged.created.some((c) => !c.seed)) {
      log(`reading back ${merged.created.length} image(s) by digest …`);
      readback = await readBack(setup, config.registry, merged.created);
    }
    let cleanup: CleanupReport | undefined;
    if (config.cleanup && merged.created.length) {
      log(`deleting ${merged.created.length} image(s) …`);
      cleanup = await cleanUp(setup, config.registry, merged.created);
    }
    return buildReport(config, merged, {
      images,
      ...(readback ? { readback } : {}),
      ...(cleanup ? { cleanup } : {}),
    });
  } finally {
    await setup.close();
  }
}
