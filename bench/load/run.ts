/**
 * `ferry bench` end to end: set up (seed image), run the workers (in process, or through the local
 * Step Functions fan-out), merge their serialised metrics, read back what was pushed, clean up, report.
 */
import { RegistryClient } from "../../shared/registry/client.ts";
import type { ClientOptions } from "../../shared/registry/options.ts";
import { formatReference } from "../../shared/registry/reference.ts";
import { type BenchConfig, needsSeed } from "./config.ts";
import { runFanout } from "./fanout.ts";
import { aggregateHandler, makeWorkerHandler } from "./lambda.ts";
import { type CleanupReport, cleanUp, pushSeed, type ReadbackReport, readBack } from "./lifecycle.ts";
import type { Metrics } from "./metrics.ts";
import { type BenchReport, buildReport } from "./report.ts";
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
    if (config.viaWorkflow) {
      merged = await runFanout(inputs, makeWorkerHandler(workerDeps), aggregateHandler);
    } else {
      // The same serialise → merge path as the workflow, so one worker and many report alike.
      const results = await Promise.all(inputs.map((i) => runWorker(i, workerDeps)));
      merged = results.length === 1 ? mergeWorkerResults(results) : await aggregateHandler({ results });
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
