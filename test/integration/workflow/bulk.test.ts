/**
 * The bulk migration, locally: Enumerate over a registry with several repositories and tags, filters
 * (include/exclude, semver range, latest N, immutable tags), the Distributed Map rewritten to an inline
 * Map with tolerated failures and ResultWriter files in staging, then Summarize.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { Reference } from "../../../shared/registry/reference.ts";
import { imageOf, tarLayer, writeSample } from "../../../shared/sample/image.ts";
import { parseCopyList } from "../../../shared/transfer/copy-list.ts";
import { RegistrySink } from "../../../shared/transfer/registry-endpoints.ts";
import { runBulkWorkflow } from "../../../shared/workflow/local-runner.ts";
import type { BulkSummary } from "../../../shared/workflow/steps/summarize.ts";
import { clientFor, registries } from "../../helpers/registry-client.ts";
import { fsDeps, recorder, removeTempDirs } from "./helpers.ts";

const regs = registries();
const anon = clientFor(regs.anon);
const both = clientFor(regs.token);
afterAll(async () => {
  removeTempDirs();
  await Promise.all([anon.close(), both.close()]);
});

async function pushTags(ref: Omit<Reference, "tag">, tags: string[], content = "x") {
  const layer = await tarLayer([{ name: "file", content: `${ref.repository} ${content}\n` }]);
  const img = imageOf([layer], { os: "linux", architecture: "amd64" });
  for (const tag of tags) await writeSample(new RegistrySink(anon, ref), [img], undefined, tag);
  return img;
}

describe("bulk migration workflow, run locally", () => {
  it("copies the selected repositories and tags, leaves immutable tags alone, tolerates a failure", async () => {
    const ns = `bulk${process.pid}${Date.now().toString(36)}`;
    const src = (r: string) => ({ registry: regs.anon.host, repository: `${ns}/${r}` });
    await pushTags(src("app"), ["v1.0.0", "v1.1.0", "v1.2.0-rc.1", "v2.0.0", "latest", "dev-abc"]);
    await pushTags(src("tools/cli"), ["0.1.0", "0.2.0", "0.2.1"]);
    await pushTags(src("skip-me"), ["v1.0.0"]);
    // broken: its manifest names a blob the registry no longer has
    const broken = await pushTags(src("broken"), ["1.0.0"], "broken");
    await anon.deleteBlob(src("broken"), broken.layers[0]!.desc.digest);

    const dstNs = `mirror-${ns}`;
    const dst = (r: string) => ({ registry: regs.token.host, repository: `${dstNs}/${r}` });
    // the destination already has tools/cli:0.2.0 (another image): immutable, so never overwritten
    const other = await tarLayer([{ name: "other", content: "pre-existing\n" }]);
    const preexisting = imageOf([other], { os: "linux", architecture: "amd64" });
    await writeSample(new RegistrySink(both, dst("tools/cli")), [preexisting], undefined, "0.2.0");

    const deps = fsDeps(both);
    const rec = recorder();
    const r = await runBulkWorkflow(
      {
        source: `${regs.anon.host}/${ns}`,
        destination: `${regs.token.host}/${dstNs}`,
        exclude: ["skip-.*"],
        tags: { semver: ">=0.2.0 <2.0.0 || ^2", latest: 2, immutable: ["v?\\d+\\.\\d+\\.\\d+"] },
        toleratedFailurePercentage: 50,
        concurrency: 3,
      },
      { deps, retryIntervalMs: 1, ...rec.hooks },
    );
    expect(r.cause).toBeUndefined();
    expect(r.status).toBe("SUCCEEDED");
    const summary = r.output as BulkSummary;
    // app: v1.0.0, v1.1.0, v2.0.0 in range (not the pre-release), the latest 2: v2.0.0, v1.1.0;
    // tools/cli: 0.2.0, 0.2.1 (0.2.0 is immutable and already there: skipped); broken: 1.0.0 (fails)
    expect(summary).toMatchObject({
      images: 4,
      succeeded: 3,
      failedImages: 1,
      skipped: 1,
      failed: false,
      status: "SUCCEEDED",
    });
    expect(summary.failures[0]!.source).toBe(`${regs.anon.host}/${ns}/broken:1.0.0`);
    expect(summary.failures[0]!.cause).toMatch(/broken/);

    const has = async (repo: string, tag: string) => (await both.headManifest({ ...dst(repo), tag }))?.digest;
    expect(await has("app", "v2.0.0")).toBeDefined();
    expect(await has("app", "v1.1.0")).toBeDefined();
    expect(await has("app", "latest")).toBeUndefined();
    expect(await has("app", "v1.2.0-rc.1")).toBeUndefined();
    expect(await has("app", "v1.0.0")).toBeUndefined();
    expect(await has("tools/cli", "0.2.1")).toBeDefined();
    expect(await has("tools/cli", "0.2.0")).toBe(preexisting.manifest.digest);
    expect(await has("tools/cli", "0.1.0")).toBeUndefined();
    expect(await has("skip-me", "v1.0.0")).toBeUndefined();
    expect(await has("broken", "1.0.0")).toBeUndefined();

    // the same files Step Functions' ResultWriter writes, and the summary, are in staging
    const keys = await deps.staging.list(`bulk/${r.executionName}/`);
    expect(keys.some((k) => k.endsWith("/manifest.json"))).toBe(true);
    expect(keys.some((k) => /SUCCEEDED_0\.json$/.test(k))).toBe(true);
    expect(keys.some((k) => /FAILED_0\.json$/.test(k))).toBe(true);
    expect(keys).toContain(`bulk/${r.executionName}/summary.json`);
    expect(keys).toContain(`bulk/${r.executionName}/items.jsonl`);
    // the failed image as a `ferry copy --from-file` list, linked from the summary
    expect(summary.failureList).toBe(`${deps.staging.location}/bulk/${r.executionName}/failures.txt`);
    const list = (await deps.staging.getObject(`bulk/${r.executionName}/failures.txt`))!.toString("utf8");
    expect(parseCopyList(list, "failures.txt").map((l) => [l.source, l.destination])).toEqual([
      [`${regs.anon.host}/${ns}/broken:1.0.0`, `${regs.token.host}/${dstNs}/broken:1.0.0`],
    ]);
    expect(list).toMatch(/\n# .*broken.*\n[^#]/);
    const stored = JSON.parse(
      (await deps.staging.getObject(`bulk/${r.executionName}/summary.json`))!.toString(),
    );
    expect(stored.failureList).toBe(summary.failureList);
  });

  it("fails when more images fail than tolerated, with a summary naming them", async () => {
    const ns = `bulkf${process.pid}${Date.now().toString(36)}`;
    const ref = { registry: regs.anon.host, repository: `${ns}/gone` };
    const img = await pushTags(ref, ["1.0.0"], "gone");
    await anon.deleteBlob(ref, img.layers[0]!.desc.digest);
    const deps = fsDeps(both);
    const r = await runBulkWorkflow(
      { source: `${regs.anon.host}/${ns}`, destination: `${regs.token.host}/mirror-${ns}` },
      { deps, retryIntervalMs: 1 },
    );
    expect(r.status).toBe("FAILED");
    expect(r.error).toBe("States.ExceedToleratedFailureThreshold");
    expect(r.cause).toContain(`${ns}/gone:1.0.0`);
  });

  it("with nothing selected, summarizes an empty migration", async () => {
    const deps = fsDeps(both);
    const r = await runBulkWorkflow(
      { source: `${regs.anon.host}/nothing-here-${Date.now()}`, destination: `${regs.token.host}/x` },
      { deps, retryIntervalMs: 1 },
    );
    expect(r.status).toBe("SUCCEEDED");
    expect(r.output).toMatchObject({ images: 0, succeeded: 0, failed: false });
    expect((r.output as BulkSummary).failureList).toBeUndefined();
  });
});
