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
import pLimit from "p-limit";
import type { RegistryClient } from "../../shared/registry/client.ts";
import {
  DigestMismatchError,
  FerryError,
  RegistryError,
  SizeMismatchError,
} from "../../shared/registry/errors.ts";
import {
  type Descriptor,
  type Manifest,
  type Platform,
  parseManifest,
  parsePlatform,
  platformMatches,
  referencedBlobs,
} from "../../shared/registry/manifest.ts";
import { formatReference, type Reference, type Repository } from "../../shared/registry/reference.ts";
import { pushBlob } from "../../shared/registry/uploads.ts";
import type { BenchConfig, IterationKind } from "./config.ts";
import type { Metrics } from "./metrics.ts";
import { type SyntheticBlob, type SyntheticImage, syntheticImage } from "./synth.ts";

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
    url: client.url(ref, `manifests/${ref.tag ?? ref.digest}`).toString(),
    errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }],
    context: `resolve ${formatReference(ref)}`,
  });
}

/** A docker-like pull of one platform: resolve, manifests, then every blob. */
async function pull(ctx: WorkerContext, client: RegistryClient, ref: Reference): Promise<number> {
  const { metrics, config } = ctx;
  let digest = ref.digest;
  if (!digest) {
    const head = await client.headManifest(ref);
    if (!head) throw notFound(client, ref);
    digest = head.digest;
  }
  const repo: Repository = { registry: ref.registry, repository: ref.repository };
  let bytes = 0;
  const getManifest = async (d: string): Promise<Manifest> => {
    const raw = await client.getManifest({ ...repo, digest: d }); // verified against the digest
    metrics.addBytes("manifest.get", raw.bytes.length);
    bytes += raw.bytes.length;
    return parseManifest(raw.bytes, raw.mediaType, `manifest ${d}`);
  };
  let m = await getManifest(digest);
  if (m.kind === "index") {
    const child = pickPlatform(m.manifests, ctx.platform);
    if (!child) throw new FerryError("NO_PLATFORM", `${formatReference(ref)}: the index lists no manifest`);
    m = await getManifest(child.digest);
  }
  const limit = pLimit(config.pullConcurrency);
  const blobs = referencedBlobs(m);
  const sizes = await Promise.all(blobs.map((d) => limit(() => readBlob(ctx, client, repo, d))));
  return bytes + sizes.reduce((a, b) => a + b, 0);
}

function pickPlatform(list: Descriptor[], wanted: Platform | undefined): Descriptor | undefined {
  if (wanted) return list.find((d) => platformMatches(wanted, d.platform));
  return list.find((d) => platformMatches({ os: "linux", architecture: "amd64" }, d.platform)) ?? list[0];
}

async function readBlob(
  ctx: WorkerContext,
  client: RegistryClient,
  repo: Repository,
  desc: Descriptor,
): Promise<number> {
  const stream = ctx.config.verify ? await client.getBlob(repo, desc) : await client.openBlob(repo, desc);
  let n = 0;
  try {
    for await (const chunk of stream) {
      const len = (chunk as Buffer).length;
      n += len;
      ctx.metrics.addBytes("blob.get", len);
    }
  } catch (err) {
    if (err instanceof DigestMismatchError || err instanceof SizeMismatchError)
      ctx.metrics.count("verifyFailures");
    throw err;
  }
  if (ctx.config.verify) ctx.metrics.count("blobsVerified");
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
    if (!(await client.headManifest(ref))) throw notFound(client, ref);
    return 0;
  }
  const raw = await client.getManifest(ref);
  ctx.metrics.addBytes("manifest.get", raw.bytes.length);
  return raw.bytes.length;
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
  const limit = pLimit(config.push.concurrency);
  await Promise.all(
    [...img.layers, img.config].map((b) =>
      limit(async () => {
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
          let set = ctx.homes.get(b.desc.digest);
          if (!set) ctx.homes.set(b.desc.digest, (set = new Set()));
          set.add(repo.repository);
        }
      }),
    ),
  );
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
