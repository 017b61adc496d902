/**
 * Synthetic images for the push scenario: layers of a configured size and compressibility, generated
 * from a seed (AES-CTR keystream, seekable, so an upload can be re-read from any offset), fresh per
 * iteration or drawn from a pool shared by every iteration (dedupe, cross-repository mounts).
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { sha256 } from "../shared/registry/digest.ts";
import type { Descriptor, RawManifest } from "../shared/registry/manifest.ts";
import { MediaType } from "../shared/registry/media-types.ts";
import { seededStream } from "../shared/sample/seeded.ts";
import type { PushShape } from "./config.ts";

/** Blobs up to this size are generated once into memory; larger ones are generated again to send. */
const IN_MEMORY_MAX = 8 * 1024 * 1024;

export interface SyntheticBlob {
  desc: Descriptor;
  open(offset: number): Promise<Readable>;
  /** Reused from the shared pool (not fresh for this iteration). */
  pooled: boolean;
}

/** A synthetic blob: digest computed by streaming it once; kept in memory when small. */
export async function syntheticBlob(
  seed: string,
  size: number,
  compressibility: number,
  mediaType: string,
  pooled = false,
): Promise<SyntheticBlob> {
  const hash = createHash("sha256");
  if (size <= IN_MEMORY_MAX) {
    const chunks: Buffer[] = [];
    for await (const c of seededStream(seed, size, 0, compressibility)) {
      hash.update(c as Buffer);
      chunks.push(Buffer.from(c as Buffer));
    }
    const bytes = Buffer.concat(chunks);
    return {
      desc: { mediaType, digest: `sha256:${hash.digest("hex")}`, size },
      open: async (offset) => Readable.from(slices(bytes, offset)),
      pooled,
    };
  }
  for await (const c of seededStream(seed, size, 0, compressibility)) hash.update(c as Buffer);
  return {
    desc: { mediaType, digest: `sha256:${hash.digest("hex")}`, size },
    open: async (offset) => seededStream(seed, size, offset, compressibility),
    pooled,
  };
}

function* slices(bytes: Buffer, offset: number): Generator<Buffer> {
  for (let i = offset; i < bytes.length; i += 256 * 1024)
    yield bytes.subarray(i, Math.min(bytes.length, i + 256 * 1024));
}

/** A deterministic size in [min, max] for a seed. */
export function sizeFor(seed: string, min: number, max: number): number {
  if (max <= min) return min;
  const n = createHash("sha256").update(`size:${seed}`).digest().readUInt32BE(0);
  return min + (n % (max - min + 1));
}

export interface SyntheticImage {
  config: SyntheticBlob;
  layers: SyntheticBlob[];
  manifest: RawManifest;
}

/**
 * One image of the configured shape. The first `round(layers × reuse)` layers come from the run's pool
 * (the same bytes for every iteration, like shared base layers); the others are fresh for `unique`.
 */
export async function syntheticImage(
  shape: PushShape,
  runId: string,
  unique: string,
  pool: Map<string, Promise<SyntheticBlob>> = new Map(),
): Promise<SyntheticImage> {
  const pooledCount = Math.round(shape.layers * shape.reuse);
  const layers: SyntheticBlob[] = [];
  for (let i = 0; i < shape.layers; i++) {
    const pooled = i < pooledCount;
    const seed = pooled ? `ferry-bench:${runId}:pool:${i}` : `ferry-bench:${runId}:${unique}:${i}`;
    const size = sizeFor(seed, shape.layerSizeMin, shape.layerSizeMax);
    let blob = pooled ? pool.get(seed) : undefined;
    if (!blob) {
      blob = syntheticBlob(seed, size, shape.compressibility, MediaType.OciLayer, pooled);
      if (pooled) pool.set(seed, blob);
    }
    layers.push(await blob);
  }
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      created: new Date().toISOString(),
      config: { Labels: { "ferry.bench.run": runId, "ferry.bench.image": unique } },
      // The layers are not tars: the diff_ids are their digests, which is all a registry looks at.
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.desc.digest) },
    }),
  );
  const config: SyntheticBlob = {
    desc: { mediaType: MediaType.OciConfig, digest: sha256(configBytes), size: configBytes.length },
    open: async (offset) => Readable.from([configBytes.subarray(offset)]),
    pooled: false,
  };
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: config.desc,
      layers: layers.map((l) => l.desc),
      annotations: { "ferry.bench.run": runId },
    }),
  );
  return {
    config,
    layers,
    manifest: { bytes: manifestBytes, mediaType: MediaType.OciManifest, digest: sha256(manifestBytes) },
  };
}
