/**
 * Synthetic images for the push scenario: layers of a configured size and compressibility, generated
 * from a seed (AES-CTR keystream, seekable, so an upload can be re-read from any offset), fresh per
 * iteration or drawn from a pool shared by every iteration (dedupe, cross-repository mounts).
 */
import { createCipheriv, createHash } from "node:crypto";
import { Readable } from "node:stream";
import { sha256 } from "../shared/registry/digest.ts";
import type { Descriptor, RawManifest } from "../shared/registry/manifest.ts";
import { MediaType } from "../shared/registry/media-types.ts";
import type { PushShape } from "./config.ts";

const BLOCK = 64 * 1024;
/** Blobs up to this size are generated once into memory; larger ones are generated again to send. */
const IN_MEMORY_MAX = 8 * 1024 * 1024;

export interface SyntheticBlob {
  desc: Descriptor;
  open(offset: number): Promise<Readable>;
  /** Reused from the shared pool (not fresh for this iteration). */
  pooled: boolean;
}

/**
 * `size` bytes from `seed`: in every 64 KiB block, the first `compressibility` share is zeros and the
 * rest pseudo-random (incompressible). Deterministic and seekable.
 */
export function syntheticStream(seed: string, size: number, compressibility: number, offset = 0): Readable {
  const key = createHash("sha256").update(seed).digest().subarray(0, 16);
  const zerosPerBlock = Math.round(BLOCK * compressibility);
  let pos = offset;
  // Keystream position = block index × random bytes per block + offset within the random part.
  const randomPerBlock = BLOCK - zerosPerBlock;
  const zeros = Buffer.alloc(BLOCK);
  const cipherAt = (blockIndex: number, within: number) => {
    const ksOffset = blockIndex * randomPerBlock + within;
    const iv = Buffer.alloc(16);
    iv.writeBigUInt64BE(BigInt(Math.floor(ksOffset / 16)), 8);
    const c = createCipheriv("aes-128-ctr", key, iv);
    const skip = ksOffset % 16;
    if (skip) c.update(zeros.subarray(0, skip));
    return c;
  };
  let cipher: ReturnType<typeof cipherAt> | undefined;
  return new Readable({
    highWaterMark: BLOCK,
    read() {
      if (pos >= size) {
        this.push(null);
        return;
      }
      const block = Math.floor(pos / BLOCK);
      const within = pos - block * BLOCK;
      const blockEnd = Math.min(size, (block + 1) * BLOCK);
      if (within < zerosPerBlock) {
        const n = Math.min(zerosPerBlock - within, blockEnd - pos);
        pos += n;
        this.push(zeros.subarray(0, n));
        return;
      }
      cipher ??= cipherAt(block, within - zerosPerBlock);
      const n = blockEnd - pos;
      const out = cipher.update(zeros.subarray(0, n));
      pos += n;
      // the next block's random part continues the keystream exactly where this one stopped
      if (pos % BLOCK !== 0) cipher = undefined;
      this.push(out);
    },
  });
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
    for await (const c of syntheticStream(seed, size, compressibility)) {
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
  for await (const c of syntheticStream(seed, size, compressibility)) hash.update(c as Buffer);
  return {
    desc: { mediaType, digest: `sha256:${hash.digest("hex")}`, size },
    open: async (offset) => syntheticStream(seed, size, compressibility, offset),
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
