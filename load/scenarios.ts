/**
 * What one iteration of each scenario does, over a RegistryClient whose observer records every
 * HTTP exchange. Bytes moved are counted here (the observer sees headers, not bodies).
 *
 * - pull:     HEAD the tag (resolve) → GET the manifest by digest → for an index, GET the platform's
 *             manifest → GET config and layers (`pullConcurrency` at once), each digest-verified while
 *             streaming unless --no-verify.
 * - push:     a synthetic image: per blob HEAD → (mount from a repository known to have it) → POST + PUT
 *             (or PATCH chunks); then PUT the manifest under a run-unique tag. Recorded for read-back/cleanup.
 * - manifest: HEAD or GET of a manifest by tag (alternating with `both`).
 * - catalog / tags: the full listing, following `Link` pages of `pageSize`.
 */
import { mapLimit } from "../shared/concurrency.ts";
import { headerValue, type RegistryClient } from "../shared/registry/client.ts";
import { digestAlgorithm, digestOf, hasherFor } from "../shared/registry/digest.ts";
import {
  DigestMismatchError,
  FerryError,
  RegistryError,
  SizeMismatchError,
} from "../shared/registry/errors.ts";
import { discard, drain } from "../shared/registry/http/transport.ts";
import {
  type Descriptor,
  MAX_MANIFEST_BYTES,
  type Manifest,
  type Platform,
  parseManifest,
  parsePlatform,
  platformMatches,
  referencedBlobs,
} from "../shared/registry/manifest.ts";
import { MANIFEST_ACCEPT, normaliseMediaType } from "../shared/registry/media-types.ts";
import {
  formatReference,
  formatRepository,
  type Reference,
  type Repository,
  referenceTarget,
} from "../shared/registry/reference.ts";
import { pushBlob } from "../shared/registry/uploads.ts";
import type { BenchConfig, IterationKind } from "./config.ts";
import type { Metrics } from "./metrics.ts";
import { type SyntheticBlob, type SyntheticImage, syntheticImage } from "./synth.ts";

const ACCEPT = MANIFEST_ACCEPT.join(", ");

/** An image a push scenario (or the seed step) created: listed in the report, read back, cleaned up. */
export interface CreatedImage {
  repository: string;
  tag: string;
  digest: string;
  /** Blob digests the manifest references (config and layers). */
  blobs: string[];
  /** Pushed by the setup step for the pull/manifest/tags scenarios. */
  seed?: boolean;
}

/** State one worker's iterations share. */
export interface WorkerContext {
  config: BenchConfig;
  worker: number;
  metrics: Metrics;
  /** Images read by pull / manifest / tags. */
  targets: Reference[];
  platform?: Platform;
  created: CreatedImage[];
  /** Pool layers generated once per worker. */
  pool: Map<string, Promise<SyntheticBlob>>;
  /** Repositories each pool blob is known to be in (mount sources). */
  homes: Map<string, Set<string>>;
}

export function newWorkerContext(
  config: BenchConfig,
  worker: number,
  metrics: Metrics,
  targets: Reference[],
): WorkerContext {
  return {
    config,
    worker,
    metrics,
    targets,
    ...(config.platform ? { platform: parsePlatform(config.platform) } : {}),
    created: [],
    pool: new Map(),
    homes: new Map(),
  };
}

/** Runs iteration `n` of `kind`; returns the bytes it moved. */
export async function runIteration(
  kind: IterationKind,
  ctx: WorkerContext,
  client: RegistryClient,
  n: number,
  prepared?: SyntheticImage,
): Promise<number> {
  switch (kind) {
    case "pull":
      return pull(ctx, client, target(ctx, n));
    case "push":
      return push(ctx, client, n, prepared);
    case "manifest":
      return manifest(ctx, client, target(ctx, n), n);
    case "catalog":
      for await (const _ of client.catalog(ctx.config.registry, ctx.config.pageSize));
      return 0;
    case "tags": {
      const t = ctx.targets.length
        ? target(ctx, n)
        : { registry: ctx.config.registry, repository: ctx.config.repository };
      for await (const _ of client.tags(t, ctx.config.pageSize));
      return 0;
    }
  }
}

function target(ctx: WorkerContext, n: number): Reference {
  const t = ctx.targets[n % Math.max(1, ctx.targets.length)];
  if (!t) throw new FerryError("USAGE", "no image to read: give --image or let bench push a seed image");
  return t;
}

function notFound(client: RegistryClient, ref: Reference): RegistryError {
  return new RegistryError({
    status: 404,
    method: "HEAD",
    url: client.url(ref, `manifests/${referenceTarget(ref)}`).toString(),
    errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }],
    context: `resolve ${formatReference(ref)}`,
  });
}

/*
 * The hot paths below are lean on purpose: they go through the client's transport (auth, tokens,
 * redirects, the observer that times every exchange) but read bodies in one step or with plain 'data'
 * events rather than through the client's resumable async-iterator streams, so the tool spends as
 * little CPU per request as possible (see bench/load-vs-wrk.ts). Sizes and digests are still checked.
 */

/** `HEAD` a manifest: its digest, or undefined on 404. */
async function headManifest(client: RegistryClient, ref: Reference): Promise<string | undefined> {
  const res = await client.request({
    op: "manifest.head",
    method: "HEAD",
    registry: ref.registry,
    url: client.url(ref, `manifests/${referenceTarget(ref)}`),
    headers: { accept: ACCEPT },
    scopes: client.scopes(ref, ["pull"]),
    expect: [200, 404],
    context: `check manifest ${formatReference(ref)}`,
  });
  await drain(res.body);
  if (res.status === 404) return undefined;
  return headerValue(res.headers["docker-content-digest"]) ?? ref.digest ?? "";
}

/** What reading needs of a worker's context (the replay worker reads with these too). */
export type ReadContext = { config: Pick<BenchConfig, "verify">; metrics: Metrics };

/** `GET` a manifest's bytes; checked against the reference's digest when it has one and `verify` is on. */
export async function getManifest(
  ctx: ReadContext,
  client: RegistryClient,
  ref: Reference,
): Promise<{ bytes: Buffer; mediaType: string }> {
  const what = `manifest ${formatReference(ref)}`;
  const res = await client.request({
    op: "manifest.get",
    method: "GET",
    registry: ref.registry,
    url: client.url(ref, `manifests/${referenceTarget(ref)}`),
    headers: { accept: ACCEPT },
    scopes: client.scopes(ref, ["pull"]),
    expect: [200],
    context: `pull ${what}`,
  });
  if (Number(headerValue(res.headers["content-length"]) ?? 0) > MAX_MANIFEST_BYTES) {
    discard(res.body);
    throw new FerryError("MANIFEST_TOO_LARGE", `${what}: over the ${MAX_MANIFEST_BYTES}-byte manifest limit`);
  }
  const bytes = Buffer.from(await res.body.arrayBuffer());
  ctx.metrics.addBytes("manifest.get", bytes.length);
  if (ref.digest && ctx.config.verify) {
    const actual = digestOf(bytes, ref.digest);
    if (actual !== ref.digest) {
      ctx.metrics.count("verifyFailures");
      throw new DigestMismatchError(what, ref.digest, actual);
    }
  }
  return { bytes, mediaType: normaliseMediaType(headerValue(res.headers["content-type"])) };
}

/** A docker-like pull of one platform: resolve, manifests, then every blob. */
async function pull(ctx: WorkerContext, client: RegistryClient, ref: Reference): Promise<number> {
  const { config } = ctx;
  const digest = ref.digest ?? (await headManifest(client, ref));
  if (digest === undefined) throw notFound(client, ref);
  const repo: Repository = { registry: ref.registry, repository: ref.repository };
  let bytes = 0;
  const manifestOf = async (d: string): Promise<Manifest> => {
    const raw = await getManifest(ctx, client, d ? { ...repo, digest: d } : ref);
    bytes += raw.bytes.length;
    return parseManifest(raw.bytes, raw.mediaType, `manifest ${d}`);
  };
  let m = await manifestOf(digest);
  if (m.kind === "index") {
    const child = pickPlatform(m.manifests, ctx.platform);
    if (!child) throw new FerryError("NO_PLATFORM", `${formatReference(ref)}: the index lists no manifest`);
    m = await manifestOf(child.digest);
  }
  // Every blob read settles before the iteration ends (no read outlives its iteration); the first failure
  // fails it, and no read starts after it.
  const reads = await mapLimit(referencedBlobs(m), config.pullConcurrency, (d) =>
    readBlob(ctx, client, repo, d),
  );
  return bytes + reads.reduce((a, r) => a + r, 0);
}

function pickPlatform(list: Descriptor[], wanted: Platform | undefined): Descriptor | undefined {
  if (wanted) return list.find((d) => platformMatches(wanted, d.platform));
  return list.find((d) => platformMatches({ os: "linux", architecture: "amd64" }, d.platform)) ?? list[0];
}

/** `GET` a blob, counting (and unless --no-verify, hashing) its bytes as they arrive. */
export async function readBlob(
  ctx: ReadContext,
  client: RegistryClient,
  repo: Repository,
  desc: Descriptor,
): Promise<number> {
  const what = `blob ${desc.digest} from ${formatRepository(repo)}`;
  const res = await client.request({
    op: "blob.get",
    method: "GET",
    registry: repo.registry,
    url: client.url(repo, `blobs/${desc.digest}`),
    scopes: client.scopes(repo, ["pull"]),
    expect: [200],
    context: `pull ${what}`,
  });
  const hash = ctx.config.verify ? hasherFor(desc.digest) : undefined;
  const metrics = ctx.metrics;
  let n = 0;
  const body = res.body;
  const done = new Promise<void>((resolve, reject) => {
    body.on("data", (chunk: Buffer) => {
      n += chunk.length;
      if (n > desc.size) {
        body.destroy(new SizeMismatchError(what, desc.size, n));
        return;
      }
      hash?.update(chunk);
      metrics.addBytes("blob.get", chunk.length);
    });
    body.once("end", resolve);
    body.once("error", reject);
  });
  try {
    await done;
  } catch (err) {
    if (err instanceof SizeMismatchError) metrics.count("verifyFailures");
    throw err;
  }
  if (n !== desc.size) {
    metrics.count("verifyFailures");
    throw new SizeMismatchError(what, desc.size, n);
  }
  if (hash) {
    const actual = `${digestAlgorithm(desc.digest)}:${hash.digest("hex")}`;
    if (actual !== desc.digest) {
      metrics.count("verifyFailures");
      throw new DigestMismatchError(what, desc.digest, actual);
    }
    metrics.count("blobsVerified");
  }
  return n;
}

async function manifest(
  ctx: WorkerContext,
  client: RegistryClient,
  ref: Reference,
  n: number,
): Promise<number> {
  const op = ctx.config.manifestOp === "both" ? (n % 2 === 0 ? "get" : "head") : ctx.config.manifestOp;
  if (op === "head") {
    if ((await headManifest(client, ref)) === undefined) throw notFound(client, ref);
    return 0;
  }
  return (await getManifest(ctx, client, ref)).bytes.length;
}

/** The repository iteration `n` pushes to. */
export function pushRepository(config: BenchConfig, n: number): Repository {
  const repository =
    config.push.repos > 1 ? `${config.repository}-${n % config.push.repos}` : config.repository;
  return { registry: config.registry, repository };
}

/** Generates iteration `n`'s image (outside the timed part in the closed model). */
export function prepareImage(ctx: WorkerContext, n: number): Promise<SyntheticImage> {
  return syntheticImage(ctx.config.push, ctx.config.runId, `w${ctx.worker}-i${n}`, ctx.pool);
}

async function push(
  ctx: WorkerContext,
  client: RegistryClient,
  n: number,
  prepared?: SyntheticImage,
): Promise<number> {
  const { config, metrics } = ctx;
  const repo = pushRepository(config, n);
  client.declarePush(repo);
  const img = prepared ?? (await prepareImage(ctx, n));
  const rules = client.options.uploadRules(repo.registry);
  let bytes = 0;
  await mapLimit([...img.layers, img.config], config.push.concurrency, async (b) => {
    const chunked = !rules.monolithicOnly && b.desc.size > rules.monolithicMax;
    const op = chunked ? "upload.patch" : "upload.put";
    const homes = b.pooled ? [...(ctx.homes.get(b.desc.digest) ?? [])] : [];
    await pushBlob(client, repo, b.desc, b.open, {
      mountFrom: homes
        .filter((h) => h !== repo.repository)
        .map((h) => ({ registry: repo.registry, repository: h })),
      progress: (k) => {
        bytes += k;
        metrics.addBytes(op, k);
      },
    });
    if (b.pooled) {
      const set = ctx.homes.get(b.desc.digest) ?? new Set<string>();
      set.add(repo.repository);
      ctx.homes.set(b.desc.digest, set);
    }
  });
  const tag = `${config.runId}-w${ctx.worker}-${n}`;
  await client.putManifest(repo, tag, img.manifest);
  metrics.addBytes("manifest.put", img.manifest.bytes.length);
  ctx.created.push({
    repository: repo.repository,
    tag,
    digest: img.manifest.digest,
    blobs: [img.config.desc.digest, ...img.layers.map((l) => l.desc.digest)],
  });
  return bytes + img.manifest.bytes.length;
}
