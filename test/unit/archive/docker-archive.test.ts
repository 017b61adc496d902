import { existsSync } from "node:fs";
import { readdir, readFile, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  ArchiveError,
  createDockerArchiveSink,
  ImageNotFoundError,
  indexTar,
  openDockerArchive,
  UnsafePathError,
  UnsupportedManifestError,
} from "../../../shared/archive/index.ts";
import { sha256 } from "../../../shared/registry/digest.ts";
import { parseManifest } from "../../../shared/registry/manifest.ts";
import { MediaType } from "../../../shared/registry/media-types.ts";
import {
  bufferOpener,
  buildTar,
  gzip,
  legacyArchiveEntries,
  makeImage,
  ociInTarEntries,
  padded,
  putImage,
  rawTarHeader,
  readAll,
  type TarSpec,
  writeTar,
} from "../../fixtures/archive/tar.ts";
import { tmpDir } from "../../helpers/tmp.ts";

const L1: TarSpec[] = [
  { name: "etc/", type: "directory" },
  { name: "etc/os-release", content: "ID=test\n" },
];
const L2: TarSpec[] = [{ name: "usr/bin/app", content: "binary", mode: 0o755 }];

async function legacyFile(entries: TarSpec[]): Promise<string> {
  const file = join(tmpDir("ferry-archive-"), "image.tar");
  await writeTar(file, entries);
  return file;
}

describe("openDockerArchive: legacy docker save layout", () => {
  it("synthesises a Docker schema 2 manifest with diff_ids as layer digests; duplicate layers via symlinks", async () => {
    // layer 3 repeats layer 1: docker save writes it as a symlink to the first copy
    const image = await makeImage([L1, L2, L1], { compress: "none", flavour: "docker" });
    const file = await legacyFile(legacyArchiveEntries(image, ["example/app:1.0", "example/app:latest"]));
    const src = await openDockerArchive(file);
    expect(src.repoTags).toEqual(["example/app:1.0", "example/app:latest"]);
    expect(src.format).toBe("docker-legacy");

    const root = await src.resolve();
    expect(root.mediaType).toBe(MediaType.DockerManifest);
    expect(root.digest).toBe(sha256(root.bytes));
    const m = parseManifest(root.bytes, root.mediaType);
    if (m.kind !== "manifest") throw new Error("expected an image manifest");
    expect(m.config).toEqual({
      mediaType: MediaType.DockerConfig,
      digest: image.config.desc.digest,
      size: image.config.bytes.length,
    });
    expect(m.layers).toEqual(
      image.layers.map((l) => ({ mediaType: MediaType.DockerLayer, digest: l.diffId, size: l.tar.length })),
    );
    expect((await readAll(await src.openBlob(m.config))).equals(image.config.bytes)).toBe(true);
    for (const [i, l] of m.layers.entries()) {
      const bytes = await readAll(await src.openBlob(l));
      expect(sha256(bytes)).toBe(image.layers[i]!.diffId);
    }
    expect(
      (await readAll(await src.openBlob(m.layers[1]!, 100))).equals(image.layers[1]!.tar.subarray(100)),
    ).toBe(true);
    expect((await src.getManifest({ digest: root.digest, mediaType: root.mediaType })).bytes).toBe(
      root.bytes,
    );
  });

  it("hashes compressed layer files and labels them with the compressed media type", async () => {
    const image = await makeImage([L1, L2], { compress: "none", flavour: "docker" });
    const entries = legacyArchiveEntries(image);
    const layerEntry = entries.find((e) => e.name.endsWith("/layer.tar") && e.content)!;
    const gz = gzip(image.layers[0]!.tar);
    layerEntry.content = gz;
    const src = await openDockerArchive(await legacyFile(entries));
    const m = parseManifest((await src.resolve()).bytes);
    if (m.kind !== "manifest") throw new Error("expected an image manifest");
    expect(m.mediaType).toBe(MediaType.DockerManifest);
    expect(m.layers[0]).toEqual({
      mediaType: MediaType.DockerLayerGzip,
      digest: sha256(gz),
      size: gz.length,
    });
    expect(m.layers[1]).toEqual({
      mediaType: MediaType.DockerLayer,
      digest: image.layers[1]!.diffId,
      size: image.layers[1]!.tar.length,
    });
    expect((await readAll(await src.openBlob(m.layers[0]!))).equals(gz)).toBe(true);
  });

  it("synthesises an OCI manifest when a layer is zstd-compressed (Docker schema 2 has no zstd type)", async (ctx) => {
    const zstd = (zlib as unknown as { zstdCompressSync?: (b: Buffer) => Buffer }).zstdCompressSync;
    if (!zstd) ctx.skip();
    const image = await makeImage([L1], { compress: "none", flavour: "docker" });
    const entries = legacyArchiveEntries(image);
    const z = zstd!(image.layers[0]!.tar);
    entries.find((e) => e.name.endsWith("/layer.tar"))!.content = z;
    const src = await openDockerArchive(await legacyFile(entries));
    const m = parseManifest((await src.resolve()).bytes);
    if (m.kind !== "manifest") throw new Error("expected an image manifest");
    expect(m.mediaType).toBe(MediaType.OciManifest);
    expect(m.config.mediaType).toBe(MediaType.OciConfig);
    expect(m.layers[0]).toEqual({ mediaType: MediaType.OciLayerZstd, digest: sha256(z), size: z.length });
  });

  it("chooses an image by RepoTag (exact or normalised) or index", async () => {
    const a = await makeImage([L1], { compress: "none", flavour: "docker" });
    const b = await makeImage([L2], { compress: "none", flavour: "docker" });
    const ea = legacyArchiveEntries(a, ["busybox:latest"]);
    const eb = legacyArchiveEntries(b, ["example/b:2"]);
    const ma = JSON.parse(String(ea.find((e) => e.name === "manifest.json")!.content));
    const mb = JSON.parse(String(eb.find((e) => e.name === "manifest.json")!.content));
    const entries = [
      ...ea.filter((e) => e.name !== "manifest.json"),
      ...eb.filter((e) => e.name !== "manifest.json" && e.name !== "repositories"),
      { name: "manifest.json", content: JSON.stringify([...ma, ...mb]) },
    ];
    const file = await legacyFile(entries);
    const configOf = async (image?: string) => {
      const m = parseManifest(
        (await (await openDockerArchive(file, image ? { image } : {})).resolve()).bytes,
      );
      return m.kind === "manifest" ? m.config.digest : "";
    };
    expect(await configOf()).toBe(a.config.desc.digest);
    expect(await configOf("example/b:2")).toBe(b.config.desc.digest);
    expect(await configOf("docker.io/library/busybox:latest")).toBe(a.config.desc.digest);
    expect(await configOf("1")).toBe(b.config.desc.digest);
    await expect(openDockerArchive(file, { image: "nope:1" })).rejects.toThrow(ImageNotFoundError);
    await expect(openDockerArchive(file, { image: "nope:1" })).rejects.toThrow(
      /busybox:latest, example\/b:2/,
    );
    await expect(openDockerArchive(file, { image: "5" })).rejects.toThrow(/out of range/);
  });
});

describe("openDockerArchive: Docker 25+ OCI layout inside the tar", () => {
  it("serves the original manifest bytes and blobs/", async () => {
    const image = await makeImage([L1, L2], { compress: "none" });
    const file = await legacyFile(ociInTarEntries(image, "docker.io/library/app:1.0"));
    const src = await openDockerArchive(file);
    expect(src.format).toBe("docker-oci");
    expect(src.repoTags).toEqual(["app:1.0"]);
    const root = await src.resolve();
    expect(Buffer.from(root.bytes).equals(image.manifest.bytes)).toBe(true);
    expect(root.digest).toBe(image.manifest.digest);
    expect(root.mediaType).toBe(MediaType.OciManifest);
    for (const l of image.layers)
      expect((await readAll(await src.openBlob(l.desc))).equals(l.bytes)).toBe(true);
  });

  it("reads an oci-archive (layout tar without manifest.json), by ref.name", async () => {
    const image = await makeImage([L1]);
    const file = await legacyFile(ociInTarEntries(image, "docker.io/library/app:1.0", false));
    const src = await openDockerArchive(file, { image: "1.0" });
    expect(src.format).toBe("oci-archive");
    expect((await src.resolve()).digest).toBe(image.manifest.digest);
    await expect(openDockerArchive(file, { image: "2.0" })).rejects.toThrow(ImageNotFoundError);
  });

  it("checks blob sizes against the manifest", async () => {
    const image = await makeImage([L1], { compress: "none" });
    const entries = ociInTarEntries(image);
    const layer = entries.find((e) => e.name === `blobs/sha256/${image.layers[0]!.desc.digest.slice(7)}`)!;
    layer.content = Buffer.concat([Buffer.from(layer.content!), Buffer.alloc(512)]);
    await expect(openDockerArchive(await legacyFile(entries))).rejects.toThrow(
      /has \d+ bytes but the manifest says/,
    );
  });
});

describe("openDockerArchive: broken and hostile archives", () => {
  it("truncated tar", async () => {
    const image = await makeImage([L1, L2], { compress: "none", flavour: "docker" });
    const file = await legacyFile(legacyArchiveEntries(image));
    const { size } = await import("node:fs").then((fs) => fs.statSync(file));
    await truncate(file, Math.floor(size / 2) + 100);
    const err = await openDockerArchive(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveError);
    expect((err as Error).message).toMatch(/truncated tar/);
    expect((err as Error).message).toContain(file);
  });

  it("any truncation point gives an ArchiveError or a complete image, never a crash", async () => {
    const image = await makeImage([L1, L2], { compress: "none", flavour: "docker" });
    const full = await buildTar(legacyArchiveEntries(image));
    const dir = tmpDir("ferry-archive-");
    for (let cut = 0; cut < full.length; cut += cut % 512 === 0 ? 100 : 412) {
      const file = join(dir, `cut-${cut}.tar`);
      await writeFile(file, full.subarray(0, cut));
      const outcome = await openDockerArchive(file).then(
        async (src) => {
          const m = parseManifest((await src.resolve()).bytes);
          if (m.kind !== "manifest") throw new Error("expected an image manifest");
          for (const l of [m.config, ...m.layers]) await readAll(await src.openBlob(l));
          return "ok";
        },
        (e: unknown) => (e instanceof ArchiveError ? "ArchiveError" : e),
      );
      expect(["ok", "ArchiveError"]).toContain(outcome);
    }
  });

  it("missing layer file", async () => {
    const image = await makeImage([L1, L2], { compress: "none", flavour: "docker" });
    const entries = legacyArchiveEntries(image).filter(
      (e) => !(e.name.endsWith("/layer.tar") && e.content && String(e.content).includes("app")),
    );
    const err = await openDockerArchive(await legacyFile(entries)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchiveError);
    expect((err as Error).message).toMatch(/layer 1: ".*\/layer\.tar" is missing from the archive/);
  });

  it("bad manifest.json", async () => {
    const image = await makeImage([L1], { compress: "none", flavour: "docker" });
    const withManifest = (content: string) => [
      ...legacyArchiveEntries(image).filter((e) => e.name !== "manifest.json"),
      { name: "manifest.json", content },
    ];
    await expect(openDockerArchive(await legacyFile(withManifest("{oops")))).rejects.toThrow(
      /manifest\.json is not valid JSON/,
    );
    await expect(openDockerArchive(await legacyFile(withManifest("{}")))).rejects.toThrow(
      /must be a JSON array/,
    );
    await expect(openDockerArchive(await legacyFile(withManifest("[]")))).rejects.toThrow(/lists no images/);
    await expect(openDockerArchive(await legacyFile(withManifest('[{"Layers":[]}]')))).rejects.toThrow(
      /\[0\]: Config must be a file name/,
    );
    await expect(
      openDockerArchive(
        await legacyFile(legacyArchiveEntries(image).filter((e) => e.name !== "manifest.json")),
      ),
    ).rejects.toThrow(/no manifest\.json/);
  });

  it("layer count different from the config's diff_ids", async () => {
    const image = await makeImage([L1, L2], { compress: "none", flavour: "docker" });
    const entries = legacyArchiveEntries(image);
    const mj = entries.find((e) => e.name === "manifest.json")!;
    const parsed = JSON.parse(String(mj.content));
    parsed[0].Layers.pop();
    mj.content = JSON.stringify(parsed);
    await expect(openDockerArchive(await legacyFile(entries))).rejects.toThrow(
      /lists 1 layers but config .* has 2 rootfs.diff_ids/,
    );
  });

  it("path traversal in entry names and symlinks leaving the archive", async () => {
    const image = await makeImage([L1], { compress: "none", flavour: "docker" });
    const traversal = [...legacyArchiveEntries(image), { name: "../../evil", content: "x" }];
    const err = await openDockerArchive(await legacyFile(traversal)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafePathError);
    expect((err as Error).message).toMatch(/"\.\.\/\.\.\/evil" has a "\.\." component/);

    const entries = legacyArchiveEntries(image);
    const layer = entries.find((e) => e.name.endsWith("/layer.tar"))!;
    Object.assign(layer, { type: "symlink", linkname: "../../../etc/passwd", content: undefined });
    await expect(openDockerArchive(await legacyFile(entries))).rejects.toThrow(UnsafePathError);
    Object.assign(layer, { linkname: "/etc/passwd" });
    await expect(openDockerArchive(await legacyFile(entries))).rejects.toThrow(
      /symlink to the absolute path/,
    );
  });

  it("not a tar at all", async () => {
    const dir = tmpDir("ferry-archive-");
    const gz = join(dir, "x.tar.gz");
    await writeFile(gz, gzip(await buildTar([{ name: "manifest.json", content: "[]" }])));
    await expect(openDockerArchive(gz)).rejects.toThrow(/not a tar archive: gzip-compressed/);
    const junk = join(dir, "junk.tar");
    await writeFile(junk, Buffer.alloc(2048, 0x41));
    await expect(openDockerArchive(junk)).rejects.toThrow(/not a tar archive \(bad header checksum/);
    const empty = join(dir, "empty.tar");
    await writeFile(empty, "");
    await expect(openDockerArchive(empty)).rejects.toThrow(/empty file/);
    await expect(openDockerArchive(join(dir, "absent.tar"))).rejects.toThrow(/file not found/);
  });
});

describe("tar index", () => {
  it("reads pax and GNU long names, and ustar prefixes", async () => {
    const long = `${"d".repeat(120)}/${"f".repeat(120)}.txt`;
    const viaPax = await buildTar([
      { name: long, content: "pax" },
      { name: `${"p".repeat(90)}/${"q".repeat(60)}`, content: "prefix" },
    ]);
    const gnuName = `${"g".repeat(150)}/file`;
    const gnuLink = `${"t".repeat(130)}/target`;
    const nameBuf = Buffer.from(`${gnuName}\0`);
    const linkBuf = Buffer.from(`${gnuLink}\0`);
    const data = Buffer.from("gnu data");
    const gnu = Buffer.concat([
      rawTarHeader({ name: "././@LongLink", size: nameBuf.length, typeflag: "L", magic: "gnu" }),
      padded(nameBuf),
      rawTarHeader({ name: gnuName.slice(0, 100), size: data.length, typeflag: "0", magic: "gnu" }),
      padded(data),
      rawTarHeader({ name: "././@LongLink", size: linkBuf.length, typeflag: "K", magic: "gnu" }),
      padded(linkBuf),
      rawTarHeader({ name: "link", size: 0, typeflag: "2", linkname: gnuLink.slice(0, 100), magic: "gnu" }),
    ]);
    const dir = tmpDir("ferry-archive-");
    const file = join(dir, "long.tar");
    await writeFile(file, Buffer.concat([viaPax.subarray(0, viaPax.length - 1024), gnu, Buffer.alloc(1024)]));
    const index = await indexTar(file);
    expect([...index.entries.keys()]).toEqual([long, `${"p".repeat(90)}/${"q".repeat(60)}`, gnuName, "link"]);
    expect(index.entries.get(gnuName)!.size).toBe(data.length);
    expect(index.entries.get("link")!.linkname).toBe(gnuLink);
    const e = index.entries.get(long)!;
    expect((await readFile(file)).subarray(e.offset, e.offset + e.size).toString()).toBe("pax");
  });
});

describe("createDockerArchiveSink", () => {
  it("writes an archive openDockerArchive reads back (compressed layers stay compressed)", async () => {
    const dir = tmpDir("ferry-archive-");
    const file = join(dir, "out.tar");
    const image = await makeImage([L1, L2], { flavour: "docker" });
    const sink = createDockerArchiveSink(file, { repoTags: ["example/app:1.0", "example/app"] });
    expect(sink.acceptsIndex).toBe(false);
    await putImage(sink, image, "2.0"); // blobs concurrently
    expect(existsSync(file)).toBe(false); // only at close
    await sink.close?.();
    expect(await readdir(dir)).toEqual(["out.tar"]);

    const index = await indexTar(file);
    expect([...index.entries.keys()].sort()).toEqual(
      [
        `${image.config.desc.digest.slice(7)}.json`,
        ...image.layers.map((l) => `${l.desc.digest.slice(7)}.tar`),
        "manifest.json",
        "repositories",
      ].sort(),
    );
    const src = await openDockerArchive(file);
    expect(src.repoTags).toEqual(["example/app:1.0", "example/app:2.0"]);
    const m = parseManifest((await src.resolve()).bytes);
    if (m.kind !== "manifest") throw new Error("expected an image manifest");
    expect(m.config.digest).toBe(image.config.desc.digest);
    expect(m.layers).toEqual(image.layers.map((l) => l.desc)); // gzip, same digests
    expect(await sink.tagDigest?.("2.0")).toBe(image.manifest.digest);
  });

  it("refuses an index, a blob that does not match its digest, and closing without an image", async () => {
    const dir = tmpDir("ferry-archive-");
    const image = await makeImage([L1]);
    const indexBytes = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }),
    );
    const s1 = createDockerArchiveSink(join(dir, "a.tar"), { repoTags: ["x:1"] });
    await expect(
      s1.putManifest({ bytes: indexBytes, mediaType: MediaType.OciIndex, digest: sha256(indexBytes) }),
    ).rejects.toThrow(UnsupportedManifestError);
    await expect(s1.close?.()).rejects.toThrow(/no image manifest was written/);

    const s2 = createDockerArchiveSink(join(dir, "b.tar"), { repoTags: ["x:1"] });
    const layer = image.layers[0]!;
    const bad = Buffer.from(layer.bytes);
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
    await expect(s2.putBlob(layer.desc, bufferOpener(bad))).rejects.toMatchObject({
      code: "DIGEST_MISMATCH",
    });
    await expect(s2.putBlob(image.config.desc, bufferOpener(image.config.bytes))).rejects.toMatchObject({
      code: "DIGEST_MISMATCH",
    });
    await expect(s2.close?.()).rejects.toMatchObject({ code: "DIGEST_MISMATCH" });
    expect(await readdir(dir)).toEqual([]);

    expect(() => createDockerArchiveSink(join(dir, "c.tar"), { repoTags: ["Upper:1"] })).toThrow(
      /invalid reference/i,
    );
    expect(() =>
      createDockerArchiveSink(join(dir, "c.tar"), { repoTags: ["x@sha256:" + "0".repeat(64)] }),
    ).toThrow(/cannot carry a digest/);
  });

  it("refuses a manifest whose layers do not match the config's diff_ids count", async () => {
    const dir = tmpDir("ferry-archive-");
    const image = await makeImage([L1, L2]);
    const m = { ...image.manifestJson, layers: [image.layers[0]!.desc] };
    const bytes = Buffer.from(JSON.stringify(m));
    const sink = createDockerArchiveSink(join(dir, "a.tar"), { repoTags: ["x:1"] });
    for (const b of [image.config, image.layers[0]!]) await sink.putBlob(b.desc, bufferOpener(b.bytes));
    await expect(
      sink.putManifest({ bytes, mediaType: MediaType.OciManifest, digest: sha256(bytes) }),
    ).rejects.toThrow(/1 layers but the config lists 2/);
  });
});
