/**
 * One load worker: drives its share of the load for the configured time (and iteration count), then
 * stops by itself and returns serialised metrics.
 *
 * Load models:
 * - closed: N virtual users, each running iterations back to back (optional think time; VUs started
 *   evenly over the ramp-up). Iteration latency is measured from the iteration's actual start.
 * - open: iterations arrive at a fixed rate whatever the registry does; each is timed from its intended
 *   start (t0 + k / rate), so time spent queued behind a slow registry counts (no coordinated omission).
 *   At most `maxVus` run at once; arrivals beyond that wait in a queue, and those still waiting when the
 *   time is up are counted as `dropped`.
 *
 * At the end, in-flight iterations get `graceMs` to finish; the rest are aborted (connections destroyed)
 * and counted as `aborted`, not as registry failures.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { RegistryClient } from "../shared/registry/client.ts";
import { registryAgent } from "../shared/registry/http/transport.ts";
import { type ClientOptions, resolveOptions } from "../shared/registry/options.ts";
import { parseReference } from "../shared/registry/reference.ts";
import type { StagingStore } from "../shared/staging/types.ts";
import { type ClientLoad, measureClient, mergeClientLoads } from "./client-load.ts";
import { type BenchConfig, type IterationKind, iterationKinds, workerShare } from "./config.ts";
import { measuredClient } from "./measured-client.ts";
import { Metrics, type MetricsResult, mergeResults } from "./metrics.ts";
import { mergeReplayStats, type ReplayWorkerStats } from "./replay-stats.ts";
import { endRun } from "./run-end.ts";
import { type CreatedImage, newWorkerContext, prepareImage, runIteration } from "./scenarios.ts";
import type { SyntheticImage } from "./synth.ts";

export { BENCH_USER_AGENT } from "./config.ts";

/** What a worker is asked to do: JSON, so it can travel through Step Functions. */
export interface WorkerInput {
  config: BenchConfig;
  /** This worker's index and the number of workers (the load is split between them). */
  worker: number;
  workers: number;
  /** Images the pull / manifest / tags iterations read. */
  targets: string[];
  /** Epoch ms to start at (aligns workers that start at slightly different times); at most 60 s ahead. */
  startAt?: number;
}

export interface WorkerResult extends MetricsResult {
  created: CreatedImage[];
  /** The load-generating processes: CPU and event loop use over the load phase (one per process). */
  clients: ClientLoad[];
  /** A replay's starts, lateness, GETs per object and sizes (replay-stats.ts). */
  replay?: ReplayWorkerStats;
}

export interface WorkerDeps {
  /** Credentials, TLS and other connection options (the worker adds its observer, dispatcher, retries). */
  clientOptions?: ClientOptions;
  /** Called with the worker's live metrics as soon as they exist (terminal view). */
  onMetrics?: (m: Metrics) => void;
  /** Where a replay worker reads its part of the trace (the fan-out's staging store). */
  store?: StagingStore;
  /** A replay's starts, as offsets from the common start (ms): tests check the schedule with it. */
  onReplayStart?: (recordIndex: number, intendedMs: number, actualMs: number) => void;
}

/** Exact merge of worker results (metrics merged, created images concatenated). */
export function mergeWorkerResults(results: WorkerResult[]): WorkerResult {
  const replay = mergeReplayStats(results.flatMap((r) => (r.replay ? [r.replay] : [])));
  return {
    ...mergeResults(results),
    created: results.flatMap((r) => r.created),
    clients: mergeClientLoads(results.flatMap((r) => r.clients ?? [])),
    ...(replay ? { replay } : {}),
  };
}

/** Smooth weighted round robin: deterministic, and after k picks each kind is within one of k·w/W. */
export function mixPicker(mix: { kind: IterationKind; weight: number }[]): () => IterationKind {
  const total = mix.reduce((a, m) => a + m.weight, 0);
  const current = mix.map(() => 0);
  return () => {
    let best = 0;
    for (let i = 0; i < mix.length; i++) {
      current[i]! += mix[i]!.weight;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    return mix[best]!.kind;
  };
}

export async function runWorker(input: WorkerInput, deps: WorkerDeps = {}): Promise<WorkerResult> {
  const { config } = input;
  const share = workerShare(config, input.worker, input.workers);
  const model = share.model;
  if (model.kind === "replay") throw new Error("runWorker: a replay runs in runReplayWorker (worker.ts)");
  const metrics = new Metrics();
  deps.onMetrics?.(metrics);
  const base = deps.clientOptions ?? {};
  // Connections per origin: as many as the iterations can use at once (one per VU for manifest/listing
  // scenarios, as wrk's -c), so the registry sees the connection count the load model implies.
  const perIteration = Math.max(
    1,
    ...iterationKinds(config).map((k) =>
      k === "pull" ? config.pullConcurrency : k === "push" ? config.push.concurrency : 1,
    ),
  );
  const slots = model.kind === "closed" ? model.vus : model.maxVus;
  const agent = registryAgent(resolveOptions(base), {
    connections: slots * perIteration,
    headersTimeoutMs: config.timeoutMs,
    bodyTimeoutMs: config.timeoutMs,
  });
  const chunk = config.push.chunkSize;
  const makeClient = () =>
    measuredClient(base, agent, metrics, config, `worker=${input.worker}`, {
      // a chunk size means chunked uploads of that size, whatever the blob size (resolveOptions)
      ...(chunk !== undefined ? { chunkSize: chunk } : {}),
    });
  const shared = makeClient();
  const clients = [shared];
  const ctx = newWorkerContext(
    config,
    input.worker,
    metrics,
    input.targets.map((t) => parseReference(t)),
  );
  const pick = mixPicker(
    config.scenario === "mixed" ? config.mix : [{ kind: iterationKinds(config)[0]!, weight: 1 }],
  );

  if (input.startAt !== undefined) {
    const wait = input.startAt - Date.now();
    if (wait > 0) await sleep(Math.min(wait, 60_000));
  }

  metrics.start();
  const clientLoad = measureClient();
  const t0 = metrics.t0;
  const deadline = t0 + config.durationMs;
  const cap = share.iterations;
  let claimed = 0;
  let aborting = false;

  const timeUp = () => aborting || performance.now() >= deadline;
  const capReached = () => cap !== undefined && claimed >= cap;

  /** Runs one iteration; `from` is when its clock started (intended start in the open model). */
  const iterate = async (
    client: RegistryClient,
    n: number,
    kind: IterationKind,
    from: number,
    prepared?: SyntheticImage,
  ) => {
    try {
      const bytes = await runIteration(kind, ctx, client, n, prepared);
      metrics.iteration(kind, performance.now() - from, undefined, bytes);
    } catch (err) {
      if (aborting) metrics.count("aborted");
      else metrics.iteration(kind, performance.now() - from, err);
    }
  };

  let done: Promise<unknown>;
  if (model.kind === "closed") {
    const vu = async (v: number) => {
      if (model.rampUpMs > 0 && model.vus > 1) await sleep((v * model.rampUpMs) / model.vus);
      let client = shared;
      if (config.clientPerVu && v > 0) {
        client = makeClient();
        clients.push(client);
      }
      for (;;) {
        if (timeUp() || capReached()) return;
        const n = claimed++;
        const kind = pick();
        // Synthetic content is generated before the clock starts: the tool's work is not the registry's latency.
        const prepared = kind === "push" ? await prepareImage(ctx, n) : undefined;
        await iterate(client, n, kind, performance.now(), prepared);
        if (model.thinkMs > 0 && !timeUp()) await sleep(model.thinkMs);
      }
    };
    done = Promise.all(Array.from({ length: model.vus }, (_, v) => vu(v)));
  } else {
    const interval = 1000 / model.rate;
    const queue: number[] = [];
    let running = 0;
    let resolveDrained: () => void = () => {};
    const drained = new Promise<void>((r) => {
      resolveDrained = r;
    });
    let scheduling = true;
    let launched = 0;
    // Arrivals are due at t0 + k / rate for every k with an intended start inside the duration.
    const arrivals = Math.ceil(config.durationMs / interval - 1e-9);
    const launch = (intended: number) => {
      running++;
      const n = launched++;
      void iterate(shared, n, pick(), intended).finally(() => {
        running--;
        if (queue.length && !timeUp()) launch(queue.shift()!);
        else if (!scheduling && running === 0) resolveDrained();
      });
    };
    let k = 0;
    for (;;) {
      const now = performance.now();
      const due = Math.min(arrivals, Math.floor((now - t0) / interval) + 1);
      while (k < due && !capReached()) {
        const intended = t0 + k * interval;
        k++;
        claimed++;
        if (running < model.maxVus) launch(intended);
        else queue.push(intended);
      }
      if (k >= arrivals || capReached()) break;
      const wait = t0 + k * interval - performance.now();
      if (wait > 0) await sleep(wait);
    }
    // Queued arrivals may still start until the time is up; those left then are dropped.
    while (queue.length && !timeUp()) await sleep(Math.min(10, Math.max(1, deadline - performance.now())));
    scheduling = false;
    if (queue.length) metrics.count("dropped", queue.length);
    queue.length = 0;
    if (running === 0) resolveDrained();
    done = drained;
  }

  // The load finishes by itself, or at the time plus grace what is left is aborted.
  const client = await endRun({
    done,
    graceEnd: deadline + config.graceMs,
    now: () => performance.now(),
    abort: () => {
      aborting = true;
    },
    metrics,
    clientLoad,
    destroy: () => agent.destroy().catch(() => {}),
  });
  await Promise.allSettled(clients.map((c) => c.close()));
  if (!agent.destroyed) await agent.close().catch(() => {});
  return { ...metrics.result(), created: ctx.created, clients: [client] };
}
