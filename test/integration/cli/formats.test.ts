/**
 * The CLI between registries and files, checked with skopeo: push docker-archive (hand-made legacy
 * and skopeo-written), --compress gzip, pull to docker-archive / oci / rootfs.
 */
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sha256 } from "../../../shared/registry/digest.ts";
import { MediaType } from "../../../shared/registry/media-types.ts";
import { parseReference } from "../../../shared/registry/reference.ts";
import { sampleMultiPlatform, writeSample } from "../../../shared/sample/image.ts";
import { RegistrySink } from "../../../shared/transfer/registry-endpoints.ts";
import { legacyArchiveEntries, makeImage, writeTar } from "../../fixtures/archive/tar.ts";
import { ferry } from "../../helpers/ferry-cli.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { skopeo } from "../../helpers/skopeo.ts";

const regs = registries();
const anon = clientFor(regs.anon);
const work = mkdtempSync(join(tmpdir(), "ferry-cli-formats-"));
afterAll(async () => {
  await anon.close();
  rmSync(work, { recursive: true, force: true });
});

async function legacyArchive(name: string) {
  const image = await makeImage(
    [
      [
        { name: "etc/", type: "directory" },
        { name: "etc/motd", content: "hello\n" },
        { name: "tmp/", type: "directory" },
        { name: "tmp/gone", content: "x" },
      ],
      [
        { name: "tmp/.wh.gone", content: "" },
        { name: "bin/", type: "directory" },
        { name: "bin/tool", content: "#!/bin/sh\n", mode: 0o755 },
      ],
    ],
    { compress: "none", flavour: "docker" },
  );
  const file = join(work, name);
  await writeTar(file, legacyArchiveEntries(image));
  return { image, file };
}

describe("ferry push / pull with files", () => {
  it("pushes a hand-made legacy docker save archive; uncompressed layers keep their media type", async () => {
    const { image, file } = await legacyArchive("legacy.tar");
    const dst = `${regs.anon.host}/${uniqueRepo("push")}:1.0`;
    const res = await ferry(["push", `docker-archive:${file}`, dst, "--json"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const raw = await skopeo("inspect", "--raw", "--tls-verify=false", `docker://${dst}`);
    const m = JSON.parse(raw) as { mediaType: string; layers: { mediaType: string; digest: string }[] };
    expect(m.mediaType).toBe(MediaType.DockerManifest);
    expect(m.layers.map((l) => l.mediaType)).toEqual([MediaType.DockerLayer, MediaType.DockerLayer]);
    expect(m.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.diffId));
  });

  it("--compress gzip: gzips layers on the way; diff_ids stay the uncompressed digests; skopeo pulls it", async () => {
    const { image, file } = await legacyArchive("legacy-gz.tar");
    const dst = `${regs.anon.host}/${uniqueRepo("gz")}:1.0`;
    const res = await ferry(["push", `docker-archive:${file}`, dst, "--compress", "gzip", "--json"]);
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout) as { notes: string[] };
    expect(report.notes.join(" ")).toMatch(/compressed 2 layer/);
    const m = JSON.parse(await skopeo("inspect", "--raw", "--tls-verify=false", `docker://${dst}`)) as {
      layers: { mediaType: string; digest: string }[];
      config: { digest: string };
    };
    expect(m.layers).toHaveLength(image.layers.length);
    expect(m.layers.every((l) => l.mediaType === MediaType.DockerLayerGzip)).toBe(true);
    expect(m.config.digest).toBe(image.config.desc.digest);
    // skopeo pulls and decompresses: the layers' uncompressed digests must be the diff_ids
    const oci = join(work, "gz-oci");
    await skopeo("copy", "--src-tls-verify=false", `docker://${dst}`, `oci:${oci}:x`);
    const out = join(work, "gz-rootfs");
    const pull = await ferry(["pull", dst, `rootfs:${out}`, "--json"]);
    expect(pull.code).toBe(0);
    expect(readFileSync(join(out, "etc/motd"), "utf8")).toBe("hello\n");
    expect(existsSync(join(out, "tmp/gone"))).toBe(false);
  });

  it("pushes an archive skopeo wrote, and skopeo loads the archive ferry pulls", async () => {
    const { images, index } = await sampleMultiPlatform("fmt");
    const src = { registry: regs.anon.host, repository: uniqueRepo("fmt") };
    await writeSample(new RegistrySink(anon, src), images, index, "v1");
    const skopeoTar = join(work, "by-skopeo.tar");
    await skopeo(
      "copy",
      "--src-tls-verify=false",
      "--override-arch",
      "arm64",
      `docker://${src.registry}/${src.repository}:v1`,
      `docker-archive:${skopeoTar}:fmt/app:v1`,
    );
    const dst = `${regs.anon.host}/${uniqueRepo("from-skopeo")}:v1`;
    const push = await ferry(["push", `docker-archive:${skopeoTar}`, dst]);
    expect(push.stderr).toBe("");
    expect(push.code).toBe(0);
    expect((await anon.headManifest(parseReference(dst)))?.mediaType).toBe(MediaType.DockerManifest);

    const ferryTar = join(work, "by-ferry.tar");
    const pull = await ferry([
      "pull",
      `${src.registry}/${src.repository}:v1`,
      `docker-archive:${ferryTar}`,
      "--platform",
      "linux/arm64",
    ]);
    expect(pull.code).toBe(0);
    const inspected = JSON.parse(await skopeo("inspect", `docker-archive:${ferryTar}`)) as {
      Architecture: string;
      Layers: string[];
    };
    expect(inspected.Architecture).toBe("arm64");
    expect(inspected.Layers).toHaveLength(2);
    await skopeo("copy", `docker-archive:${ferryTar}`, `oci:${join(work, "loaded")}:x`);
  });

  it("pulls a multi-platform image to an OCI layout with the index digest; skopeo reads it", async () => {
    const { images, index } = await sampleMultiPlatform("oci");
    const src = { registry: regs.anon.host, repository: uniqueRepo("oci") };
    await writeSample(new RegistrySink(anon, src), images, index, "v1");
    const dir = join(work, "layout");
    const res = await ferry(["pull", `${src.registry}/${src.repository}:v1`, `oci:${dir}:v1`, "--json"]);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout).digest).toBe(index.digest);
    const raw = await skopeo("inspect", "--raw", `oci:${dir}:v1`);
    expect(sha256(Buffer.from(raw))).toBe(index.digest);
    // and back: ferry pushes the layout
    const dst = `${regs.anon.host}/${uniqueRepo("oci-back")}:v1`;
    expect((await ferry(["push", `oci:${dir}:v1`, dst])).code).toBe(0);
    expect((await anon.headManifest(parseReference(dst)))?.digest).toBe(index.digest);
  });

  it("pulls a root filesystem with whiteouts and symlinks", async () => {
    const { images, index } = await sampleMultiPlatform("rootfs");
    const src = { registry: regs.anon.host, repository: uniqueRepo("rootfs") };
    await writeSample(new RegistrySink(anon, src), images, index, "v1");
    const dir = join(work, "rootfs");
    const res = await ferry([
      "pull",
      `${src.registry}/${src.repository}:v1`,
      `rootfs:${dir}`,
      "--platform",
      "linux/arm64",
    ]);
    expect(res.code).toBe(0);
    expect(readFileSync(join(dir, "etc/arch"), "utf8")).toBe("arm64\n");
    expect(existsSync(join(dir, "tmp/scratch.txt"))).toBe(false);
    expect(readlinkSync(join(dir, "bin/hi"))).toBe("hello");
  });

  it("a truncated archive gives one clear error and pushes nothing", async () => {
    const { file } = await legacyArchive("whole.tar");
    const cut = join(work, "cut.tar");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(cut, readFileSync(file).subarray(0, 3000));
    const repo = uniqueRepo("cut");
    const res = await ferry(["push", `docker-archive:${cut}`, `${regs.anon.host}/${repo}:1.0`]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/cut\.tar/);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
    expect(await anon.headManifest(parseReference(`${regs.anon.host}/${repo}:1.0`))).toBeUndefined();
  });
});
