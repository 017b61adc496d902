/**
 * Staging in S3 (or any S3-compatible server: MinIO, s3rver, ...) through @aws-sdk/client-s3.
 *
 * Client settings: the SDK (≥ 3.729) adds CRC checksums and aws-chunked encoding by default, which
 * third-party servers mishandle, so checksums are only computed when an operation requires them
 * (`WHEN_REQUIRED`, both directions); ferry hashes the blob itself anyway (S3 cannot give the sha256 of
 * a multipart object). With a custom endpoint, path-style addressing (`forcePathStyle`).
 * Parts are sent from memory (a part is at most a few MiB); whole blobs are never buffered.
 *
 * S3 refuses a non-final part under 5 MiB, but only at CompleteMultipartUpload, and s3rver never does:
 * the store checks it itself before completing (`minPartBytes`, default 5 MiB; tests against s3rver lower
 * it explicitly to stage in small parts).
 *
 * Endpoint: `endpoint` here, or the SDK's own `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` from the
 * environment (how the bundled Lambda handlers are pointed at s3rver in the tests: with an IP-address
 * endpoint the SDK addresses buckets by path, so no other setting is needed).
 */

import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import {
  checkKey,
  checkPartSizes,
  S3_MIN_PART,
  type StagedPart,
  StagingError,
  type StagingStore,
} from "./types.ts";

export interface S3StagingOptions {
  bucket: string;
  /** An S3-compatible endpoint (`http://127.0.0.1:4568`); path-style addressing is then used. */
  endpoint?: string;
  /** Default: AWS_REGION, else us-east-1. */
  region?: string;
  /** Default: the SDK's provider chain (Lambda role, env, profile). */
  credentials?: S3ClientConfig["credentials"];
  /** An existing client (tests, shared configuration). */
  client?: S3Client;
  /**
   * The smallest non-final part accepted (default S3's 5 MiB). Only for S3-compatible servers with a
   * lower minimum (s3rver has none): tests lower it to stage in 64 KiB parts.
   */
  minPartBytes?: number;
}

export function makeS3Client(opts: Omit<S3StagingOptions, "bucket" | "client">): S3Client {
  return new S3Client({
    region: opts.region ?? process.env.AWS_REGION ?? "us-east-1",
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
  });
}

export class S3StagingStore implements StagingStore {
  readonly bucket: string;
  readonly location: string;
  readonly client: S3Client;
  readonly minPartBytes: number;

  constructor(opts: S3StagingOptions) {
    if (!opts.bucket) throw new StagingError("S3 staging needs a bucket name");
    this.bucket = opts.bucket;
    this.location = `s3://${opts.bucket}`;
    this.client = opts.client ?? makeS3Client(opts);
    this.minPartBytes = opts.minPartBytes ?? S3_MIN_PART;
  }

  private async send<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw toStagingError(`${what} (${this.location})`, e);
    }
  }

  async createMultipart(key: string): Promise<string> {
    const res = await this.send(`start multipart upload of ${key}`, () =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: checkKey(key) })),
    );
    if (!res.UploadId) throw new StagingError(`S3 returned no UploadId for ${key}`);
    return res.UploadId;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<StagedPart> {
    const res = await this.send(`upload part ${partNumber} of ${key}`, () =>
      this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: checkKey(key),
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.length,
        }),
      ),
    );
    if (!res.ETag) throw new StagingError(`S3 returned no ETag for part ${partNumber} of ${key}`);
    return { partNumber, etag: res.ETag, size: body.length };
  }

  async completeMultipart(key: string, uploadId: string, parts: StagedPart[]): Promise<void> {
    const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber);
    checkPartSizes(this.location, key, sorted, this.minPartBytes);
    await this.send(`complete multipart upload of ${key}`, () =>
      this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: checkKey(key),
          UploadId: uploadId,
          MultipartUpload: { Parts: sorted.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
      ),
    );
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: checkKey(key), UploadId: uploadId }),
      );
    } catch {
      // best effort: the bucket's AbortIncompleteMultipartUpload lifecycle rule purges the rest
    }
  }

  async openRange(key: string, start: number, end?: number): Promise<Readable> {
    if (end !== undefined && end <= start) {
      const { Readable } = await import("node:stream");
      return Readable.from([]);
    }
    const res = await this.send(`read ${key} from ${start}`, () =>
      this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: checkKey(key),
          Range: `bytes=${start}-${end !== undefined ? end - 1 : ""}`,
        }),
      ),
    );
    if (!res.Body) throw new StagingError(`S3 returned no body for ${key}`);
    return res.Body as Readable;
  }

  async size(key: string): Promise<number | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: checkKey(key) }));
      return res.ContentLength;
    } catch (e) {
      if (isNotFound(e) || (await this.deniedButMissing(key, e))) return undefined;
      throw toStagingError(`check ${key} (${this.location})`, e);
    }
  }

  /**
   * S3 answers a read of a missing key with 404 only to callers allowed to list the bucket, and 403
   * otherwise. ferry's roles may list only their own prefix of the bucket (s3:ListBucket with an
   * `s3:prefix` condition: infra/constructs/image-transfer.ts), and a GET or HEAD carries no `s3:prefix`
   * for that implicit check to match. So a 403 on a read is asked again as a listing of exactly that key,
   * which does carry it: no such key means missing; otherwise (or if the listing is refused too) the 403
   * stands. Costs one request, only when a record is missing.
   */
  private async deniedButMissing(key: string, e: unknown): Promise<boolean> {
    if (!isAccessDenied(e)) return false;
    try {
      const res = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: key, MaxKeys: 1 }),
      );
      // Keys list in byte order, and every other key with this prefix is longer: the key comes first.
      return !(res.Contents ?? []).some((o) => o.Key === key);
    } catch {
      return false;
    }
  }

  async putObject(key: string, body: Uint8Array | string, contentType?: string): Promise<void> {
    const bytes = typeof body === "string" ? Buffer.from(body) : body;
    await this.send(`write ${key}`, () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: checkKey(key),
          Body: bytes,
          ContentLength: bytes.length,
          ...(contentType ? { ContentType: contentType } : {}),
        }),
      ),
    );
  }

  async getObject(key: string): Promise<Buffer | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: checkKey(key) }));
      if (!res.Body) return Buffer.alloc(0);
      return Buffer.from(await res.Body.transformToByteArray());
    } catch (e) {
      if (isNotFound(e) || (await this.deniedButMissing(key, e))) return undefined;
      throw toStagingError(`read ${key} (${this.location})`, e);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const res = await this.send(`list ${prefix}`, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        ),
      );
      for (const o of res.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  async delete(key: string): Promise<void> {
    await this.send(`delete ${key}`, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: checkKey(key) })),
    );
  }

  async deletePrefix(prefix: string): Promise<number> {
    const keys = await this.list(prefix);
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      await this.send(`delete ${batch.length} objects under ${prefix}`, () =>
        this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        ),
      );
    }
    return keys.length;
  }
}

function isAccessDenied(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err?.name === "AccessDenied" || err?.name === "Forbidden" || err?.$metadata?.httpStatusCode === 403;
}

function isNotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err?.name === "NoSuchKey" || err?.name === "NotFound" || err?.$metadata?.httpStatusCode === 404;
}

const RETRYABLE_NAMES = new Set([
  "SlowDown",
  "ThrottlingException",
  "RequestTimeout",
  "RequestTimeoutException",
  "InternalError",
  "ServiceUnavailable",
  "TimeoutError",
]);

/** An SDK error as a StagingError that says whether trying again can help. */
export function toStagingError(what: string, e: unknown): StagingError {
  if (e instanceof StagingError) return e;
  const err = e as {
    name?: string;
    message?: string;
    code?: string;
    $retryable?: unknown;
    $metadata?: { httpStatusCode?: number };
  };
  const status = err?.$metadata?.httpStatusCode;
  const retryable =
    Boolean(err?.$retryable) ||
    (status !== undefined && (status >= 500 || status === 429 || status === 408)) ||
    RETRYABLE_NAMES.has(err?.name ?? "") ||
    /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|UND_ERR_SOCKET)$/.test(err?.code ?? "");
  const detail =
    err?.name && err.name !== "Error" ? `${err.name}: ${err.message}` : (err?.message ?? String(e));
  return new StagingError(`${what}: ${detail}${status ? ` (HTTP ${status})` : ""}`, {
    cause: e,
    retryable,
  });
}
