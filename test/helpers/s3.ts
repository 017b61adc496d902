/**
 * A real S3-compatible server for tests: s3rver (npm, 3.7.1) on a free loopback port with a temp
 * directory, and a bucket. Limits worth knowing: no AbortMultipartUpload, no ListParts, no lifecycle,
 * no checksums (the S3 staging store is configured not to send them).
 */
import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { removeTmpDir, tmpDir } from "./tmp.ts";

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
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
