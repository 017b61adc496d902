/**
 * The two staging stores with the same cases: the directory store and the S3 store against s3rver
 * (the real @aws-sdk/client-s3). Where s3rver lacks an operation, the case says so and asserts what it
 * does instead. Then the minimum part size, which S3 enforces and s3rver does not: ferry's own check.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FsStagingStore } from "../../../shared/staging/fs.ts";
import { S3StagingStore } from "../../../shared/staging/s3.ts";
import {
  getJson,
  MiB,
  partSizeFor,
  putJson,
  S3_MIN_PART,
  StagingError,
  type StagingStore,
} from "../../../shared/staging/types.ts";
import { type RunningS3, startS3 } from "../../helpers/s3.ts";

const KiB = 1024;
const dirs: string[] = [];
let s3: RunningS3;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await s3?.stop();
});

type Kind = "directory" | "s3rver";

/** A store of `kind`; `minPartBytes` as given, else the store's own default (0 / S3's 5 MiB). */
function open(kind: Kind, opts: { minPartBytes?: number } = {}): StagingStore {
  if (kind === "directory") {
    const dir = mkdtempSync(join(tmpdir(), "ferry-stg-"));
    dirs.push(dir);
    return new FsStagingStore(dir, opts);
  }
  return new S3StagingStore({
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    credentials: s3.credentials,
    ...opts,
  });
}

/** Multipart uploads the backend still holds. */
const openUploads = (kind: Kind, s: StagingStore) =>
  kind === "directory" ? (s as FsStagingStore).openUploads() : Promise.resolve(s3.openUploads());

/** A key of its own per case (the s3rver bucket is shared by the file). */
const unique = (k: string) => `t/${randomBytes(4).toString("hex")}/${k}`;

async function read(s: StagingStore, key: string, start: number, end?: number) {
  const chunks: Buffer[] = [];
  for await (const c of await s.openRange(key, start, end)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe.each(["directory", "s3rver"] as const)("%s staging", (kind) => {
  it("multipart: parts in any order, re-uploaded parts replace, complete concatenates, ranges read back", async () => {
    // 100 KB parts: below S3's minimum, so the minimum is lowered explicitly (s3rver has none)
    const s = open(kind, { minPartBytes: 0 });
    const key = unique("data/blob");
    const data = randomBytes(200_000);
    const id = await s.createMultipart(key);
    const p2 = await s.uploadPart(key, id, 2, data.subarray(100_000));
    await s.uploadPart(key, id, 1, randomBytes(100_000));
    const p1 = await s.uploadPart(key, id, 1, data.subarray(0, 100_000));
    expect([p1.size, p2.size]).toEqual([100_000, 100_000]);
    expect(await s.size(key)).toBeUndefined(); // invisible until completed
    await s.completeMultipart(key, id, [p2, p1]);
    expect(await s.size(key)).toBe(200_000);
    expect((await read(s, key, 0)).equals(data)).toBe(true);
    expect((await read(s, key, 99_990, 100_010)).equals(data.subarray(99_990, 100_010))).toBe(true);
    expect(await read(s, key, 5, 5)).toHaveLength(0);
    expect(await openUploads(kind, s)).not.toContain(id);
  });

  it.skipIf(kind === "s3rver")(
    "refuses a part list whose ETags do not match (s3rver: skipped, it does not compare ETags at completion)",
    async () => {
      const s = open(kind);
      const id = await s.createMultipart("k");
      const p = await s.uploadPart("k", id, 1, Buffer.from("abc"));
      await expect(s.completeMultipart("k", id, [{ ...p, etag: "0".repeat(32) }])).rejects.toThrow(/ETag/);
    },
  );

  it("abort never throws; the directory store removes the upload, s3rver keeps it (no AbortMultipartUpload)", async () => {
    const s = open(kind);
    const key = unique("aborted");
    const id = await s.createMultipart(key);
    await s.uploadPart(key, id, 1, Buffer.from("abc"));
    expect(await openUploads(kind, s)).toContain(id);
    await s.abortMultipart(key, id); // best effort: resolves even where the backend refuses
    if (kind === "directory") {
      expect(await openUploads(kind, s)).not.toContain(id);
      await expect(s.uploadPart(key, id, 2, Buffer.from("x"))).rejects.toThrow(/does not exist/);
    } else {
      // s3rver answers MethodNotAllowed to AbortMultipartUpload; on AWS the staging bucket's
      // AbortIncompleteMultipartUpload lifecycle rule purges what an abort leaves.
      expect(await openUploads(kind, s)).toContain(id);
    }
    expect(await s.size(key)).toBeUndefined();
  });

  it("small objects, listing, prefix deletes; keys cannot escape the store", async () => {
    const s = open(kind);
    const t = unique("");
    await putJson(s, `${t}a/plan.json`, { a: 1 });
    await s.putObject(`${t}a/data/x`, "1");
    await s.putObject(`${t}a/data/y`, "2");
    await s.putObject(`${t}b/data/z`, "3");
    expect(await getJson(s, `${t}a/plan.json`)).toEqual({ a: 1 });
    expect(await getJson(s, `${t}a/missing.json`)).toBeUndefined();
    expect(await s.list(`${t}a/`)).toEqual([`${t}a/data/x`, `${t}a/data/y`, `${t}a/plan.json`]);
    expect(await s.deletePrefix(`${t}a/data/`)).toBe(2);
    expect(await s.list(t)).toEqual([`${t}a/plan.json`, `${t}b/data/z`]);
    for (const bad of ["../x", "/etc/passwd", "a/../../b", "a//b", ""])
      await expect(s.putObject(bad, "x")).rejects.toThrow(/invalid staging key/);
  });

  it("a store given a minimum part size refuses a shorter non-final part at completion; a short last part is fine", async () => {
    const s = open(kind, { minPartBytes: 64 * KiB });
    const key = unique("min");
    const id = await s.createMultipart(key);
    const p1 = await s.uploadPart(key, id, 1, randomBytes(64 * KiB - 1));
    const p2 = await s.uploadPart(key, id, 2, randomBytes(10));
    const err = await s.completeMultipart(key, id, [p1, p2]).catch((e: Error) => e);
    expect(err).toBeInstanceOf(StagingError);
    expect((err as Error).message).toMatch(
      /part 1 is 65535 bytes, and every part but the last must be at least 64 KiB/,
    );
    expect(await s.size(key)).toBeUndefined();
    // the same upload with a first part of exactly the minimum
    const q1 = await s.uploadPart(key, id, 1, randomBytes(64 * KiB));
    await s.completeMultipart(key, id, [q1, p2]);
    expect(await s.size(key)).toBe(64 * KiB + 10);
  });
});

describe("minimum part size", () => {
  it("the S3 store with default options refuses a 64 KiB non-final part and accepts a 64 KiB final part", async () => {
    const s = new S3StagingStore({ bucket: s3.bucket, endpoint: s3.endpoint, credentials: s3.credentials });
    expect(s.minPartBytes).toBe(5 * MiB);
    const small = randomBytes(64 * KiB);

    // two 64 KiB parts: s3rver would assemble them; ferry's check refuses before asking it
    const bad = unique("two-small");
    const id = await s.createMultipart(bad);
    const parts = [await s.uploadPart(bad, id, 1, small), await s.uploadPart(bad, id, 2, small)];
    const err = await s.completeMultipart(bad, id, parts).catch((e: Error) => e);
    expect(err).toBeInstanceOf(StagingError);
    expect((err as Error).message).toBe(
      `completing ${bad} in s3://${s3.bucket}: part 1 is 64 KiB, and every part but the last must be at ` +
        "least 5 MiB (the store's minimum part size)",
    );
    expect(await s.size(bad)).toBeUndefined();

    // 5 MiB, then a 64 KiB last part
    const good = unique("big-then-small");
    const big = randomBytes(5 * MiB);
    const id2 = await s.createMultipart(good);
    const ok = [await s.uploadPart(good, id2, 1, big), await s.uploadPart(good, id2, 2, small)];
    await s.completeMultipart(good, id2, ok);
    expect((await read(s, good, 0)).equals(Buffer.concat([big, small]))).toBe(true);

    // a single 64 KiB part is the last one
    const one = unique("one-small");
    const id3 = await s.createMultipart(one);
    await s.completeMultipart(one, id3, [await s.uploadPart(one, id3, 1, small)]);
    expect(await s.size(one)).toBe(64 * KiB);
  });

  it("the directory store has no minimum unless given one (local runs and tests stage in small parts)", async () => {
    const s = open("directory");
    expect(s.minPartBytes).toBe(0);
    const id = await s.createMultipart("k");
    const parts = [
      await s.uploadPart("k", id, 1, Buffer.from("ab")),
      await s.uploadPart("k", id, 2, Buffer.from("c")),
    ];
    await s.completeMultipart("k", id, parts);
    expect((await read(s, "k", 0)).toString()).toBe("abc");
  });

  it("part size: ≥ 5 MiB, whole MiB, ≤ 10,000 parts; an override only when it keeps that and the store's minimum", () => {
    expect(partSizeFor(1)).toBe(5 * MiB);
    expect(partSizeFor(52_000 * MiB)).toBe(6 * MiB);
    expect(partSizeFor(5 * 1024 * 1024 * MiB) % MiB).toBe(0);
    expect(Math.ceil((5 * 1024 * 1024 * MiB) / partSizeFor(5 * 1024 * 1024 * MiB))).toBeLessThanOrEqual(
      10_000,
    );
    // a store that accepts small parts (the directory store, s3rver lowered explicitly)
    expect(partSizeFor(3 * MiB, 64 * KiB, 0)).toBe(64 * KiB);
    expect(partSizeFor(100_000 * MiB, 64 * KiB, 0)).toBe(10 * MiB);
    // S3's minimum (the default): never a smaller non-final part
    expect(() => partSizeFor(3 * MiB, 64 * KiB)).toThrow(StagingError);
    expect(() => partSizeFor(3 * MiB, 64 * KiB, S3_MIN_PART)).toThrow(
      /part size 64 KiB \(options.partBytes, --part-size\) is under the staging store's minimum part size of 5 MiB/,
    );
    expect(partSizeFor(3 * MiB, 8 * MiB)).toBe(8 * MiB);
    // a part that holds the whole blob is its last: any size will do
    expect(partSizeFor(60 * KiB, 64 * KiB)).toBe(64 * KiB);
    // a higher minimum raises the default too
    expect(partSizeFor(1, undefined, 8 * MiB)).toBe(8 * MiB);
    // over every blob size up to S3's 5 TiB object limit, the default is never under the minimum
    for (let size = 1; size <= 5 * 1024 * 1024 * MiB; size *= 7)
      expect(partSizeFor(size)).toBeGreaterThanOrEqual(S3_MIN_PART);
  });
});

describe("S3 staging when the role may list only its own prefix", () => {
  /**
   * An S3 stand-in that answers every object read with 403 AccessDenied (what S3 answers for a missing
   * key when its implicit list check fails) and lists `transfers/t/denied.json` only.
   */
  async function deniedS3() {
    const lists: string[] = [];
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      req.resume();
      if (req.method === "GET" && url.searchParams.get("list-type") === "2") {
        const prefix = url.searchParams.get("prefix") ?? "";
        lists.push(prefix);
        const keys = ["transfers/t/denied.json", "transfers/t/denied.json.bak"].filter((k) =>
          k.startsWith(prefix),
        );
        res.writeHead(200, { "content-type": "application/xml" });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>${prefix}</Prefix><KeyCount>${Math.min(1, keys.length)}</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated>${keys
            .slice(0, 1)
            .map((k) => `<Contents><Key>${k}</Key><Size>3</Size></Contents>`)
            .join("")}</ListBucketResult>`,
        );
        return;
      }
      res.writeHead(403, { "content-type": "application/xml" });
      res.end(
        req.method === "HEAD"
          ? undefined
          : '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>',
      );
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const store = new S3StagingStore({
      bucket: "b",
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
    return { store, lists, close: () => new Promise<void>((r) => server.close(() => r())) };
  }

  it("a 403 on a missing record is confirmed by listing exactly that key: missing, not an error", async () => {
    const s3 = await deniedS3();
    try {
      expect(await s3.store.getObject("transfers/t/missing.json")).toBeUndefined();
      expect(await s3.store.size("transfers/t/missing.json")).toBeUndefined();
      expect(await getJson(s3.store, "transfers/t/missing.json")).toBeUndefined();
      expect(s3.lists).toEqual([
        "transfers/t/missing.json",
        "transfers/t/missing.json",
        "transfers/t/missing.json",
      ]);
      // A key that is there but refused stays refused.
      const err = await s3.store.getObject("transfers/t/denied.json").catch((e: Error) => e);
      expect(err).toBeInstanceOf(StagingError);
      expect((err as Error).message).toMatch(/AccessDenied/);
      await expect(s3.store.size("transfers/t/denied.json")).rejects.toThrow(/403/);
    } finally {
      await s3.close();
    }
  });
});

describe("the test S3 (s3rver, test/helpers/s3.ts)", () => {
  it("is consistent after a write, as S3 is: during a PUT the old object reads whole, after it the new one", async () => {
    // s3rver itself truncates the object's file when a PUT starts and answers before the file is
    // written; the helper writes beside it and replaces it once whole (consistentPuts).
    const { PutObjectCommand } = await import("@aws-sdk/client-s3");
    const store = open("s3rver") as S3StagingStore; // its client: no checksums, which s3rver cannot read
    const key = unique("record.json");
    const size = 1 * MiB;
    await store.putObject(key, Buffer.alloc(size, "a"));
    let halfway!: () => void;
    const reachedHalfway = new Promise<void>((r) => {
      halfway = r;
    });
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    let reads = 0;
    const body = new Readable({
      read() {
        reads++;
        if (reads === 1) this.push(Buffer.alloc(size / 2, "b"));
        else if (reads === 2) {
          halfway(); // the first half is on its way to the server, and the body is asked for more
          void released.then(() => {
            this.push(Buffer.alloc(size / 2, "b"));
            this.push(null);
          });
        }
      },
    });
    const put = store.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body, ContentLength: size }),
    );
    try {
      await reachedHalfway;
      const during = await store.getObject(key);
      expect(during?.length).toBe(size);
      expect(during?.every((b) => b === "a".charCodeAt(0))).toBe(true);
    } finally {
      release();
      await put;
    }
    const after = await store.getObject(key);
    expect(after?.length).toBe(size);
    expect(after?.every((b) => b === "b".charCodeAt(0))).toBe(true);
    expect(
      readdirSync(join(s3.directory, s3.bucket, dirname(key))).filter((f) => f.includes(".ferry-")),
    ).toEqual([]);
  });
});
