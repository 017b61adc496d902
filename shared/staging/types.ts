/**
 * Staging: where big blobs rest between the *stage* steps (source → staging) and the *upload* steps
 * (staging → destination) of the serverless workflow, and where plans, reports and item lists live so the
 * Step Functions state stays small (≤ 256 KiB).
 *
 * One interface with S3 semantics (multipart upload, ranged reads, small objects); two implementations:
 * S3 (any S3-compatible endpoint, s3.ts) and a local directory (fs.ts, the local default).
 * Keys are relative to the store (a bucket, or a directory); `/` separates levels.
 */
import type { Readable } from "node:stream";
import { FerryError } from "../errors.ts";

/** One uploaded part of a multipart upload, as CompleteMultipartUpload needs it. */
export interface StagedPart {
  partNumber: number;
  etag: string;
  /**
   * Bytes in the part, for the minimum-part-size check at completion (checkPartSizes). Absent in part
   * lists recorded before ferry recorded sizes: those parts are not checked (S3 itself still is).
   */
  size?: number;
}

export interface StagingStore {
  /** Human-readable location for messages: `s3://bucket` or a directory path. */
  readonly location: string;
  /** The bucket Step Functions' ItemReader/ResultWriter read (S3 only). */
  readonly bucket?: string;
  /**
   * The smallest part this store accepts anywhere but last in a multipart upload (S3: 5 MiB, S3_MIN_PART).
   * completeMultipart refuses a smaller non-final part (checkPartSizes), and partSizeFor never chooses one.
   */
  readonly minPartBytes: number;

  /** Starts a multipart upload of `key`; returns its upload id. */
  createMultipart(key: string): Promise<string>;
  /**
   * Uploads part `partNumber` (1..10,000); the answer carries its size. Every part but the last must be at
   * least `minPartBytes` (checked at completion, where "last" is known). Re-uploading a number replaces it.
   */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<StagedPart>;
  /**
   * Assembles the parts (ascending part numbers) into the object `key`. Refuses, with a StagingError and
   * before asking the backend, a part under `minPartBytes` that is not the last (checkPartSizes).
   */
  completeMultipart(key: string, uploadId: string, parts: StagedPart[]): Promise<void>;
  /** Abandons a multipart upload. Best effort: never throws (lifecycle rules purge what is left). */
  abortMultipart(key: string, uploadId: string): Promise<void>;

  /** Bytes `[start, end)` of `key` as a stream (`end` defaults to the object's size). */
  openRange(key: string, start: number, end?: number): Promise<Readable>;
  /** The size of `key`, or undefined when it does not exist. */
  size(key: string): Promise<number | undefined>;

  /** Small objects (plans, reports, item lists). */
  putObject(key: string, body: Uint8Array | string, contentType?: string): Promise<void>;
  /** The bytes of `key`, or undefined when it does not exist. */
  getObject(key: string): Promise<Buffer | undefined>;
  /** Keys under `prefix`, in lexicographic order. */
  list(prefix: string): Promise<string[]>;
  /** Deletes `key` (absent keys are fine). */
  delete(key: string): Promise<void>;
  /** Deletes every key under `prefix`; returns how many were deleted. */
  deletePrefix(prefix: string): Promise<number>;
}

/** A staging operation that failed. `retryable` for throttling, 5xx and dropped connections. */
export class StagingError extends FerryError {
  constructor(message: string, options?: ErrorOptions & { retryable?: boolean }) {
    super("STAGING", message, options);
    this.name = "StagingError";
  }
}

export async function putJson(store: StagingStore, key: string, value: unknown): Promise<void> {
  await store.putObject(key, JSON.stringify(value), "application/json");
}

/** Parses a JSON object written by putJson; undefined when absent. */
export async function getJson<T>(store: StagingStore, key: string): Promise<T | undefined> {
  const bytes = await store.getObject(key);
  if (bytes === undefined) return undefined;
  try {
    return JSON.parse(bytes.toString("utf8")) as T;
  } catch (e) {
    throw new StagingError(`${store.location}/${key} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Rejects keys that could escape the store (`..`, absolute, empty segments). */
export function checkKey(key: string): string {
  if (
    !key ||
    key.startsWith("/") ||
    key.split("/").some((s, i, all) => s === ".." || s === "." || (s === "" && i !== all.length - 1)) ||
    key.includes("\\") ||
    key.includes("\0")
  ) {
    throw new StagingError(`invalid staging key ${JSON.stringify(key)}`);
  }
  return key;
}

export const MiB = 1024 * 1024;
/** S3's smallest non-final part and most parts per upload. */
export const S3_MIN_PART = 5 * MiB;
export const S3_MAX_PARTS = 10_000;

/** `5 MiB`, `64 KiB`, `1000 bytes`: a size for messages. */
function sizeText(n: number): string {
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

/**
 * The minimum part size, checked by every store at completion: S3 refuses a non-final part under 5 MiB
 * (EntityTooSmall, only at CompleteMultipartUpload), and S3-compatible stand-ins such as s3rver do not,
 * so ferry checks it itself — the same rule for both stores, each with its own minimum. Parts without a
 * recorded size are not checked.
 */
export function checkPartSizes(
  location: string,
  key: string,
  sorted: StagedPart[],
  minPartBytes: number,
): void {
  for (const p of sorted.slice(0, -1)) {
    if (p.size !== undefined && p.size < minPartBytes)
      throw new StagingError(
        `completing ${key} in ${location}: part ${p.partNumber} is ${sizeText(p.size)}, and every part but ` +
          `the last must be at least ${sizeText(minPartBytes)} (the store's minimum part size)`,
      );
  }
}

/**
 * Part size for a blob of `size` bytes: max(5 MiB, ⌈size / 10,000⌉) rounded up to a whole MiB, so any
 * blob up to S3's 5 TiB object limit fits in 10,000 parts. `override` (options.partBytes, --part-size)
 * wins when it still keeps the upload within 10,000 parts; one under `minPartBytes` (the store's minimum,
 * default S3's) is refused with a StagingError unless it holds the whole blob (one part, the last).
 */
export function partSizeFor(size: number, override?: number, minPartBytes: number = S3_MIN_PART): number {
  const needed = Math.ceil(Math.max(0, size) / S3_MAX_PARTS);
  if (override !== undefined && override > 0 && override >= needed) {
    if (override < minPartBytes && override < size)
      throw new StagingError(
        `part size ${sizeText(override)} (options.partBytes, --part-size) is under the staging store's minimum part ` +
          `size of ${sizeText(minPartBytes)}: give at least that, or leave it out`,
      );
    return override;
  }
  return Math.ceil(Math.max(S3_MIN_PART, minPartBytes, needed) / MiB) * MiB;
}
