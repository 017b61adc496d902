import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FsStagingStore } from "../../../shared/staging/fs.ts";
import { S3StagingStore } from "../../../shared/staging/s3.ts";
import {
  getJson,
  MiB,
  partSizeFor,
  putJson,
  StagingError,
  type StagingStore,
} from "../../../shared/staging/types.ts";

const dirs: string[] = [];
const store = () => {
  const dir = mkdtempSync(join(tmpdir(), "ferry-stg-"));
  dirs.push(dir);
  return new FsStagingStore(dir);
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function read(s: StagingStore, key: string, start: number, end?: number) {
  const chunks: Buffer[] = [];
  for await (const c of await s.openRange(key, start, end)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe("filesystem staging", () => {
  it("multipart: parts in any order, re-uploaded parts replace, complete concatenates, ranges read back", async () => {
    const s = store();
    const data = randomBytes(200_000);
    const id = await s.createMultipart("t/x/data/blob");
    const p2 = await s.uploadPart("t/x/data/blob", id, 2, data.subarray(100_000));
    await s.uploadPart("t/x/data/blob", id, 1, randomBytes(100_000));
    const p1 = await s.uploadPart("t/x/data/blob", id, 1, data.subarray(0, 100_000));
    expect(await s.size("t/x/data/blob")).toBeUndefined(); // invisible until completed
    await s.completeMultipart("t/x/data/blob", id, [p2, p1]);
    expect(await s.size("t/x/data/blob")).toBe(200_000);
    expect((await read(s, "t/x/data/blob", 0)).equals(data)).toBe(true);
    expect((await read(s, "t/x/data/blob", 99_990, 100_010)).equals(data.subarray(99_990, 100_010))).toBe(
      true,
    );
    expect(await read(s, "t/x/data/blob", 5, 5)).toHaveLength(0);
    expect(await s.openUploads()).toEqual([]);
  });

  it("refuses a part list whose ETags do not match, and abort removes an upload", async () => {
    const s = store();
    const id = await s.createMultipart("k");
    const p = await s.uploadPart("k", id, 1, Buffer.from("abc"));
    await expect(s.completeMultipart("k", id, [{ ...p, etag: "0".repeat(32) }])).rejects.toThrow(/ETag/);
    await s.abortMultipart("k", id);
    expect(await s.openUploads()).toEqual([]);
    await expect(s.uploadPart("k", id, 2, Buffer.from("x"))).rejects.toThrow(/does not exist/);
  });

  it("small objects, listing, prefix deletes; keys cannot escape the directory", async () => {
    const s = store();
    await putJson(s, "transfers/a/plan.json", { a: 1 });
    await s.putObject("transfers/a/data/x", "1");
    await s.putObject("transfers/a/data/y", "2");
    await s.putObject("transfers/b/data/z", "3");
    expect(await getJson(s, "transfers/a/plan.json")).toEqual({ a: 1 });
    expect(await getJson(s, "transfers/a/missing.json")).toBeUndefined();
    expect(await s.list("transfers/a/")).toEqual([
      "transfers/a/data/x",
      "transfers/a/data/y",
      "transfers/a/plan.json",
    ]);
    expect(await s.deletePrefix("transfers/a/data/")).toBe(2);
    expect(await s.list("transfers/")).toEqual(["transfers/a/plan.json", "transfers/b/data/z"]);
    for (const bad of ["../x", "/etc/passwd", "a/../../b", "a//b", ""])
      await expect(s.putObject(bad, "x")).rejects.toThrow(/invalid staging key/);
  });

  it("part size: ≥ 5 MiB, whole MiB, ≤ 10,000 parts; an override only when it keeps that", () => {
    expect(partSizeFor(1)).toBe(5 * MiB);
    expect(partSizeFor(52_000 * MiB)).toBe(6 * MiB);
    expect(partSizeFor(5 * 1024 * 1024 * MiB) % MiB).toBe(0);
    expect(Math.ceil((5 * 1024 * 1024 * MiB) / partSizeFor(5 * 1024 * 1024 * MiB))).toBeLessThanOrEqual(
      10_000,
    );
    expect(partSizeFor(3 * MiB, 64 * 1024)).toBe(64 * 1024);
    expect(partSizeFor(100_000 * MiB, 64 * 1024)).toBe(10 * MiB);
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
