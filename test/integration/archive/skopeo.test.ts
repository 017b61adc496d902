/**
 * Interoperability of ferry's archive formats with an independent implementation: skopeo
 * (containers/image). skopeo writes docker-archives ferry reads, and reads the ones ferry writes.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createGunzip } from "node:zlib";
import { expect, it } from "vitest";
import {
  compressionOfMediaType,
  createDockerArchiveSink,
  createOciLayoutSink,
  extractLayers,
  openDockerArchive,
  openOciLayout,
} from "../../../shared/archive/index.ts";
import { sha256 } from "../../../shared/registry/digest.ts";
import { parseManifest } from "../../../shared/registry/manifest.ts";
import { MediaType } from "../../../shared/registry/media-types.ts";
import type { ImageSource } from "../../../shared/transfer/types.ts";
import { makeImage, putImage, type TarSpec } from "../../fixtures/archive/tar.ts";
import { describeWithSkopeo, skopeo } from "../../helpers/skopeo.ts";
import { tmpDir } from "../../helpers/tmp.ts";

const L1: TarSpec[] = [
  { name: "etc/", type: "directory" },
  { name: "etc/hello", content: "hello from layer 1\n" },
];
const L2: TarSpec[] = [
  { name: "usr/bin/tool", content: "#!/bin/sh\necho tool\n", mode: 0o755 },
  { name: "etc/.wh.hello" },
];

/** sha256 of a layer's uncompressed tar, streamed. */
async function diffIdOf(
  src: ImageSource,
  desc: { mediaType: string; digest: string; size: number },
): Promise<string> {
  const stream = await src.openBlob(desc);
  const body = compressionOfMediaType(desc.mediaType) === "gzip" ? stream.pipe(createGunzip()) : stream;
  const hash = createHash("sha256");
  for await (const c of body as AsyncIterable<Buffer>) hash.update(c);
  return `sha256:${hash.digest("hex")}`;
}

describeWithSkopeo("archives and skopeo", () => {
  it("reads a docker-archive written by skopeo (legacy layout, layers named by diff_id)", async () => {
    const dir = tmpDir("ferry-archive-skopeo-");
    // layer 3 repeats layer 1: skopeo de-duplicates it in the tar
    const image = await makeImage([L1, L2, L1]);
    const sink = await createOciLayoutSink(join(dir, "oci"));
    await putImage(sink, image, "1.0");
    await sink.close?.();
    const file = join(dir, "skopeo.tar");
    await skopeo("copy", `oci:${join(dir, "oci")}:1.0`, `docker-archive:${file}:example/app:1.0`);

    const src = await openDockerArchive(file, { image: "example/app:1.0" });
    expect(src.format).toBe("docker-legacy");
    expect(src.repoTags).toEqual(["docker.io/example/app:1.0"]);
    const root = await src.resolve();
    const m = parseManifest(root.bytes, root.mediaType);
    if (m.kind !== "manifest") throw new Error("expected an image manifest");
    expect(m.mediaType).toBe(MediaType.DockerManifest);

    const config = JSON.parse((await readAll(await src.openBlob(m.config))).toString("utf8"));
    expect(sha256(await readAll(await src.openBlob(m.config)))).toBe(m.config.digest);
    const diffIds: string[] = config.rootfs.diff_ids;
    expect(diffIds).toEqual(image.layers.map((l) => l.diffId));
    // skopeo stores layers uncompressed: their digests are the diff_ids, and the bytes hash to them
    expect(m.layers.map((l) => l.digest)).toEqual(diffIds);
    expect(m.layers.length).toBeGreaterThan(0);
    expect(m.layers.every((l) => l.mediaType === MediaType.DockerLayer)).toBe(true);
    for (const l of m.layers) expect(await diffIdOf(src, l)).toBe(l.digest);
  });

  it("writes a docker-archive skopeo inspects and copies (compressed layers stay compressed)", async () => {
    const dir = tmpDir("ferry-archive-skopeo-");
    const image = await makeImage([L1, L2], { flavour: "docker" });
    const file = join(dir, "ferry.tar");
    const sink = createDockerArchiveSink(file, { repoTags: ["example/app:1.0"] });
    await putImage(sink, image);
    await sink.close?.();

    const inspect = JSON.parse(await skopeo("inspect", `docker-archive:${file}`));
    expect(inspect.Layers).toEqual(image.layers.map((l) => l.diffId));
    expect(inspect.Architecture).toBe("amd64");
    const config = JSON.parse(await skopeo("inspect", "--config", `docker-archive:${file}`));
    expect(config.rootfs.diff_ids).toEqual(image.layers.map((l) => l.diffId));

    const out = join(dir, "oci2");
    await skopeo("copy", `docker-archive:${file}`, `oci:${out}:copied`);
    const copied = await openOciLayout(out, "copied");
    const m = parseManifest((await copied.resolve()).bytes);
    if (m.kind !== "manifest") throw new Error("expected an image manifest");
    const copiedConfig = JSON.parse(
      (await readFile(join(out, "blobs/sha256", m.config.digest.slice(7)))).toString("utf8"),
    );
    expect(copiedConfig.rootfs.diff_ids).toEqual(image.layers.map((l) => l.diffId));
    const ids = [];
    for (const l of m.layers) ids.push(await diffIdOf(copied, l));
    expect(ids).toEqual(image.layers.map((l) => l.diffId));

    // and the copied layers extract to the expected root filesystem
    const rootfs = join(dir, "rootfs");
    await extractLayers(
      rootfs,
      m.layers.map((desc) => ({ desc, open: () => copied.openBlob(desc) })),
    );
    expect(existsSync(join(rootfs, "etc/hello"))).toBe(false);
    expect(await readFile(join(rootfs, "usr/bin/tool"), "utf8")).toContain("echo tool");
  });
});

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}
