/**
 * Digests: parse, compute, and verify while streaming (never afterwards).
 */
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { DigestMismatchError, InvalidReferenceError, SizeMismatchError } from "./errors.ts";
import { Sha256 } from "./sha256.ts";

/** A content digest such as `sha256:<64 hex>`. sha256 and sha512 are accepted. */
export type Digest = string;

const ALGORITHMS: Record<string, number> = { sha256: 64, sha512: 128 };

/** Validates `algo:hex` and returns it unchanged; throws InvalidReferenceError otherwise. */
export function parseDigest(value: string): Digest {
  const m = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/.exec(value);
  if (!m)
    throw new InvalidReferenceError(
      `invalid digest ${JSON.stringify(truncate(value))}: expected algorithm:hex`,
    );
  const [, algo, hex] = m as unknown as [string, string, string];
  const len = ALGORITHMS[algo];
  if (len === undefined)
    throw new InvalidReferenceError(`unsupported digest algorithm "${algo}" (sha256 or sha512)`);
  if (hex.length !== len || !/^[a-f0-9]+$/.test(hex)) {
    throw new InvalidReferenceError(
      `invalid ${algo} digest ${JSON.stringify(truncate(value))}: expected ${len} lowercase hex characters`,
    );
  }
  return value;
}

export function isDigest(value: string): boolean {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function digestAlgorithm(digest: Digest): string {
  return digest.slice(0, digest.indexOf(":"));
}

export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(":") + 1);
}

/** A hash for the digest's algorithm. */
export function hasherFor(digest: Digest): Hash {
  return createHash(digestAlgorithm(digest));
}

export function sha256(data: Uint8Array | string): Digest {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** Computes the digest of `data` with the same algorithm as `like`. */
export function digestOf(data: Uint8Array, like: Digest = "sha256:"): Digest {
  const algo = digestAlgorithm(like) || "sha256";
  return `${algo}:${createHash(algo).update(data).digest("hex")}`;
}

export interface VerifyOptions {
  /** Expected digest. */
  digest: Digest;
  /** Expected size in bytes, when known (-1 or undefined: unknown). */
  size?: number;
  /** Names the content in errors, e.g. `blob sha256:… in registry/repo`. */
  what?: string;
}

/**
 * A pass-through stream that hashes what flows through it, refuses to pass more bytes than `size`,
 * and fails at end of stream when the size or digest does not match. Downstream consumers that
 * commit data (an upload's final PUT, a rename into a blob store) must only commit after this stream ends
 * without error.
 */
export class VerifyingStream extends Transform {
  readonly expected: Digest;
  readonly expectedSize: number;
  private readonly what: string;
  private readonly hash: Hash;
  /** Bytes seen so far. */
  bytes = 0;

  constructor(opts: VerifyOptions) {
    super();
    this.expected = opts.digest;
    this.expectedSize = opts.size ?? -1;
    this.what = opts.what ?? opts.digest;
    this.hash = hasherFor(opts.digest);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expectedSize >= 0 && this.bytes > this.expectedSize) {
      cb(new SizeMismatchError(this.what, this.expectedSize, this.bytes));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.expectedSize >= 0 && this.bytes !== this.expectedSize) {
      cb(new SizeMismatchError(this.what, this.expectedSize, this.bytes));
      return;
    }
    const actual = `${digestAlgorithm(this.expected)}:${this.hash.digest("hex")}`;
    if (actual !== this.expected) {
      cb(new DigestMismatchError(this.what, this.expected, actual));
      return;
    }
    cb();
  }
}

function truncate(s: string): string {
  return s.length > 100 ? `${s.slice(0, 100)}…` : s;
}

/**
 * The running digest of a blob, for uploads and staging. A blob moved in one go is hashed natively
 * (OpenSSL, ~1.5 GiB/s). A blob moved in several runs — Lambda steps, each with its byte budget — needs
 * its hash *state* carried from one run to the next; Node's crypto cannot export it, so such blobs use
 * the TypeScript SHA-256 in sha256.ts (~100 MiB/s), whose state exports to a short string. sha256 only:
 * other algorithms are moved in one run.
 */
export interface BlobHash {
  update(data: Uint8Array): void;
  /** A copy at this point (to roll back a chunk that failed). */
  copy(): BlobHash;
  /** `alg:hex` of the bytes so far; the hash can go on afterwards. */
  digest(): Digest;
  /** The state to resume from in another run. Only for a resumable hash. */
  exportState(): string;
  readonly resumable: boolean;
}

class NativeBlobHash implements BlobHash {
  readonly resumable = false;
  private readonly algo: string;
  private readonly h: Hash;
  constructor(algo: string, h?: Hash) {
    this.algo = algo;
    this.h = h ?? createHash(algo);
  }
  update(data: Uint8Array): void {
    this.h.update(data);
  }
  copy(): BlobHash {
    return new NativeBlobHash(this.algo, this.h.copy());
  }
  digest(): Digest {
    return `${this.algo}:${this.h.copy().digest("hex")}`;
  }
  exportState(): string {
    throw new Error("a native hash cannot be carried to another run");
  }
}

class CarriedBlobHash implements BlobHash {
  readonly resumable = true;
  private readonly h: Sha256;
  constructor(h: Sha256) {
    this.h = h;
  }
  update(data: Uint8Array): void {
    this.h.update(data);
  }
  copy(): BlobHash {
    return new CarriedBlobHash(Sha256.fromState(this.h.exportState()));
  }
  digest(): Digest {
    return `sha256:${Sha256.fromState(this.h.exportState()).digest()}`;
  }
  exportState(): string {
    return this.h.exportState();
  }
}

/**
 * The hash for a run covering bytes `[from, to)` of a blob of `size` bytes with digest `digest`,
 * resumed from `state` when the run does not start at 0. Native when the run covers the whole blob.
 */
export function blobHash(
  digest: Digest,
  run: { from: number; to: number; size: number; state?: string | undefined },
): BlobHash {
  if (run.from === 0 && (run.to >= run.size || run.size < 0 || !carriesDigest(digest)))
    return new NativeBlobHash(digestAlgorithm(digest) || "sha256");
  if (!carriesDigest(digest)) throw new Error(`${digest}: only sha256 blobs can be moved in several runs`);
  if (run.from === 0) return new CarriedBlobHash(new Sha256());
  if (!run.state) throw new Error(`no hash state to resume at offset ${run.from}`);
  const h = Sha256.fromState(run.state);
  if (h.bytes !== run.from)
    throw new Error(`hash state covers ${h.bytes} bytes but the run resumes at ${run.from}`);
  return new CarriedBlobHash(h);
}

/** Digests whose running hash ferry can carry between runs. */
export function carriesDigest(digest: Digest): boolean {
  return digest.startsWith("sha256:");
}
