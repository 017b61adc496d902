import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sha256 } from "../../../shared/registry/digest.ts";
import { MediaType } from "../../../shared/registry/media-types.ts";
import { parseReference, type Reference } from "../../../shared/registry/reference.ts";
import {
  bytesBlob,
  imageOf,
  sampleMultiPlatform,
  seededBlob,
  tarLayer,
  writeSample,
} from "../../../shared/sample/image.ts";
import { TransferEngine } from "../../../shared/transfer/engine.ts";
import { RegistrySink, RegistrySource } from "../../../shared/transfer/registry-endpoints.ts";
import { ferry } from "../../helpers/ferry-cli.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { credsFlag, skopeo } from "../../helpers/skopeo.ts";

const regs = registries();
const anon = clientFor(regs.anon);
const tok = clientFor(regs.token);
afterAll(async () => {
  await anon.close();
  await tok.close();
});

async function pushSample(repository: string, tag = "v1") {
  const { images, index } = await sampleMultiPlatform();
  const repo = { registry: regs.anon.host, repository };
  await writeSample(new RegistrySink(anon, repo), images, index, tag);
  return { images, index, ref: { ...repo, tag } as Reference };
}

describe("transfer engine, registry to registry", () => {
  it("copies a multi-platform image across registries with its digest, and skopeo reads it back", async () => {
    const { index, ref } = await pushSample(uniqueRepo("src"));
    const dst = { registry: regs.token.host, repository: uniqueRepo("dst") };
    const engine = new TransferEngine();
    const report = await engine.copy(new RegistrySource(anon, ref), new RegistrySink(tok, dst), {
      tags: ["v1"],
    });
    expect(report.digest).toBe(index.digest);
    expect(report.upToDate).toBe(false);
    expect(report.manifests).toHaveLength(3);
    expect(report.blobs.filter((b) => b.action === "copied")).toHaveLength(report.blobs.length);

    const raw = await skopeo(
      "inspect",
      "--raw",
      "--tls-verify=false",
      ...credsFlag(regs.token, "plain"),
      `docker://${dst.registry}/${dst.repository}:v1`,
    );
    expect(sha256(Buffer.from(raw))).toBe(index.digest);
    const out = mkdtempSync(join(tmpdir(), "ferry-oci-"));
    await skopeo(
      "copy",
      "--all",
      "--src-tls-verify=false",
      ...credsFlag(regs.token, "src"),
      `docker://${dst.registry}/${dst.repository}:v1`,
      `oci:${out}:v1`,
    );

    // the same copy again moves no blob bytes and says so
    const again = await engine.copy(new RegistrySource(anon, ref), new RegistrySink(tok, dst), {
      tags: ["v1"],
    });
    expect(again.upToDate).toBe(true);
    expect(again.totals.bytesSent).toBe(0);
    const forced = await new TransferEngine().copy(
      new RegistrySource(anon, ref),
      new RegistrySink(tok, dst),
      { tags: ["v1"], force: true },
    );
    expect(forced.blobs.length).toBeGreaterThan(0);
    expect(forced.blobs.every((b) => b.action === "skipped")).toBe(true);
    expect(forced.totals.bytesSent).toBe(0);
  });

  it("mounts blobs within one registry instead of copying bytes", async () => {
    const { ref, index } = await pushSample(uniqueRepo("src"));
    const dst = { registry: regs.anon.host, repository: uniqueRepo("dst") };
    const report = await new TransferEngine().copy(
      new RegistrySource(anon, ref),
      new RegistrySink(anon, dst, { mountFrom: [ref] }),
      { tags: ["v1"] },
    );
    expect(report.digest).toBe(index.digest);
    expect(report.blobs.length).toBeGreaterThan(0);
    expect(report.blobs.every((b) => b.action === "mounted")).toBe(true);
    expect(report.totals.bytesSent).toBe(0);
  });

  it("selects platforms: the index is rewritten and says so", async () => {
    const { ref, index, images } = await pushSample(uniqueRepo("src"));
    const dst = { registry: regs.anon.host, repository: uniqueRepo("dst") };
    const report = await new TransferEngine().copy(
      new RegistrySource(anon, ref),
      new RegistrySink(anon, dst),
      {
        tags: ["arm"],
        platforms: [{ os: "linux", architecture: "arm64" }],
      },
    );
    expect(report.digest).not.toBe(index.digest);
    expect(report.notes.join(" ")).toMatch(/kept 1 of 2 platforms.*digest/);
    const got = await anon.getManifest({ ...dst, tag: "arm" });
    const parsed = JSON.parse(Buffer.from(got.bytes).toString()) as { manifests: { digest: string }[] };
    expect(parsed.manifests.map((m) => m.digest)).toEqual([images[1]!.manifest.digest]);
  });

  it("copies a layer shared by several images once per run", async () => {
    const base = await tarLayer([{ name: "shared.txt", content: "same in both" }]);
    const repos = [uniqueRepo("a"), uniqueRepo("b")];
    for (const [i, r] of repos.entries()) {
      const own = await tarLayer([{ name: "own.txt", content: `image ${i}` }]);
      const img = imageOf([base, own], { os: "linux", architecture: "amd64" });
      await writeSample(
        new RegistrySink(anon, { registry: regs.anon.host, repository: r }),
        [img],
        undefined,
        "v1",
      );
    }
    const engine = new TransferEngine();
    const dstRepo = uniqueRepo("merged");
    const reports = await Promise.all(
      repos.map((r, i) =>
        engine.copy(
          new RegistrySource(anon, { registry: regs.anon.host, repository: r, tag: "v1" }),
          new RegistrySink(tok, { registry: regs.token.host, repository: dstRepo }),
          { tags: [`i${i}`] },
        ),
      ),
    );
    const baseReports = reports.flatMap((r) => r.blobs).filter((b) => b.digest === base.blob.desc.digest);
    expect(baseReports).toHaveLength(2);
    expect(baseReports.filter((b) => b.action === "copied" && !b.shared)).toHaveLength(1);
    expect(baseReports.filter((b) => b.shared)).toHaveLength(1);
  });

  it("refuses to move a tag with --no-clobber", async () => {
    const { ref } = await pushSample(uniqueRepo("src"));
    const dst = { registry: regs.anon.host, repository: uniqueRepo("dst") };
    const other = imageOf([await tarLayer([{ name: "x", content: "other" }])], {
      os: "linux",
      architecture: "amd64",
    });
    await writeSample(new RegistrySink(anon, dst), [other], undefined, "v1");
    await expect(
      new TransferEngine().copy(new RegistrySource(anon, ref), new RegistrySink(anon, dst), {
        tags: ["v1"],
        noClobber: true,
      }),
    ).rejects.toThrow(/already points to .*no-clobber/);
    expect((await anon.headManifest({ ...dst, tag: "v1" }))?.digest).toBe(other.manifest.digest);
  });

  it("copies what skopeo wrote (gzip and uncompressed layers), byte for byte", async () => {
    const big = await seededBlob("uncompressed-layer", 3 * 1024 * 1024 + 17, MediaType.DockerLayer);
    const gz = await tarLayer([{ name: "f", content: "gzip" }]);
    const img = imageOf(
      [
        { blob: big, diffId: big.desc.digest },
        {
          blob: { ...gz.blob, desc: { ...gz.blob.desc, mediaType: MediaType.DockerLayerGzip } },
          diffId: gz.diffId,
        },
      ],
      { os: "linux", architecture: "amd64" },
      MediaType.DockerManifest,
    );
    const staging = { registry: regs.anon.host, repository: uniqueRepo("staging") };
    await writeSample(new RegistrySink(anon, staging), [img], undefined, "v1");
    // skopeo writes it to another repository of the token registry
    const viaSkopeo = `${regs.token.host}/${uniqueRepo("skopeo")}:v1`;
    await skopeo(
      "copy",
      "--preserve-digests",
      "--src-tls-verify=false",
      "--dest-tls-verify=false",
      ...credsFlag(regs.token, "dest"),
      `docker://${staging.registry}/${staging.repository}:v1`,
      `docker://${viaSkopeo}`,
    );
    const src = parseReference(viaSkopeo);
    const dst = { registry: regs.anon.host, repository: uniqueRepo("back") };
    const report = await new TransferEngine().copy(
      new RegistrySource(tok, src),
      new RegistrySink(anon, dst),
      { tags: ["v1"] },
    );
    expect(report.digest).toBe(img.manifest.digest);
    const layer = await anon.readBlob(dst, img.layers[1]!.desc);
    expect(sha256(layer)).toBe(img.layers[1]!.desc.digest);
    expect(await anon.headBlob(dst, big.desc.digest)).toBe(big.desc.size);
  });

  it("fails clearly, naming image and registry, and pushes no manifest when a blob is missing at the source", async () => {
    const repo = { registry: regs.anon.host, repository: uniqueRepo("broken") };
    const layer = bytesBlob(Buffer.from("present"), MediaType.OciLayer);
    const img = imageOf([{ blob: layer, diffId: layer.desc.digest }], { os: "linux", architecture: "amd64" });
    await writeSample(new RegistrySink(anon, repo), [img], undefined, "v1");
    await anon.deleteBlob(repo, layer.desc.digest);
    const dst = { registry: regs.token.host, repository: uniqueRepo("dst") };
    const err = await new TransferEngine()
      .copy(new RegistrySource(anon, { ...repo, tag: "v1" }), new RegistrySink(tok, dst), { tags: ["v1"] })
      .catch((e: Error) => e);
    expect((err as Error).message).toMatch(
      new RegExp(`${layer.desc.digest}.*${regs.anon.host}/${repo.repository}.*404`),
    );
    expect(await tok.headManifest({ ...dst, tag: "v1" })).toBeUndefined();
  });
});

describe("ferry CLI", () => {
  it("copies with --json and reports; a second run moves nothing", async () => {
    const { ref, index } = await pushSample(uniqueRepo("cli"));
    const dst = `${regs.basic.host}/${uniqueRepo("cli-dst")}:v1`;
    const args = [
      "copy",
      `${ref.registry}/${ref.repository}:v1`,
      dst,
      "--dest-creds",
      `${regs.basic.username}:${regs.basic.password}`,
      "--json",
    ];
    const first = await ferry(args);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const r1 = JSON.parse(first.stdout);
    expect(r1.digest).toBe(index.digest);
    const second = await ferry(args);
    const r2 = JSON.parse(second.stdout);
    expect(r2.upToDate).toBe(true);
    expect(r2.totals.bytesSent).toBe(0);
  });

  it("copies a list in one process with --from-file", async () => {
    const a = await pushSample(uniqueRepo("list"));
    const b = await pushSample(uniqueRepo("list"));
    const dir = mkdtempSync(join(tmpdir(), "ferry-list-"));
    const list = join(dir, "list.txt");
    const dsts = [uniqueRepo("ldst"), uniqueRepo("ldst")];
    const { writeFileSync } = await import("node:fs");
    writeFileSync(
      list,
      `# migration\n${a.ref.registry}/${a.ref.repository}:v1 ${regs.anon.host}/${dsts[0]}:v1\n\n${b.ref.registry}/${b.ref.repository}:v1 ${regs.anon.host}/${dsts[1]}:v1\n`,
    );
    const res = await ferry(["copy", "--from-file", list, "--json"]);
    expect(res.code).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out.images).toHaveLength(2);
    expect(out.failures).toEqual([]);
  });

  it.each([
    [["copy", "x/UPPER", "y"], 2, /invalid reference.*lowercase/],
    [["copy", "a"], 2, /needs <src> and <dst>/],
    [["copy", "127.0.0.1:1/none:v1", "127.0.0.1:1/x:v1", "--concurrency", "0"], 2, /concurrency/],
    [["frobnicate"], 2, /unknown command/],
    [["copy", "dir:/tmp/x", "y"], 2, /does not read or write "dir:"/],
  ])("bad input %j gives one clear line, no stack trace", async (args, code, message) => {
    const res = await ferry(args as string[]);
    expect(res.code).toBe(code);
    expect(res.stderr).toMatch(message);
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });

  it("names the registry and status when the source does not exist", async () => {
    const res = await ferry(["copy", `${regs.anon.host}/does/not-exist:v1`, `${regs.anon.host}/x:v1`]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(
      new RegExp(`${regs.anon.host}/v2/does/not-exist/manifests/v1 answered 404.*MANIFEST_UNKNOWN`),
    );
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
  });
});
