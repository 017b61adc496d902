/**
 * One replay worker: replays its part of a trace (replay-plan.ts) against the target.
 *
 * Timing (open model): request i is due at T0 + at_i / speed, where T0 is the workers' common start
 * (WorkerInput.startAt) and at_i the record's offset from the trace's first record. It is started at that
 * time whatever the registry is doing; its latency is measured from that intended start, so time spent
 * behind a slow registry or a saturated client counts (no coordinated omission), and how late it actually
 * started is recorded as its lateness (on time: within ON_TIME_TOLERANCE_MS). With `--max-rate` there is
 * no schedule: each pool (trace client) runs its requests back to back, one at a time, in trace order.
 *
 * Each pool is its own client with its own connections (POOL_CONNECTIONS), as a Docker daemon is one
 * client of a registry. A GET record reads its seeded object (blob or manifest, size- and digest-checked);
 * a PUT record pushes a blob of the recorded size with fresh random bytes (POST, one streaming PATCH,
 * PUT ?digest= — as `docker push` uploads).
 *
 * When the last request has been started, in-flight ones get the grace period to finish; what is left
 * then is aborted (counted as such, not as the registry's failures).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Agent } from "undici";
import type { RegistryClient } from "../shared/registry/client.ts";
import { SizeMismatchError } from "../shared/registry/errors.ts";
import { registryAgent } from "../shared/registry/http/transport.ts";
import { MediaType } from "../shared/registry/media-types.ts";
import { resolveOptions } from "../shared/registry/options.ts";
import type { Repository } from "../shared/registry/reference.ts";
import { pushBlobStream } from "../shared/registry/uploads.ts";
import { seededStream } from "../shared/sample/seeded.ts";
import { getJson, type StagingStore } from "../shared/staging/types.ts";
import { measureClient } from "./client-load.ts";
import { measuredClient } from "./measured-client.ts";
import { Metrics } from "./metrics.ts";
import { type PlannedRequest, partKey, type WorkerPart } from "./replay-plan.ts";
import { ON_TIME_TOLERANCE_MS, ReplayRecorder } from "./replay-stats.ts";
import { endRun } from "./run-end.ts";
import type { WorkerDeps, WorkerInput, WorkerResult } from "./runner.ts";
import { getManifest, readBlob } from "./scenarios.ts";

/**
 * Connections per trace client. A Docker daemon pulls 3 layers and pushes 5 at once by default
 * (max-concurrent-downloads / -uploads); a pool of 8 lets one client do both, and queues the rest.
 */
export const POOL_CONNECTIONS = 8;

/** The worker's clock (tests inject one). Milliseconds, monotonic. */
export interface ReplayClock {
  now(): number;
  sleepUntil(t: number): Promise<void>;
}

export const REAL_CLOCK: ReplayClock = {
  now: () => performance.now(),
  sleepUntil: async (t) => {
    const wait = t - performance.now();
    if (wait > 0) await sleep(wait);
  },
};

/**
 * Starts every request at its time and waits for all of them. Open model: request i at
 * `t0 + at_i / speed` (every request already due is started at once: a timer that fired late does not
 * spread them out); `exec` gets the intended and the actual start. Max rate: each pool's requests back to
 * back. `stopped()` ends the scheduling early (the time is up).
 */
export async function runSchedule(
  requests: readonly Pick<PlannedRequest, "at" | "pool">[],
  model: { speed: number; maxRate: boolean },
  clock: ReplayClock,
  t0: number,
  exec: (i: number, intended: number, actual: number) => Promise<void>,
  stopped: () => boolean = () => false,
): Promise<void> {
  if (model.maxRate) {
    const byPool = new Map<number, number[]>();
    requests.forEach((r, i) => {
      const l = byPool.get(r.pool);
      if (l) l.push(i);
      else byPool.set(r.pool, [i]);
    });
    await Promise.all(
      [...byPool.values()].map(async (list) => {
        for (const i of list) {
          if (stopped()) return;
          const now = clock.now();
          await exec(i, now, now);
        }
      }),
    );
    return;
  }
  const due = (i: number) => t0 + requests[i]!.at / model.speed;
  const running: Promise<void>[] = [];
  let i = 0;
  while (i < requests.length && !stopped()) {
    const next = due(i);
    if (next > clock.now()) {
      await clock.sleepUntil(next);
      continue;
    }
    while (i < requests.length && due(i) <= clock.now()) {
      running.push(exec(i, due(i), clock.now()));
      i++;
    }
  }
  await Promise.all(running);
}

/** For tests: the clock. */
export interface ReplayHooks {
  clock?: ReplayClock;
}

export async function runReplayWorker(
  input: WorkerInput,
  deps: WorkerDeps & ReplayHooks & { store?: StagingStore },
): Promise<WorkerResult> {
  const { config } = input;
  const model = config.model;
  if (model.kind !== "replay") throw new Error("runReplayWorker: not a replay configuration");
  if (!deps.store) throw new Error("runReplayWorker: the trace's parts are read from a staging store");
  const key = partKey(config.runId, input.worker);
  const part = await getJson<WorkerPart>(deps.store, key);
  if (part?.version !== 1)
    throw new Error(`replay worker ${input.worker}: no trace part at ${deps.store.location}/${key}`);
  const clock = deps.clock ?? REAL_CLOCK;
  const metrics = new Metrics();
  deps.onMetrics?.(metrics);
  const stats = new ReplayRecorder();
  const base = deps.clientOptions ?? {};
  const resolved = resolveOptions(base);
  const repo: Repository = { registry: config.registry, repository: part.repository };
  const agents: Agent[] = [];
  const clients = new Map<number, RegistryClient>();
  const clientFor = (pool: number) => {
    let c = clients.get(pool);
    if (!c) {
      const agent = registryAgent(resolved, {
        connections: POOL_CONNECTIONS,
        headersTimeoutMs: config.timeoutMs,
        bodyTimeoutMs: config.timeoutMs,
      });
      agents.push(agent);
      c = measuredClient(base, agent, metrics, config, `worker=${input.worker} client=${pool}`);
      c.declarePush(repo);
      clients.set(pool, c);
    }
    return c;
  };

  // The workers' common start (a worker that comes late starts at once: its lateness shows it).
  const now = clock.now();
  const t0 = input.startAt !== undefined ? now + Math.max(0, input.startAt - Date.now()) : now;
  if (input.startAt !== undefined) await clock.sleepUntil(t0);
  metrics.start();
  const load = measureClient();
  let aborting = false;
  const ctx = { config, metrics };

  const exec = async (i: number, intended: number, actual: number) => {
    const r = part.requests[i]!;
    deps.onReplayStart?.(r.index, intended - t0, actual - t0);
    stats.started(metrics.sec(), actual - intended);
    const kind = `${r.method.toLowerCase()}.${r.kind}`;
    const client = clientFor(r.pool);
    try {
      let bytes: number;
      if (r.method === "GET") {
        const o = part.objects[r.object!]!;
        if (o.served === "manifest") {
          bytes = (await getManifest(ctx, client, { ...repo, digest: o.digest })).bytes.length;
          if (bytes !== o.size) {
            metrics.count("verifyFailures");
            throw new SizeMismatchError(`manifest ${o.digest}`, o.size, bytes);
          }
        } else
          bytes = await readBlob(ctx, client, repo, {
            mediaType: MediaType.OciLayer,
            digest: o.digest,
            size: o.size,
          });
        stats.got(o.trace, bytes);
      } else {
        const size = r.size!;
        const seed = `ferry-replay:${config.runId}:${r.index}`;
        await pushBlobStream(client, repo, MediaType.OciLayer, seededStream(seed, size), (n) =>
          metrics.addBytes("upload.patch", n),
        );
        bytes = size;
        stats.pushed(size);
      }
      metrics.iteration(kind, clock.now() - intended, undefined, bytes);
    } catch (err) {
      if (aborting) metrics.count("aborted");
      else metrics.iteration(kind, clock.now() - intended, err);
    }
  };

  const done = runSchedule(part.requests, model, clock, t0, exec, () => aborting);
  // After the last intended start, in-flight requests get the grace period (--max-rate: no schedule, so
  // only the per-request timeouts bound them).
  const lastStart = model.maxRate
    ? Number.POSITIVE_INFINITY
    : t0 + (part.requests.at(-1)?.at ?? 0) / model.speed;
  const client = await endRun({
    done,
    graceEnd: lastStart + config.graceMs,
    now: () => clock.now(),
    abort: () => {
      aborting = true;
    },
    metrics,
    clientLoad: load,
    destroy: () => Promise.all(agents.map((a) => a.destroy().catch(() => {}))),
  });
  await Promise.allSettled([...clients.values()].map((c) => c.close()));
  await Promise.allSettled(agents.filter((a) => !a.destroyed).map((a) => a.close()));
  return {
    ...metrics.result(),
    created: [],
    clients: [client],
    replay: stats.result(ON_TIME_TOLERANCE_MS),
  };
}
