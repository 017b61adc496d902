/**
 * `ferry bench` end to end: set up (seed image), run the workers (dispatch.ts: in process, or through the
 * local or AWS Step Functions fan-out), merge their serialised metrics, read back what was pushed, clean
 * up, report. A replay (`-s replay`) has its own set-up: replay-run.ts.
 */
import { formatReference } from "../shared/registry/reference.ts";
import { type BenchConfig, needsSeed } from "./config.ts";
import { type RunDeps, runWorkers, setupClient } from "./dispatch.ts";
import { type CleanupReport, cleanUp, pushSeed, type ReadbackReport, readBack } from "./lifecycle.ts";
import { seriesHistogramsOf } from "./noise.ts";
import { runReplay } from "./replay-run.ts";
import { type BenchReport, buildReport } from "./report.ts";
import type { WorkerInput } from "./runner.ts";
import type { CreatedImage } from "./scenarios.ts";

export { BENCH_SETUP_USER_AGENT, type RunDeps } from "./dispatch.ts";

export async function runBench(config: BenchConfig, deps: RunDeps = {}): Promise<BenchReport> {
  if (config.scenario === "replay") return runReplay(config, deps);
  const log = deps.log ?? (() => {});
  // Setup, read-back and cleanup use their own client: their traffic is not part of the measurement.
  const setup = setupClient(config, deps);
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
    const merged = await runWorkers(config, inputs, deps);
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
    const report = buildReport(config, merged, {
      images,
      ...(readback ? { readback } : {}),
      ...(cleanup ? { cleanup } : {}),
    });
    report.seriesHistograms = seriesHistogramsOf(merged, report.series.seconds.length);
    return report;
  } finally {
    await setup.close();
  }
}
