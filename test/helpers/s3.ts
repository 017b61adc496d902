/**
 * A real S3-compatible server for tests: s3rver (npm, 3.7.1) on a free loopback port with a temp
 * directory, and a bucket. Limits worth knowing: no AbortMultipartUpload, no ListParts, no lifecycle,
 * no checksums (the S3 staging store is configured not to send them). One thing mended: S3's
 * read-after-write consistency (`consistentPuts`).
 */
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, readdirSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { removeTmpDir, tmpDir } from "./tmp.ts";

/** The parts of s3rver's filesystem store that consistentPuts uses and replaces. */
interface S3rverStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: unknown, md5: string): Promise<void>;
  putObject(object: {
    bucket: string;
    key: string;
    metadata: unknown;
    content: Buffer | Readable;
  }): Promise<{ size: number; md5: string }>;
}

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  store: S3rverStore;
}

/**
 * s3rver 3.7.1 answers a PUT before the object's file is written: it ends the file's write stream and
 * resolves at once (for a stream body it waits for its hashing step, not for the file). A GET right
 * after — the next workflow step reading the record the last one wrote — could then read an empty or
 * half-written file ("Unexpected end of JSON input", seen once in CI under load). S3 itself is strongly
 * consistent after a write. Here the object is written to a temporary file beside it, which replaces the
 * old one only once it is whole and closed, before the PUT is answered: a reader sees the old object or
 * the new one, as on S3. (The temporary name does not end in s3rver's object suffix, so no listing
 * shows it.)
 */
function consistentPuts(store: S3rverStore): void {
  store.putObject = async (object) => {
    const path = store.getResourcePath(object.bucket, object.key, "object");
    await mkdir(dirname(path), { recursive: true });
    const temporary = `${path}.ferry-${randomBytes(6).toString("hex")}`;
    const md5 = createHash("md5");
    let size = 0;
    const body = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
    const measure = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        md5.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(body, measure, createWriteStream(temporary));
      await rename(temporary, path);
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
    const digest = md5.digest("hex");
    await store.putMetadata(object.bucket, object.key, object.metadata, digest);
    return { size, md5: digest };
  };
}
type S3rverCtor = new (opts: {
  port: number;
  address: string;
  directory: string;
  silent: boolean;
  configureBuckets: { name: string }[];
  allowMismatchedSignatures?: boolean;
}) => S3rverInstance;

export interface RunningS3 {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  bucket: string;
  /** s3rver accepts any credentials; these are what the tests send. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** The server's storage directory. */
  directory: string;
  /**
   * Upload ids of the multipart uploads s3rver still holds, read from its directory (it has no
   * ListMultipartUploads). Completing an upload removes it; aborting cannot (no AbortMultipartUpload).
   */
  openUploads(): string[];
  stop(): Promise<void>;
}

export async function startS3(bucket = "ferry-staging"): Promise<RunningS3> {
  const S3rver = createRequire(import.meta.url)("s3rver") as S3rverCtor;
  const directory = tmpDir("ferry-s3rver-");
  const server = new S3rver({
    port: 0,
    address: "127.0.0.1",
    directory,
    silent: true,
    configureBuckets: [{ name: bucket }],
    allowMismatchedSignatures: true,
  });
  consistentPuts(server.store);
  const addr = await server.run();
  let stopped = false;
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    bucket,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    directory,
    openUploads() {
      try {
        return readdirSync(join(directory, bucket, "._S3rver_uploads")).sort();
      } catch {
        return [];
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close();
      removeTmpDir(directory);
    },
  };
}
