import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatReference, parseReference } from "../../../shared/registry/reference.ts";
import { S3StagingStore } from "../../../shared/staging/s3.ts";
import { putJson } from "../../../shared/staging/types.ts";
import { blobReportKey } from "../../../shared/workflow/keys.ts";
import { runCopyWorkflow } from "../../../shared/workflow/local-runner.ts";
import { putManifests } from "../../../shared/workflow/steps/manifests.ts";
import { resolve } from "../../../shared/workflow/steps/resolve.ts";
import { startFaultProxy } from "../../helpers/fault-proxy.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { type RunningS3, startS3 } from "../../helpers/s3.ts";
import {
  fsDeps,
  MiB,
  pushSampleImage,
  recorder,
  removeTempDirs,
  s3Deps,
  skopeoDigest,
  TINY,
  trackUploads,
} from "./helpers.ts";

const regs = registries();
const anon = clientFor(regs.anon);
const tok = clientFor(regs.token);
// One client for the whole transfer: it knows both registries' credentials.
const both = clientFor(regs.token);
let s3: RunningS3;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  removeTempDirs();
  await Promise.all([anon.close(), tok.close(), both.close(), s3?.stop()]);
});

describe("copy workflow, run locally against real registries", () => {
  it("copies a multi-platform image anon → token through filesystem staging in many small steps", async () => {
    const src = { registry: regs.anon.host, repository: uniqueRepo("wf-src"), tag: "v1" };
    const { index } = await pushSampleImage(anon, src, { bigSize: 2 * MiB });
    const dst = `${regs.token.host}/${uniqueRepo("wf-dst")}:v1`;
    const deps = fsDeps(both);
    const rec = recorder();
    const r = await runCopyWorkflow(
      { source: formatReference(src), destination: dst },
      { deps, retryIntervalMs: 1, ...rec.hooks },
    );
    expect(r.cause).toBeUndefined();
    expect(r.status).toBe("SUCCEEDED");
    expect(r.output).toMatchObject({ digest: index.digest, tags: ["v1"], upToDate: false });
    // ~2 MiB at 256 KiB per step: at least 8 stage steps and 8 upload steps per big layer
    expect(rec.inputs("StageBlob").length).toBeGreaterThanOrEqual(16);
    expect(rec.inputs("UploadBlob").length).toBeGreaterThanOrEqual(16);
    expect(await skopeoDigest(regs.token, dst)).toBe(index.digest);
    // staged objects are gone; the report stays
    const left = await deps.staging.list("transfers/");
    expect(left.some((k) => k.includes("/data/"))).toBe(false);
    expect(left.some((k) => k.endsWith("/report.json"))).toBe(true);
    expect(await deps.staging.openUploads()).toEqual([]);

    // again: already up to date, nothing planned
    const again = await runCopyWorkflow(
      { source: formatReference(src), destination: dst },
      { deps, retryIntervalMs: 1 },
    );
    expect(again.output).toMatchObject({ upToDate: true, digest: index.digest });
  });

  it("runs concurrent executions of the one definition, each with its own steps, staging, hooks and outcome", async () => {
    // The runner validates and builds each definition once per process and runs every execution on it
    // (local-runner.ts: prepare); nothing of one execution may leak into another running beside it.
    const images = await Promise.all(
      ["a", "b"].map(async (n) => {
        const src = { registry: regs.anon.host, repository: uniqueRepo(`wf-conc-${n}`), tag: "v1" };
        const { index } = await pushSampleImage(anon, src, { bigSize: 300 * 1024, platforms: 1 });
        return {
          src: formatReference(src),
          dst: `${regs.token.host}/${uniqueRepo(`wf-conc-${n}`)}:v1`,
          index,
        };
      }),
    );
    const deps = images.map(() => fsDeps(both));
    const recs = images.map(() => recorder());
    // b's PutManifests fails (not retryable): b fails, a, running at the same time, must not notice
    const failing = recs[1]!.hooks.wrapStep!;
    const [a, b] = await Promise.all(
      images.map((img, i) =>
        runCopyWorkflow(
          { source: img.src, destination: img.dst },
          {
            deps: deps[i]!,
            retryIntervalMs: 1,
            onEvent: recs[i]!.hooks.onEvent,
            wrapStep:
              i === 0
                ? recs[0]!.hooks.wrapStep
                : (state, step) =>
                    failing(
                      state,
                      state === "PutManifests"
                        ? async () => {
                            throw Object.assign(new Error("injected"), { name: "InjectedFailure" });
                          }
                        : step,
                    ),
          },
        ),
      ),
    );
    expect(a!.cause).toBeUndefined();
    expect(a!.status).toBe("SUCCEEDED");
    expect(a!.output).toMatchObject({ digest: images[0]!.index.digest });
    expect(b!.status).toBe("FAILED");
    expect(b!.error).toBe("InjectedFailure");
    expect(await skopeoDigest(regs.token, images[0]!.dst)).toBe(images[0]!.index.digest);
    expect((await tok.headManifest(parseReference(images[1]!.dst, null)))?.digest).toBeUndefined();
    for (const [i, rec] of recs.entries()) {
      // each execution's hooks saw its own image only, each staging its own transfer only
      const resolves = rec.inputs("Resolve");
      expect(resolves).toHaveLength(1);
      expect(resolves[0]).toMatchObject({ request: { source: images[i]!.src } });
      expect(rec.calls.length).toBeGreaterThan(2);
      for (const c of rec.calls.slice(1))
        expect(JSON.stringify(c.input)).toContain(`"source":"${images[i]!.src.replace(/:v1$/, "")}"`);
      expect(rec.entered.some((e) => e.state === "PutManifests")).toBe(true);
      const prefixes = new Set((await deps[i]!.staging.list("transfers/")).map((k) => k.split("/")[1]));
      expect(prefixes.size).toBe(1);
    }
    expect(recs[0]!.failed).toEqual([]);
    expect(recs[1]!.failed.map((f) => f.state)).toContain("PutManifests");
  });

  it("copies through S3 staging (s3rver, the real S3 client)", async () => {
    const src = { registry: regs.anon.host, repository: uniqueRepo("wf-s3src"), tag: "v2" };
    const { index } = await pushSampleImage(anon, src, { bigSize: 1 * MiB, platforms: 1 });
    const dst = `${regs.token.host}/${uniqueRepo("wf-s3dst")}:v2`;
    const deps = s3Deps(s3, both); // 64 KiB parts: the store's minimum lowered to that
    const r = await runCopyWorkflow(
      { source: formatReference(src), destination: dst },
      { deps, retryIntervalMs: 1 },
    );
    expect(r.cause).toBeUndefined();
    expect(r.status).toBe("SUCCEEDED");
    expect(await skopeoDigest(regs.token, dst)).toBe(index.digest);
    const left = await deps.staging.list(`transfers/${r.executionName}/`);
    expect(left.some((k) => k.includes("/data/"))).toBe(false);
    expect(left).toContain(`transfers/${r.executionName}/report.json`);
  });

  it("S3 staging with S3's minimum part size refuses a smaller part size before staging a byte", async () => {
    const src = { registry: regs.anon.host, repository: uniqueRepo("wf-s3min"), tag: "v1" };
    const { images, index } = await pushSampleImage(anon, src, { bigSize: 1 * MiB, platforms: 1 });
    const big = images[0]!.layers[0]!.desc.digest;
    const dst = `${regs.token.host}/${uniqueRepo("wf-s3min-dst")}:v1`;
    // the store as deployed (default options: 5 MiB), the request asking for 64 KiB parts
    const staging = new S3StagingStore({
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      credentials: s3.credentials,
    });
    const uploads = trackUploads(staging);
    const gets: string[] = [];
    const client = clientFor(regs.token, {
      observer: (e) => {
        if (e.method === "GET" && e.url.includes("/blobs/sha256:")) gets.push(e.url);
      },
    });
    try {
      const rec = recorder();
      const r = await runCopyWorkflow(
        { source: formatReference(src), destination: dst, options: { partBytes: 64 * 1024 } },
        { deps: { staging: uploads.store, client, defaults: TINY }, retryIntervalMs: 1, ...rec.hooks },
      );
      expect(r.status).toBe("FAILED");
      expect(r.error).toBe("StagingError");
      expect(r.cause).toMatch(
        /part size 64 KiB \(options.partBytes, --part-size\) is under the staging store's minimum part size of 5 MiB/,
      );
      expect(rec.inputs("StageBlob")).toHaveLength(1); // not retried
      expect(uploads.created).toEqual([]); // refused before the multipart upload
      expect(gets.some((u) => u.includes(big))).toBe(false); // and before reading the source
      expect(await tok.headManifest(parseReference(dst))).toBeUndefined();
      expect(
        await tok.headManifest({ ...parseReference(dst), tag: undefined, digest: index.digest }),
      ).toBeUndefined();
    } finally {
      await client.close();
    }
  });

  it("mounts big blobs within one registry instead of copying their bytes", async () => {
    const src = { registry: regs.anon.host, repository: uniqueRepo("wf-msrc"), tag: "v1" };
    const { index, images } = await pushSampleImage(anon, src, { bigSize: 1 * MiB, platforms: 1 });
    const dst = `${regs.anon.host}/${uniqueRepo("wf-mdst")}:v1`;
    const deps = fsDeps(anon);
    const rec = recorder();
    const r = await runCopyWorkflow(
      { source: formatReference(src), destination: dst },
      { deps, retryIntervalMs: 1, ...rec.hooks },
    );
    expect(r.status).toBe("SUCCEEDED");
    expect(rec.inputs("MountBlob")).toHaveLength(1);
    expect(rec.inputs("StageBlob")).toHaveLength(0);
    expect(r.output).toMatchObject({ digest: index.digest, blobs: { mounted: 3 } });
    const report = JSON.parse(
      (await deps.staging.getObject(`transfers/${r.executionName}/report.json`))!.toString(),
    );
    const big = images[0]!.layers[0]!.desc.digest;
    expect(report.blobs.find((b: { digest: string }) => b.digest === big)).toMatchObject({
      action: "mounted",
      bytesSent: 0,
    });
    expect(await skopeoDigest(regs.anon, dst)).toBe(index.digest);
  });

  it("asks the destination about each blob twice, not three times: PutManifests trusts what the execution's steps confirmed", async () => {
    // Resolve HEADs each blob to plan; the step moving it checks again just before (another execution may
    // have moved a shared blob meanwhile); PutManifests takes both answers from the blob records, as the
    // engine takes its own results, and sends no HEAD of its own.
    const src = { registry: regs.anon.host, repository: uniqueRepo("wf-heads-src"), tag: "v1" };
    const { images, index } = await pushSampleImage(anon, src, { bigSize: 300 * 1024, platforms: 1 });
    const proxy = await startFaultProxy(regs.anon.url, () => undefined);
    try {
      const dst = `${proxy.host}/${uniqueRepo("wf-heads-dst")}:v1`;
      const rec = recorder();
      const r = await runCopyWorkflow(
        { source: formatReference(src), destination: dst },
        { deps: fsDeps(both), retryIntervalMs: 1, ...rec.hooks },
      );
      expect(r.cause).toBeUndefined();
      expect(r.status).toBe("SUCCEEDED");
      const blobs = images.flatMap((i) => [i.config, ...i.layers].map((b) => b.desc.digest));
      expect(blobs.length).toBeGreaterThan(1);
      expect(rec.inputs("StageBlob").length).toBeGreaterThan(0); // the big layer is staged, the rest direct
      for (const d of blobs) {
        const heads = proxy.requests.filter((q) => q.method === "HEAD" && q.url.endsWith(`/blobs/${d}`));
        expect(heads, `HEADs of ${d}`).toHaveLength(2);
      }
      expect(await skopeoDigest(regs.anon, dst.replace(proxy.host, regs.anon.host))).toBe(index.digest);
    } finally {
      await proxy.close();
    }
  });

  it.each([
    ["no blob was copied", false],
    // Step Functions lets a name be reused once its execution has ended, and staging keeps blob records
    // (cleanup removes data, parts and open uploads): an earlier execution's records confirm nothing
    ["the only records are those an earlier execution left under the same prefix", true],
  ])(
    "PutManifests refuses to push any manifest while a blob is missing at the destination: %s",
    async (_, stale) => {
      const src = { registry: regs.anon.host, repository: uniqueRepo("wf-incsrc"), tag: "v1" };
      await pushSampleImage(anon, src, { bigSize: 300 * 1024, platforms: 1 });
      const repo = uniqueRepo("wf-incdst");
      const deps = fsDeps(both);
      const resolved = await resolve(
        {
          request: { source: formatReference(src), destination: `${regs.token.host}/${repo}:v1` },
          executionName: "incomplete-1",
        },
        deps,
      );
      expect(resolved.blobs.length).toBeGreaterThan(0);
      if (stale)
        for (const b of resolved.blobs)
          await putJson(deps.staging, blobReportKey(resolved.job.prefix, b.digest), {
            digest: b.digest,
            size: b.size,
            mediaType: b.mediaType,
            action: "copied",
            bytesSent: b.size,
            finishedAt: "2020-01-01T00:00:00.000Z", // before this execution's plan
          });
      const err = await putManifests({ job: resolved.job }, deps).catch((e: Error) => e);
      expect((err as Error).name).toBe("IncompleteImageError");
      expect((err as Error).message).toContain(`${resolved.blobs.length} of`);
      expect((err as Error).message).toMatch(/no manifest was pushed/);
      expect(
        await tok.headManifest({ registry: regs.token.host, repository: repo, tag: "v1" }),
      ).toBeUndefined();
    },
  );
});
