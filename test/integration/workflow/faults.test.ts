/**
 * Faults mid-stage and mid-upload (a proxy between ferry and the registry; a staging store that fails
 * once): the retried step resumes from the offset the previous step recorded, never from zero, and the
 * result is exact. Permanent failures and corrupted bytes: cleanup, a clear cause, no manifest. The
 * staging faults run on both stores (directory, and S3 through s3rver).
 */
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RegistryClient } from "../../../shared/registry/client.ts";
import { formatReference, parseReference } from "../../../shared/registry/reference.ts";
import { StagingError, type StagingStore } from "../../../shared/staging/types.ts";
import { openKey } from "../../../shared/workflow/keys.ts";
import { runCopyWorkflow } from "../../../shared/workflow/local-runner.ts";
import { startFaultProxy } from "../../helpers/fault-proxy.ts";
import { expectNothingAt, expectSameImage } from "../../helpers/image-check.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { type RunningS3, startS3 } from "../../helpers/s3.ts";
import {
  expectNoOpenUploads,
  fsDeps,
  MiB,
  pushSampleImage,
  recorder,
  removeTempDirs,
  STAGING_KINDS,
  skopeoDigest,
  stagingDeps,
  trackUploads,
} from "./helpers.ts";

const regs = registries();
const anon = clientFor(regs.anon);
// No transport-level retries: every injected fault reaches the workflow's own Retry.
const strict = clientFor(regs.token, { retries: 0 });
let s3: RunningS3;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  removeTempDirs();
  await Promise.all([anon.close(), strict.close(), s3?.stop()]);
});

async function sample(prefix: string, bigSize = 2 * MiB) {
  const src = { registry: regs.anon.host, repository: uniqueRepo(prefix), tag: "v1" };
  const { index, images } = await pushSampleImage(anon, src, { bigSize, platforms: 1 });
  const big = images[0]!.layers[0]!.desc;
  return { src, index, big };
}

/**
 * The copy at `dst` (on the token registry) is the source image: the tag, the manifest by digest and every
 * blob read back from the registry and compared with the source, and skopeo (an independent client)
 * reads the same digest.
 */
async function expectCopied(src: { registry: string; repository: string }, dst: string, digest: string) {
  const ref = parseReference(dst);
  const checked = await expectSameImage(
    { client: anon, ref: { ...src, tag: "v1" } },
    { client: strict, ref: { ...ref, registry: regs.token.host } },
  );
  expect(checked).toEqual({ manifests: 1, blobs: 3 }); // config, big layer, small layer
  expect(await skopeoDigest(regs.token, `${regs.token.host}/${ref.repository}:${ref.tag}`)).toBe(digest);
}

/** A failed copy left nothing at `dst` (on the token registry): no tag, no manifest, not the big blob. */
async function expectNothingCopied(dst: string, manifest: string, blob: string) {
  const ref = parseReference(dst);
  await expectNothingAt(
    { client: strict, ref: { ...ref, registry: regs.token.host } },
    { manifests: [manifest], blobs: [blob] },
  );
}

const rangeStart = (h: unknown) => Number(/bytes=(\d+)-/.exec(String(h ?? ""))?.[1] ?? 0);
const contentRangeStart = (h: unknown) => Number(/^(\d+)-/.exec(String(h ?? ""))?.[1] ?? -1);

type Method = (...args: never[]) => Promise<unknown>;

/** `target` with its method `name` replaced by `replace(original)`; its other methods stay bound to it. */
function withMethod<T extends object, K extends keyof T & string>(
  target: T,
  name: K,
  replace: (original: T[K] & Method) => T[K],
): T {
  const replacement = replace((target[name] as T[K] & Method).bind(target) as T[K] & Method);
  return new Proxy(target, {
    get(t, prop, receiver) {
      if (prop === name) return replacement;
      const v = Reflect.get(t, prop, receiver);
      return typeof v === "function" ? v.bind(t) : v;
    },
  });
}

/** A staging store whose method `name` fails (retryably) on its `nth` call, once. */
function failOnce(store: StagingStore, name: "uploadPart" | "openRange", nth: number): StagingStore {
  let calls = 0;
  return withMethod(
    store,
    name,
    (original) =>
      (async (...args: never[]) => {
        calls++;
        if (calls === nth) throw new StagingError(`injected ${name} failure`, { retryable: true });
        return original(...args);
      }) as StagingStore[typeof name],
  );
}

/** A staging store that flips the byte at `offset` of the staged object when it is read back. */
function corruptReads(store: StagingStore, offset: number): StagingStore {
  return withMethod(store, "openRange", (openRange) => async (key, start, end) => {
    const s = await openRange(key, start, end);
    let pos = start;
    return Readable.from(
      (async function* () {
        for await (const c of s) {
          const b = Buffer.from(c as Buffer);
          if (offset >= pos && offset < pos + b.length) b[offset - pos] = b[offset - pos]! ^ 0x01;
          pos += b.length;
          yield b;
        }
      })(),
    );
  });
}

describe("copy workflow under faults", () => {
  it("resumes the stage loop from the recorded offset after a source GET fails mid-blob", async () => {
    const { src, index, big } = await sample("wf-fault-src");
    let gets = 0;
    const proxy = await startFaultProxy(regs.anon.url, (r) => {
      if (r.method === "GET" && r.url.includes(`/blobs/${big.digest}`) && ++gets === 3)
        return { kind: "status", status: 503, body: '{"errors":[{"code":"UNAVAILABLE"}]}' };
      return undefined;
    });
    try {
      const srcRef = `${proxy.host}/${src.repository}:v1`;
      const dst = `${regs.token.host}/${uniqueRepo("wf-fault-dst")}:v1`;
      const rec = recorder();
      const r = await runCopyWorkflow(
        { source: srcRef, destination: dst },
        { deps: fsDeps(strict), retryIntervalMs: 1, ...rec.hooks },
      );
      expect(r.cause).toBeUndefined();
      expect(r.status).toBe("SUCCEEDED");
      expect(rec.retried).toContain("StageBlob");
      const blobGets = proxy.requests.filter(
        (q) => q.method === "GET" && q.url.includes(`/blobs/${big.digest}`),
      );
      // the 3rd GET failed; the retry (4th) asked for the same range, not for byte 0
      const failedAt = rangeStart(blobGets[2]!.headers.range);
      expect(failedAt).toBeGreaterThan(0);
      expect(rangeStart(blobGets[3]!.headers.range)).toBe(failedAt);
      const stageOffsets = rec.inputs("StageBlob").map((i) => (i.stage as { offset: number }).offset);
      expect(stageOffsets.filter((o) => o === failedAt)).toHaveLength(2);
      await expectCopied(src, dst, index.digest);
    } finally {
      await proxy.close();
    }
  });

  it("resumes the upload loop from the recorded offset and session after a PATCH fails mid-blob", async () => {
    const { src, index } = await sample("wf-fault-up");
    let patches = 0;
    const proxy = await startFaultProxy(regs.token.url, (r) => {
      if (r.method === "PATCH" && ++patches === 5)
        return { kind: "status", status: 503, body: '{"errors":[{"code":"UNAVAILABLE"}]}' };
      return undefined;
    });
    try {
      const repo = uniqueRepo("wf-fault-updst");
      const dst = `${proxy.host}/${repo}:v1`;
      const rec = recorder();
      const client = clientFor({ ...regs.token, host: proxy.host, url: proxy.url }, { retries: 0 });
      try {
        const r = await runCopyWorkflow(
          { source: formatReference(src), destination: dst },
          { deps: fsDeps(client), retryIntervalMs: 1, ...rec.hooks },
        );
        expect(r.cause).toBeUndefined();
        expect(r.status).toBe("SUCCEEDED");
      } finally {
        await client.close();
      }
      expect(rec.retried).toContain("UploadBlob");
      const patchReqs = proxy.requests.filter((q) => q.method === "PATCH");
      const failedAt = contentRangeStart(patchReqs[4]!.headers["content-range"]);
      expect(failedAt).toBeGreaterThan(0);
      expect(contentRangeStart(patchReqs[5]!.headers["content-range"])).toBe(failedAt);
      // the retried step was given the same recorded offset and session as the failed one
      const ups = rec.inputs("UploadBlob").map((i) => i.upload as { offset: number; session?: string });
      const twice = ups.filter((u) => u.offset === failedAt);
      expect(twice).toHaveLength(2);
      expect(twice[0]!.session).toMatch(/^[0-9a-f]{16}$/);
      expect(twice[1]!.session).toBe(twice[0]!.session);
      await expectCopied(src, dst, index.digest);
    } finally {
      await proxy.close();
    }
  });

  it("after a PATCH whose answer was lost, reconciles with the registry's offset and finishes exactly", async () => {
    const { src, index } = await sample("wf-lost");
    let patches = 0;
    const proxy = await startFaultProxy(regs.token.url, (r) =>
      r.method === "PATCH" && ++patches === 6 ? { kind: "drop-response" } : undefined,
    );
    const repo = uniqueRepo("wf-lost-dst");
    const client = clientFor({ ...regs.token, host: proxy.host, url: proxy.url }, { retries: 0 });
    try {
      const rec = recorder();
      const r = await runCopyWorkflow(
        { source: formatReference(src), destination: `${proxy.host}/${repo}:v1` },
        { deps: fsDeps(client), retryIntervalMs: 1, ...rec.hooks },
      );
      expect(r.cause).toBeUndefined();
      expect(r.status).toBe("SUCCEEDED");
      expect(rec.retried).toContain("UploadBlob");
      // the retried step found the registry elsewhere than its recorded offset and asked where it stood
      // (distribution cancels a session addressed with a stale `_state`: the blob then restarts once)
      expect(proxy.requests.some((q) => q.method === "GET" && q.url.includes("/blobs/uploads/"))).toBe(true);
      await expectCopied(src, `${regs.token.host}/${repo}:v1`, index.digest);
    } finally {
      await client.close();
      await proxy.close();
    }
  });

  it("an upload step whose answer is lost: the retry asks where the session stands and goes on, bytes sent once", async () => {
    const { src, index } = await sample("wf-lost-step");
    const repo = uniqueRepo("wf-lost-step-dst");
    const statuses: number[] = [];
    let patches = 0;
    const client = clientFor(regs.token, {
      retries: 0,
      observer: (e) => {
        if (e.op === "upload.status") statuses.push(e.status);
        if (e.method === "PATCH") patches++;
      },
    });
    const uploads: { input: { upload: { offset: number; session?: string } }; result?: unknown }[] = [];
    let n = 0;
    try {
      const r = await runCopyWorkflow(
        { source: formatReference(src), destination: `${regs.token.host}/${repo}:v1` },
        {
          deps: fsDeps(client),
          retryIntervalMs: 1,
          wrapStep: (state, step) => async (input) => {
            if (state !== "UploadBlob") return step(input);
            const call: (typeof uploads)[number] = { input: structuredClone(input) as never };
            uploads.push(call);
            const result = await step(input);
            call.result = result;
            // The third step did its work (bytes sent, newer Location recorded); its answer never arrived.
            if (++n === 3) throw Object.assign(new Error("answer lost"), { name: "RetryableTransferError" });
            return result;
          },
        },
      );
      expect(r.cause).toBeUndefined();
      expect(r.status).toBe("SUCCEEDED");
    } finally {
      await client.close();
    }
    const [lost, retried] = [uploads[2]!, uploads[3]!];
    expect(retried.input.upload).toEqual(lost.input.upload); // the same state again
    const after = retried.result as { offset: number; session?: string; restarts?: number; hash?: string };
    // Every step that continues a session asks the registry first (never PATCHing from an offset that may
    // be stale: a step's answer can be lost, or a step can die after some chunks): once per resumed step.
    // Here the registry already had the lost step's bytes, so the retry sent nothing and answered what the
    // lost step had — same session, same offset, same running hash (the bytes in between hashed from
    // staging).
    expect(uploads.length).toBeGreaterThan(3);
    expect(statuses).toEqual(uploads.slice(1).map(() => 204));
    expect(after).toEqual(lost.result);
    expect(after.session).toBe(lost.input.upload.session);
    expect(after.restarts).toBeUndefined();
    // Every byte of the 2 MiB layer went once, in 64 KiB chunks.
    expect(patches).toBe((2 * MiB) / (64 * 1024));
    expect(await skopeoDigest(regs.token, `${regs.token.host}/${repo}:v1`)).toBe(index.digest);
  });

  it("a state whose session is not the recorded one: the recorded session is cancelled, the blob restarts", async () => {
    const { src, index } = await sample("wf-moved-on");
    const repo = uniqueRepo("wf-moved-on-dst");
    const deletes: string[] = [];
    const client = clientFor(regs.token, {
      retries: 0,
      observer: (e) => {
        if (e.method === "DELETE" && e.url.includes("/blobs/uploads/") && e.status < 400) deletes.push(e.url);
      },
    });
    const deps = fsDeps(client);
    const seen: { input: { upload: { offset: number; session?: string } }; result: unknown }[] = [];
    let n = 0;
    try {
      const r = await runCopyWorkflow(
        { source: formatReference(src), destination: `${regs.token.host}/${repo}:v1` },
        {
          deps,
          retryIntervalMs: 1,
          wrapStep: (state, step) => async (input) => {
            if (state !== "UploadBlob") return step(input);
            const i = input as { job: { prefix: string }; blob: { digest: string } };
            if (++n === 3) {
              // As if an attempt that failed before answering had opened another session and recorded it.
              const key = openKey(i.job.prefix, i.blob.digest);
              const rec = JSON.parse((await deps.staging.getObject(key))!.toString());
              rec.upload.session = "feedfacefeedface";
              await deps.staging.putObject(key, JSON.stringify(rec));
            }
            const result = await step(input);
            seen.push({ input: structuredClone(input) as never, result });
            return result;
          },
        },
      );
      expect(r.cause).toBeUndefined();
      expect(r.status).toBe("SUCCEEDED");
    } finally {
      await client.close();
    }
    const third = seen[2]!;
    expect(third.input.upload.offset).toBeGreaterThan(0);
    const restarted = third.result as { offset: number; session?: string };
    expect(restarted.session).toMatch(/^[0-9a-f]{16}$/);
    expect(restarted.session).not.toBe(third.input.upload.session);
    expect(restarted.offset).toBeLessThanOrEqual(256 * 1024); // one step's worth, from zero
    expect(deletes).toHaveLength(1); // the recorded session, cancelled
    expect(await skopeoDigest(regs.token, `${regs.token.host}/${repo}:v1`)).toBe(index.digest);
  });
});

/**
 * The faults that involve staging, on both stores: the directory store and the S3 store against s3rver
 * (the real S3 client). s3rver has no AbortMultipartUpload: where a test checks that no upload is left
 * open, it checks what ferry asked (every upload completed or aborted) and, on s3rver, that exactly the
 * aborted uploads remain (expectNoOpenUploads).
 */
describe.each(STAGING_KINDS)("staging faults, corruption and cleanup (%s staging)", (kind) => {
  const deps = (client: RegistryClient) => {
    const base = stagingDeps(kind, s3, client);
    const uploads = trackUploads(base.staging);
    return { base: { ...base, staging: uploads.store }, uploads };
  };

  it("retries a staging failure (a part upload, a ranged read) from the recorded offset", async () => {
    const { src, index } = await sample(`wf-fault-stg-${kind}`);
    const dst = `${regs.token.host}/${uniqueRepo("wf-fault-stgdst")}:v1`;
    const { base, uploads } = deps(strict);
    const staging = failOnce(failOnce(base.staging, "uploadPart", 7), "openRange", 3);
    const rec = recorder();
    const r = await runCopyWorkflow(
      { source: formatReference(src), destination: dst },
      { deps: { ...base, staging }, retryIntervalMs: 1, ...rec.hooks },
    );
    expect(r.cause).toBeUndefined();
    expect(r.status).toBe("SUCCEEDED");
    expect(rec.retried).toEqual(expect.arrayContaining(["StageBlob", "UploadBlob"]));
    // no loop ever went back to zero once it had moved
    for (const state of ["StageBlob", "UploadBlob"] as const) {
      const offsets = rec
        .inputs(state)
        .map((i) => (i[state === "StageBlob" ? "stage" : "upload"] as { offset: number }).offset);
      expect(offsets.length).toBeGreaterThan(1);
      for (let i = 1; i < offsets.length; i++) expect(offsets[i]!).toBeGreaterThanOrEqual(offsets[i - 1]!);
    }
    await expectCopied(src, dst, index.digest);
    await expectNoOpenUploads(kind, base.staging, s3, uploads);
    expect(uploads.aborted).toEqual([]);
  });

  it("a first stage step whose answer is lost: its retry abandons the multipart upload it had opened", async () => {
    const { src, index } = await sample(`wf-lost-stage-${kind}`);
    const dst = `${regs.token.host}/${uniqueRepo("wf-lost-stagedst")}:v1`;
    const { base, uploads } = deps(strict);
    let lost = false;
    const r = await runCopyWorkflow(
      { source: formatReference(src), destination: dst },
      {
        deps: base,
        retryIntervalMs: 1,
        wrapStep: (state, step) => async (input) => {
          const result = await step(input);
          // the first StageBlob did its work (a multipart upload opened and recorded); its answer is lost
          if (state === "StageBlob" && !lost) {
            lost = true;
            throw Object.assign(new Error("answer lost"), { name: "RetryableTransferError" });
          }
          return result;
        },
      },
    );
    expect(r.cause).toBeUndefined();
    expect(r.status).toBe("SUCCEEDED");
    expect(lost).toBe(true);
    // the retry started from the same state (no upload id): it aborted the recorded upload, opened another
    expect(uploads.created).toHaveLength(2);
    expect(uploads.aborted).toEqual([uploads.created[0]]);
    expect(uploads.completed).toEqual([uploads.created[1]]);
    await expectCopied(src, dst, index.digest);
    await expectNoOpenUploads(kind, base.staging, s3, uploads);
  });

  it("a part upload that fails while the next part is still being read: the step fails with it, no unhandled rejection", async () => {
    // The stage loop reads part n+1 from the source while part n uploads. A part upload that fails
    // during that read (in CI: a sibling's cleanup aborted the multipart upload) must be handled by
    // the step, not surface as an unhandled rejection of the process.
    const src = { registry: regs.anon.host, repository: uniqueRepo(`wf-fault-race-${kind}`), tag: "v1" };
    await pushSampleImage(anon, src, { bigSize: 2 * MiB, platforms: 2 });
    const { base } = deps(strict);
    // Ordered by events, not by time: a part upload fails only once a source read is waiting, and that
    // read is held until the failure has settled (then it goes on, or is abandoned with the step).
    let readWaiting: () => void = () => {};
    const aRead = new Promise<void>((r) => {
      readWaiting = r;
    });
    let uploadFailed: () => void = () => {};
    const failed = new Promise<void>((r) => {
      uploadFailed = r;
    });
    const staging = withMethod(base.staging, "uploadPart", () => async () => {
      await aRead;
      // reject on a later turn, while the read below is still pending
      setImmediate(uploadFailed);
      throw new StagingError("injected: multipart upload aborted underneath");
    });
    let heldReads = 0;
    const client = withMethod(strict, "openBlob", (openBlob) => async (...args) => {
      const body = await openBlob(...args);
      return Readable.from(
        (async function* () {
          // the first part goes through; a read past it waits for the failed upload of that part
          let given = 0;
          for await (const c of body) {
            if (given >= base.defaults!.partBytes!) {
              heldReads++;
              readWaiting();
              await failed;
            }
            given += (c as Buffer).length;
            yield c as Buffer;
          }
        })(),
      );
    });
    let running = 0;
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const r = await runCopyWorkflow(
        {
          source: formatReference(src),
          destination: `${regs.token.host}/${uniqueRepo("wf-fault-racedst")}:v1`,
        },
        {
          deps: { ...base, client, staging },
          retryIntervalMs: 1,
          // count the steps still running
          wrapStep: (_state, step) => async (input) => {
            running++;
            try {
              return await step(input);
            } finally {
              running--;
            }
          },
        },
      );
      // the run returns only once the other blob's stage step, already running, has settled too
      expect(running).toBe(0);
      expect(heldReads).toBeGreaterThan(0); // the failure did settle during a read
      // a rejection nobody handled is reported after the turn it happened in: let one turn pass
      await new Promise((res) => setImmediate(res));
      expect(r.status).toBe("FAILED");
      expect(r.cause).toContain("injected: multipart upload aborted underneath");
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("a permanent destination failure cleans up and fails with a cause naming image, blob and registry; no manifest", async () => {
    const { src, big, index } = await sample(`wf-perm-${kind}`);
    let patches = 0;
    const proxy = await startFaultProxy(regs.token.url, (r) => {
      if (r.method === "PATCH" && ++patches > 2)
        return {
          kind: "status",
          status: 500,
          body: '{"errors":[{"code":"UNKNOWN","message":"disk on fire"}]}',
        };
      return undefined;
    });
    const repo = uniqueRepo("wf-perm-dst");
    const client = clientFor({ ...regs.token, host: proxy.host, url: proxy.url }, { retries: 0 });
    try {
      const { base, uploads } = deps(client);
      const rec = recorder();
      const r = await runCopyWorkflow(
        { source: formatReference(src), destination: `${proxy.host}/${repo}:v1` },
        { deps: base, retryIntervalMs: 1, ...rec.hooks },
      );
      expect(r.status).toBe("FAILED");
      expect(r.error).toBe("RetryableTransferError");
      expect(r.cause).toContain(big.digest);
      expect(r.cause).toContain(`${proxy.host}/${repo}`);
      expect(r.cause).toContain(formatReference(src));
      expect(r.cause).toMatch(/500/);
      expect(rec.entered.some((e) => e.state === "AbortBlob")).toBe(true);
      expect(rec.entered.some((e) => e.state === "PutManifests")).toBe(false);
      // the open session was cancelled, nothing staged is left, no manifest, no blob
      expect(proxy.requests.some((q) => q.method === "DELETE" && q.url.includes("/blobs/uploads/"))).toBe(
        true,
      );
      const prefix = `transfers/${r.executionName}/`;
      const left = await base.staging.list(prefix);
      expect(left.filter((k) => /\/(data|parts|open)\//.test(k))).toEqual([]);
      expect(left).toContain(`${prefix}report.json`);
      await expectNoOpenUploads(kind, base.staging, s3, uploads);
      await expectNothingCopied(`${regs.token.host}/${repo}:v1`, index.digest, big.digest);
      const report = JSON.parse((await base.staging.getObject(`${prefix}report.json`))!.toString()) as {
        status: string;
        error: { Cause: string };
      };
      expect(report.status).toBe("FAILED");
    } finally {
      await client.close();
      await proxy.close();
    }
  });

  it("a corrupted source byte is caught by the stage loop: nothing staged, nothing committed", async () => {
    const { src, big, index } = await sample(`wf-corrupt-src-${kind}`);
    // every read of the big blob (each stage step asks for a Range) flips byte 1,500,000 of it
    const proxy = await startFaultProxy(regs.anon.url, (r) =>
      r.method === "GET" && r.url.includes(`/blobs/${big.digest}`)
        ? { kind: "corrupt", at: 1_500_000 }
        : undefined,
    );
    try {
      const repo = uniqueRepo("wf-corrupt-dst");
      const { base, uploads } = deps(strict);
      const r = await runCopyWorkflow(
        { source: `${proxy.host}/${src.repository}:v1`, destination: `${regs.token.host}/${repo}:v1` },
        { deps: base, retryIntervalMs: 1 },
      );
      expect(r.status).toBe("FAILED");
      expect(r.error).toBe("DigestMismatchError");
      expect(r.cause).toContain(big.digest);
      expect(r.cause).toContain(proxy.host);
      // staged twice (the second time from the start) — more often if a step failed on a loaded machine
      // before returning its state — every upload abandoned (the last once more by AbortBlob, from the
      // state's last upload id: aborting is idempotent), never completed
      expect(uploads.created.length).toBeGreaterThanOrEqual(2);
      expect([...new Set(uploads.aborted)].sort()).toEqual([...uploads.created].sort());
      expect(uploads.completed).toEqual([]);
      await expectNoOpenUploads(kind, base.staging, s3, uploads);
      expect(
        (await base.staging.list(`transfers/${r.executionName}/`)).filter((k) => k.includes("/data/")),
      ).toEqual([]);
      await expectNothingCopied(`${regs.token.host}/${repo}:v1`, index.digest, big.digest);
    } finally {
      await proxy.close();
    }
  });

  it("a corrupted staged byte is caught by the upload loop before PUT ?digest=: nothing committed", async () => {
    const { src, big, index } = await sample(`wf-corrupt-stg-${kind}`);
    const repo = uniqueRepo("wf-corrupt-stgdst");
    const { base, uploads } = deps(strict);
    const r = await runCopyWorkflow(
      { source: formatReference(src), destination: `${regs.token.host}/${repo}:v1` },
      { deps: { ...base, staging: corruptReads(base.staging, 1_234_567) }, retryIntervalMs: 1 },
    );
    expect(r.status).toBe("FAILED");
    expect(r.error).toBe("DigestMismatchError");
    expect(r.cause).toContain(big.digest);
    expect(r.cause).toContain(`${regs.token.host}/${repo}`);
    await expectNothingCopied(`${regs.token.host}/${repo}:v1`, index.digest, big.digest);
    expect(
      (await base.staging.list(`transfers/${r.executionName}/`)).filter((k) =>
        /\/(data|parts|open)\//.test(k),
      ),
    ).toEqual([]);
    await expectNoOpenUploads(kind, base.staging, s3, uploads);
  });
});
