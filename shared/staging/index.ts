/**
 * shared/staging — one StagingStore interface, two implementations. Import `fs.ts` or `s3.ts` directly
 * where start-up matters (Lambda handlers); this index is for tools that pick by URL.
 */
import { FsStagingStore } from "./fs.ts";
import type { StagingStore } from "./types.ts";

export * from "./fs.ts";
export * from "./types.ts";

/**
 * A store from a location: `s3://bucket` (optionally with an S3-compatible `endpoint`) or a directory.
 * The S3 implementation (and the AWS SDK) is loaded only when asked for.
 */
export async function openStaging(location: string, opts: { endpoint?: string } = {}): Promise<StagingStore> {
  const m = /^s3:\/\/([^/]+)\/?$/.exec(location);
  if (m) {
    const { S3StagingStore } = await import("./s3.ts");
    return new S3StagingStore({ bucket: m[1]!, ...(opts.endpoint ? { endpoint: opts.endpoint } : {}) });
  }
  if (location.startsWith("s3://"))
    throw new TypeError(`staging ${location}: give s3://bucket (no key prefix) or a directory`);
  return new FsStagingStore(location);
}
