/**
 * Before a replay: the objects the trace reads are pushed ("seeding", the IBM replayer's warmup), and the
 * trace is cut into the workers' parts.
 *
 * Seeding. Every distinct URI a GET record names is one object, of the largest size recorded for it. A
 * manifest URI becomes a synthetic OCI image manifest of exactly that size (padding in an annotation),
 * pushed by digest, so that its GETs go through the registry's manifest path; a manifest size no such
 * manifest can have (below the smallest one, above 4 MiB) and every blob URI become a blob of random
 * bytes of that size. The bytes are a function of the URI and size: seeding again pushes the same digests
 * (found, not uploaded). The mapping URI → digest is kept in `--state DIR` per target, so that a second
 * run does not even look. Seeding goes through its own client: none of it is in the replay's figures.
 *
 * Parts. Records are assigned to connection pools: by client (`remoteaddr`: each trace client is one pool,
 * as a Docker daemon is one client), or dealt in turn (`round-robin`) over as many pools as the trace has
 * clients. Pools go to workers largest first, each to the worker with the fewest records so far: a
 * client's requests all come from one worker, and workers get similar shares.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { mapLimit } from "../shared/concurrency.ts";
import type { RegistryClient } from "../shared/registry/client.ts";
import { sha256 } from "../shared/registry/digest.ts";
import { FerryError } from "../shared/registry/errors.ts";
import { MAX_MANIFEST_BYTES, type RawManifest } from "../shared/registry/manifest.ts";
import { MediaType } from "../shared/registry/media-types.ts";
import { formatRepository, type Repository } from "../shared/registry/reference.ts";
import { pushBlob } from "../shared/registry/uploads.ts";
import type { ClientsBy } from "./config.ts";
import { syntheticBlob } from "./synth.ts";
import type { LoadedTrace, TraceKind } from "./trace.ts";

/** A seeded object: what a GET record of its URI reads. */
export interface SeededObject {
  digest: string;
  size: number;
  /** How it is read: a manifest GET or a blob GET. */
  served: TraceKind;
}

/** The objects a trace reads: URI → kind, size (largest recorded), GET records. */
export interface TraceObject {
  uri: string;
  kind: TraceKind;
  size: number;
  gets: number;
}

export function traceObjects(trace: LoadedTrace): TraceObject[] {
  const byUri = new Map<string, TraceObject>();
  for (const r of trace.records) {
    if (r.method !== "GET") continue;
    const o = byUri.get(r.uri);
    if (o) {
      o.size = Math.max(o.size, r.size);
      o.gets++;
    } else byUri.set(r.uri, { uri: r.uri, kind: r.kind, size: r.size, gets: 1 });
  }
  return [...byUri.values()];
}

// ------------------------------------------------------------------------------------------ manifests

/** The config blob every seeded manifest names (pushed once per target). */
export const SEED_CONFIG = Buffer.from('{"architecture":"amd64","os":"linux","ferry":"trace replay object"}');

function manifestJson(objectId: string, pad: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: sha256(SEED_CONFIG), size: SEED_CONFIG.length },
      layers: [],
      annotations: { "ferry.trace.object": objectId, "ferry.pad": pad },
    }),
  );
}

/** The smallest synthetic manifest (no padding). */
export const MIN_SEED_MANIFEST = manifestJson(sha256("").slice(7, 39), "").length;

/**
 * A valid OCI manifest of exactly `size` bytes for `uri` (its padding is ASCII: one byte per character);
 * undefined when no such manifest can be that size.
 */
export function seedManifest(uri: string, size: number): RawManifest | undefined {
  if (size < MIN_SEED_MANIFEST || size > MAX_MANIFEST_BYTES) return undefined;
  const id = sha256(uri).slice(7, 39); // names the object, not the (possibly private) URI
  const bytes = manifestJson(id, "x".repeat(size - MIN_SEED_MANIFEST));
  return { bytes, mediaType: MediaType.OciManifest, digest: sha256(bytes) };
}

// ------------------------------------------------------------------------------------------ state

interface StateFile {
  version: 1;
  /** `<registry>/<repository>` → trace URI → object. */
  targets: Record<string, Record<string, SeededObject>>;
}

const STATE_FILE = "replay-state.json";

async function readState(dir: string): Promise<StateFile> {
  const file = join(dir, STATE_FILE);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, targets: {} };
    throw new FerryError("USAGE", `--state: cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const s = JSON.parse(text) as StateFile;
    if (s?.version !== 1 || typeof s.targets !== "object" || s.targets === null)
      throw new Error("not a v1 state");
    return s;
  } catch (e) {
    throw new FerryError(
      "USAGE",
      `--state: ${file} is not a ferry replay state (${(e as Error).message}); remove it to seed again`,
    );
  }
}

async function writeState(dir: string, state: StateFile): Promise<void> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, STATE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(state), { mode: 0o600 });
  await rename(tmp, file); // a reader never sees half a state
}

// ------------------------------------------------------------------------------------------ seeding

export interface SeedingReport {
  /** Distinct objects the trace's GETs read. */
  objects: number;
  /** Taken from --state without a request. */
  fromState: number;
  /** Pushed by this run (bytes sent), and found present already. */
  pushed: number;
  present: number;
  bytes: number;
  /** Manifest URIs seeded as blobs (a size no manifest can have). */
  manifestsAsBlobs: number;
  ms: number;
}

/**
 * Pushes every object of `objects` to `repo` (unless --state knows it) and returns URI → object.
 * Any failure fails the seeding: a replay of GETs for objects that are not there measures nothing.
 */
export async function seedObjects(
  client: RegistryClient,
  repo: Repository,
  objects: TraceObject[],
  opts: { stateDir?: string; log?: (line: string) => void } = {},
): Promise<{ mapping: Map<string, SeededObject>; report: SeedingReport }> {
  const started = performance.now();
  const key = formatRepository(repo);
  const state = opts.stateDir ? await readState(opts.stateDir) : undefined;
  const known = state?.targets[key] ?? {};
  const mapping = new Map<string, SeededObject>();
  const report: SeedingReport = {
    objects: objects.length,
    fromState: 0,
    pushed: 0,
    present: 0,
    bytes: 0,
    manifestsAsBlobs: 0,
    ms: 0,
  };
  const todo: TraceObject[] = [];
  for (const o of objects) {
    const k = known[o.uri];
    const expected = o.kind === "manifest" && seedManifest(o.uri, o.size) ? "manifest" : "blob";
    if (k && k.size === o.size && k.served === expected) {
      mapping.set(o.uri, k);
      report.fromState++;
    } else todo.push(o);
  }
  if (todo.length) {
    opts.log?.(`seeding ${todo.length} object(s) of the trace into ${key} …`);
    client.declarePush(repo);
    const configDesc = {
      mediaType: MediaType.OciConfig,
      digest: sha256(SEED_CONFIG),
      size: SEED_CONFIG.length,
    };
    let configPushed: Promise<unknown> | undefined;
    const count = (r: { action: string; bytesSent: number }) => {
      if (r.action === "uploaded") report.pushed++;
      else report.present++;
      report.bytes += r.bytesSent;
    };
    try {
      await mapLimit(todo, 8, async (o) => {
        const manifest = o.kind === "manifest" ? seedManifest(o.uri, o.size) : undefined;
        if (manifest) {
          configPushed ??= pushBlob(client, repo, configDesc, async (off) =>
            Readable.from([SEED_CONFIG.subarray(off)]),
          );
          await configPushed;
          if (await client.headManifest({ ...repo, digest: manifest.digest })) report.present++;
          else {
            await client.putManifest(repo, manifest.digest, manifest);
            report.pushed++;
            report.bytes += manifest.bytes.length;
          }
          mapping.set(o.uri, { digest: manifest.digest, size: o.size, served: "manifest" });
          return;
        }
        if (o.kind === "manifest") report.manifestsAsBlobs++;
        const blob = await syntheticBlob(`ferry-trace:${o.uri}:${o.size}`, o.size, 0, MediaType.OciLayer);
        count(await pushBlob(client, repo, blob.desc, blob.open));
        mapping.set(o.uri, { digest: blob.desc.digest, size: o.size, served: "blob" });
      });
    } catch (err) {
      throw new FerryError(
        "BENCH_SETUP",
        `replay seeding: could not push the trace's objects to ${key}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  if (state && opts.stateDir) {
    state.targets[key] = Object.fromEntries(
      [...Object.entries(known), ...[...mapping.entries()]].map(([u, o]) => [u, o]),
    );
    await writeState(opts.stateDir, state);
  }
  report.ms = performance.now() - started;
  return { mapping, report };
}

// ------------------------------------------------------------------------------------------ parts

/** One request of a worker's part: compact, since a part travels through the staging store. */
export interface PlannedRequest {
  /** Offset in the trace, ms. */
  at: number;
  method: "GET" | "PUT";
  /** The record's kind (a PUT of a manifest record is replayed as a blob push of its size). */
  kind: TraceKind;
  /** GET: the object's index in the part's `objects`. */
  object?: number;
  /** PUT: bytes to push. */
  size?: number;
  /** The connection pool (a trace client), numbered within the run. */
  pool: number;
  /** The record's index in the trace (names fresh content; identifies the request in tests). */
  index: number;
}

/** What one worker replays (written to `bench/<runId>/trace/worker-<n>.json`). */
export interface WorkerPart {
  version: 1;
  repository: string;
  /** Objects this part reads. `trace` is the object's index in the whole run (its popularity counts). */
  objects: (SeededObject & { trace: number })[];
  requests: PlannedRequest[];
  /** Pools this worker runs. */
  pools: number[];
}

/** Staging key of worker `worker`'s part of run `runId`'s trace. */
export const partKey = (runId: string, worker: number): string =>
  `bench/${runId}/trace/worker-${worker}.json`;

/**
 * Cuts the trace into `workers` parts. `objectIndex` numbers the run's objects (URI → index), so that
 * each worker's counts per object merge into the run's popularity.
 */
export function partitionTrace(
  trace: LoadedTrace,
  mapping: Map<string, SeededObject>,
  objectIndex: Map<string, number>,
  opts: { clientsBy: ClientsBy; workers: number; repository: string },
): { parts: WorkerPart[]; pools: number } {
  const clients = new Map<string, number>();
  for (const r of trace.records) if (!clients.has(r.client)) clients.set(r.client, clients.size);
  const poolCount = Math.max(1, clients.size);
  const poolOf = trace.records.map((r, i) =>
    opts.clientsBy === "remoteaddr" ? clients.get(r.client)! : i % poolCount,
  );
  const load = new Array<number>(poolCount).fill(0);
  for (const p of poolOf) load[p]!++;
  // largest pools first, each to the least loaded worker (ties: the lower index)
  const workerOf = new Array<number>(poolCount).fill(0);
  const totals = new Array<number>(opts.workers).fill(0);
  const order = load.map((n, p) => [n, p] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [n, p] of order) {
    let w = 0;
    for (let i = 1; i < opts.workers; i++) if (totals[i]! < totals[w]!) w = i;
    workerOf[p] = w;
    totals[w]! += n;
  }
  const parts: WorkerPart[] = Array.from({ length: opts.workers }, (_, w) => ({
    version: 1,
    repository: opts.repository,
    objects: [],
    requests: [],
    pools: load.flatMap((n, p) => (n > 0 && workerOf[p] === w ? [p] : [])),
  }));
  const local = parts.map(() => new Map<string, number>());
  trace.records.forEach((r, index) => {
    const pool = poolOf[index]!;
    const w = workerOf[pool]!;
    const part = parts[w]!;
    if (r.method === "GET") {
      const seeded = mapping.get(r.uri);
      if (!seeded) throw new FerryError("BENCH_SETUP", `replay: no seeded object for ${r.uri}`);
      let o = local[w]!.get(r.uri);
      if (o === undefined) {
        o = part.objects.length;
        part.objects.push({ ...seeded, trace: objectIndex.get(r.uri)! });
        local[w]!.set(r.uri, o);
      }
      part.requests.push({ at: r.at, method: "GET", kind: r.kind, object: o, pool, index });
    } else part.requests.push({ at: r.at, method: "PUT", kind: r.kind, size: r.size, pool, index });
  });
  return { parts, pools: poolCount };
}
