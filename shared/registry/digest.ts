/**
 * Digests: parse, compute, and verify while streaming (never afterwards).
 */
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { DigestMismatchError, InvalidReferenceError, SizeMismatchError } from "./errors.ts";

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
