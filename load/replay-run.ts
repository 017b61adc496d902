/**
 * `ferry bench -s replay` end to end: read the trace, seed its objects (reported apart from the replay),
 * cut it into the workers' parts, put the parts where the workers read them (a temporary directory
 * locally, the staging bucket on AWS: a trace can be far larger than a Step Functions state, whose input
 * then carries the run's configuration only), run the workers against a common start, and report.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FerryError } from "../shared/registry/errors.ts";
import { FsStagingStore } from "../shared/staging/fs.ts";
import { putJson, type StagingStore } from "../shared/staging/types.ts";
import { START_LEAD_MS } from "./aws.ts";
import { type BenchConfig, stateMachineRegion } from "./config.ts";
import { type RunDeps, runWorkers, setupClient } from "./dispatch.ts";
import { seriesHistogramsOf } from "./noise.ts";
import { partitionTrace, partKey, seedObjects, traceObjects } from "./replay-plan.ts";
import { buildReplayReport } from "./replay-report.ts";
import { type BenchReport, buildReport } from "./report.ts";
import type { WorkerInput } from "./runner.ts";
import { loadTrace, SKIP_REASONS, SKIP_TEXT } from "./trace.ts";

/** A Lambda worker runs 15 minutes at most; its replay must end (with its grace) well before. */
export const LAMBDA_REPLAY_MAX_MS = 14 * 60_000;

/** How far ahead of now in-process workers start together (they read their parts first). */
const LOCAL_LEAD_MS = 100;

export async function runReplay(configIn: BenchConfig, deps: RunDeps): Promise<BenchReport> {
  const opts = configIn.replay;
  const model = configIn.model;
  if (!opts || model.kind !== "replay") throw new FerryError("USAGE", "replay: no trace configured");
  const log = deps.log ?? (() => {});
  const trace = await loadTrace(opts.traces, {
    ...(opts.limitSeconds !== undefined ? { limitSeconds: opts.limitSeconds } : {}),
    ...(opts.limitRequests !== undefined ? { limitRequests: opts.limitRequests } : {}),
  });
  if (trace.records.length === 0) {
    const why = SKIP_REASONS.filter((k) => trace.skipped[k])
      .map((k) => `${trace.skipped[k]} ${SKIP_TEXT[k]}`)
      .join("; ");
    throw new FerryError(
      "USAGE",
      `trace ${opts.traces.join(", ")}: no record to replay among ${trace.read}${why ? ` (skipped: ${why})` : ""}`,
    );
  }
  const scheduledMs = model.maxRate ? 0 : trace.spanMs / model.speed;
  // The trace sets the run's length (the caller's live view reads it from the configuration).
  configIn.durationMs = scheduledMs;
  const config = configIn;
  if (deps.aws && scheduledMs + config.graceMs + START_LEAD_MS > LAMBDA_REPLAY_MAX_MS)
    throw new FerryError(
      "USAGE",
      `the replay runs ${((scheduledMs + config.graceMs) / 60_000).toFixed(1)} min (trace ${(trace.spanMs / 60_000).toFixed(1)} min at --speed ${model.speed}, plus --grace): ` +
        "a Lambda worker runs 15 min at most — give --limit-seconds or a higher --speed",
    );

  const repo = { registry: config.registry, repository: config.repository };
  const objects = traceObjects(trace);
  const setup = setupClient(config, deps);
  let dir: string | undefined;
  try {
    const { mapping, report: seeding } = await seedObjects(setup, repo, objects, {
      ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
      log,
    });
    const objectIndex = new Map(objects.map((o, i) => [o.uri, i]));
    const { parts, pools } = partitionTrace(trace, mapping, objectIndex, {
      clientsBy: opts.clientsBy,
      workers: config.workers,
      repository: config.repository,
    });

    let store: StagingStore;
    if (deps.aws) {
      const bucket = opts.stagingBucket;
      if (!bucket) throw new FerryError("USAGE", "replay with --state-machine needs --staging-bucket");
      store = deps.aws.store
        ? deps.aws.store(bucket)
        : new (await import("../shared/staging/s3.ts")).S3StagingStore({
            bucket,
            region: stateMachineRegion(deps.aws.stateMachineArn),
            ...(deps.aws.s3Endpoint ? { endpoint: deps.aws.s3Endpoint } : {}),
          });
    } else {
      dir = await mkdtemp(join(tmpdir(), "ferry-bench-replay-"));
      store = new FsStagingStore(dir);
    }
    await Promise.all(parts.map((p, w) => putJson(store, partKey(config.runId, w), p)));
    log(
      `replaying ${trace.records.length} requests of ${pools} client(s) with ${config.workers} worker(s)` +
        (model.maxRate ? " at the highest rate" : `, ${(scheduledMs / 1000).toFixed(1)} s scheduled`) +
        " …",
    );
    const startAt = Date.now() + LOCAL_LEAD_MS;
    const inputs: WorkerInput[] = parts.map((_, worker) => ({
      config,
      worker,
      workers: config.workers,
      targets: [],
      ...(config.viaWorkflow ? {} : { startAt }),
    }));
    const merged = await runWorkers(config, inputs, deps, store);
    const report = buildReport(config, merged, { images: [] });
    const seconds = report.series.seconds.length;
    report.seriesHistograms = seriesHistogramsOf(merged, seconds);
    report.replay = buildReplayReport(config, trace, objects, seeding, merged.replay, pools, seconds);
    return report;
  } finally {
    await setup.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}
