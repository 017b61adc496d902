import { existsSync } from "node:fs";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  ArchiveError,
  BlobNotFoundError,
  createOciLayoutSink,
  ImageNotFoundError,
  openOciLayout,
  REF_NAME_ANNOTATION,
} from "../../../shared/archive/index.ts";
import { sha256 } from "../../../shared/registry/digest.ts";
import { MediaType } from "../../../shared/registry/media-types.ts";
import { bufferOpener, makeImage, putImage, readAll } from "../../fixtures/archive/tar.ts";
import { tmpDir } from "../../helpers/tmp.ts";

const layerA = [
  { name: "etc/", type: "directory" as const },
  { name: "etc/hello", content: "hello\n" },
];
const layerB = [{ name: "bin/tool", content: "#!/bin/sh\necho tool\n", mode: 0o755 }];

describe("OCI image layout", () => {
  it("round-trips an image: sink then source, exact bytes and digests", async () => {
    const dir = join(tmpDir("ferry-archive-"), "layout");
    const image = await makeImage([layerA, layerB]);
    const sink = await createOciLayoutSink(dir);
    await putImage(sink, image, "1.0");
    await sink.close?.();

    expect(JSON.parse(await readFile(join(dir, "oci-layout"), "utf8"))).toEqual({
      imageLayoutVersion: "1.0.0",
    });
    const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8"));
    expect(index.manifests).toEqual([
      {
        ...{
          mediaType: MediaType.OciManifest,
          digest: image.manifest.digest,
          size: image.manifest.bytes.length,
        },
        annotations: { [REF_NAME_ANNOTATION]: "1.0" },
      },
    ]);

    const src = await openOciLayout(dir, "1.0");
    const root = await src.resolve();
    expect(Buffer.from(root.bytes).equals(image.manifest.bytes)).toBe(true);
    expect(root.digest).toBe(image.manifest.digest);
    expect(root.mediaType).toBe(MediaType.OciManifest);
    for (const blob of [image.config, ...image.layers]) {
      const bytes = await readAll(await src.openBlob(blob.desc));
      expect(bytes.equals(blob.bytes)).toBe(true);
      expect(sha256(bytes)).toBe(blob.desc.digest);
      expect((await readFile(join(dir, "blobs/sha256", blob.desc.digest.slice(7)))).equals(blob.bytes)).toBe(
        true,
      );
    }
    // a ranged read from an offset
    const layer = image.layers[0]!;
    const tail = await readAll(await src.openBlob(layer.desc, 10));
    expect(tail.equals(layer.bytes.subarray(10))).toBe(true);
    // default ref: the only manifest
    expect((await (await openOciLayout(dir)).resolve()).digest).toBe(image.manifest.digest);
    // by digest
    expect((await (await openOciLayout(dir, image.manifest.digest)).resolve()).digest).toBe(
      image.manifest.digest,
    );
  });

  it("skips blobs already present and reports what it did", async () => {
    const dir = join(tmpDir("ferry-archive-"), "layout");
    const image = await makeImage([layerA]);
    const sink = await createOciLayoutSink(dir);
    const first = await sink.putBlob(image.layers[0]!.desc, bufferOpener(image.layers[0]!.bytes));
    expect(first).toEqual({ action: "uploaded", bytesSent: image.layers[0]!.bytes.length });
    expect(await sink.hasBlob(image.layers[0]!.desc)).toBe(true);
    const again = await sink.putBlob(image.layers[0]!.desc, async () => {
      throw new Error("must not be opened");
    });
    expect(again).toEqual({ action: "skipped", bytesSent: 0 });
  });

  it("rejects a blob whose bytes do not match its digest and leaves nothing under its name", async () => {
    const dir = join(tmpDir("ferry-archive-"), "layout");
    const sink = await createOciLayoutSink(dir);
    const good = Buffer.from("the real content");
    const desc = { mediaType: MediaType.OciLayer, digest: sha256(good), size: good.length };
    const evil = Buffer.from("the fake content"); // same length, other bytes
    await expect(sink.putBlob(desc, bufferOpener(evil))).rejects.toMatchObject({ code: "DIGEST_MISMATCH" });
    expect(existsSync(join(dir, "blobs/sha256", desc.digest.slice(7)))).toBe(false);
    expect(await sink.hasBlob(desc)).toBe(false);
    // too long: refused as soon as it goes over
    await expect(sink.putBlob(desc, bufferOpener(Buffer.concat([good, good])))).rejects.toMatchObject({
      code: "SIZE_MISMATCH",
    });
    // no temporary files left either (index.json and oci-layout come with close())
    expect((await readdir(dir)).sort()).toEqual(["blobs"]);
    await expect(sink.putBlob(desc, bufferOpener(good))).resolves.toMatchObject({ action: "uploaded" });
  });

  it("resumes a blob from the offset reached when the source breaks", async () => {
    const dir = join(tmpDir("ferry-archive-"), "layout");
    const sink = await createOciLayoutSink(dir);
    const data = Buffer.alloc(200_000, 7);
    const desc = { mediaType: MediaType.OciLayer, digest: sha256(data), size: data.length };
    const offsets: number[] = [];
    const open = async (offset: number) => {
      offsets.push(offset);
      if (offsets.length === 1) {
        return new Readable({
          read() {
            this.push(data.subarray(0, 50_000));
            this.destroy(Object.assign(new Error("connection reset"), { code: "ECONNRESET" }));
          },
        });
      }
      return Readable.from([data.subarray(offset)]);
    };
    const res = await sink.putBlob(desc, open);
    expect(offsets).toEqual([0, 50_000]);
    expect(res.action).toBe("uploaded");
    expect(sha256(await readFile(join(dir, "blobs/sha256", desc.digest.slice(7))))).toBe(desc.digest);
  });

  it("records only the root of a multi-platform image in index.json and replaces a retagged entry", async () => {
    const dir = join(tmpDir("ferry-archive-"), "layout");
    const amd = await makeImage([layerA], { architecture: "amd64" });
    const arm = await makeImage([layerB], { architecture: "arm64" });
    const sink = await createOciLayoutSink(dir);
    await putImage(sink, amd);
    await putImage(sink, arm);
    const indexBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [
          {
            ...{
              mediaType: MediaType.OciManifest,
              digest: amd.manifest.digest,
              size: amd.manifest.bytes.length,
            },
            platform: { os: "linux", architecture: "amd64" },
          },
          {
            ...{
              mediaType: MediaType.OciManifest,
              digest: arm.manifest.digest,
              size: arm.manifest.bytes.length,
            },
            platform: { os: "linux", architecture: "arm64" },
          },
        ],
      }),
    );
    const index = { bytes: indexBytes, mediaType: MediaType.OciIndex, digest: sha256(indexBytes) };
    await sink.putManifest(index, "multi");
    await sink.putManifest(amd.manifest, "single");
    await sink.putManifest(arm.manifest, "single"); // retag: replaces
    await sink.close?.();
    const listed = JSON.parse(await readFile(join(dir, "index.json"), "utf8")).manifests as {
      digest: string;
      annotations?: Record<string, string>;
    }[];
    expect(listed.map((d) => [d.digest, d.annotations?.[REF_NAME_ANNOTATION]])).toEqual([
      [index.digest, "multi"],
      [arm.manifest.digest, "single"],
    ]);
    expect(await sink.tagDigest?.("single")).toBe(arm.manifest.digest);

    const src = await openOciLayout(dir, "multi");
    expect((await src.resolve()).mediaType).toBe(MediaType.OciIndex);
    const child = await src.getManifest({ digest: amd.manifest.digest, mediaType: MediaType.OciManifest });
    expect(Buffer.from(child.bytes).equals(amd.manifest.bytes)).toBe(true);
    // two entries: a default ref is ambiguous
    await expect(openOciLayout(dir)).rejects.toThrow(ArchiveError);
    await expect(openOciLayout(dir)).rejects.toThrow(/multi, single/);
    await expect(openOciLayout(dir, "nope")).rejects.toThrow(ImageNotFoundError);
  });

  it("lists an untagged root manifest in index.json", async () => {
    const dir = join(tmpDir("ferry-archive-"), "layout");
    const image = await makeImage([layerA]);
    const sink = await createOciLayoutSink(dir);
    await putImage(sink, image);
    await sink.close?.();
    const listed = JSON.parse(await readFile(join(dir, "index.json"), "utf8")).manifests;
    expect(listed).toEqual([
      { mediaType: MediaType.OciManifest, digest: image.manifest.digest, size: image.manifest.bytes.length },
    ]);
  });

  it("stores a blob whose digest is known only at the end", async () => {
    const dir = join(tmpDir("ferry-archive-"), "layout");
    const sink = await createOciLayoutSink(dir);
    const data = Buffer.from("streamed content of unknown digest");
    const desc = await sink.putBlobStream!(MediaType.OciLayerGzip, Readable.from([data]));
    expect(desc).toEqual({ mediaType: MediaType.OciLayerGzip, digest: sha256(data), size: data.length });
    expect(await sink.hasBlob(desc)).toBe(true);
  });

  it("gives clear errors for broken layouts", async () => {
    const dir = tmpDir("ferry-archive-");
    await expect(openOciLayout(dir)).rejects.toThrow(/not an OCI image layout/);
    await writeFile(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
    await expect(openOciLayout(dir)).rejects.toThrow(/index\.json: missing/);
    await writeFile(join(dir, "index.json"), "{not json");
    await expect(openOciLayout(dir)).rejects.toThrow(/index\.json: not valid JSON/);
    const image = await makeImage([layerA]);
    await writeFile(
      join(dir, "index.json"),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: MediaType.OciManifest,
            digest: image.manifest.digest,
            size: image.manifest.bytes.length,
          },
        ],
      }),
    );
    const src = await openOciLayout(dir);
    await expect(src.resolve()).rejects.toThrow(BlobNotFoundError);
    await expect(src.openBlob(image.layers[0]!.desc)).rejects.toThrow(BlobNotFoundError);
    // a digest cannot name a path outside blobs/
    await expect(
      src.openBlob({ mediaType: MediaType.OciLayer, digest: "sha256:../../etc/passwd", size: 1 }),
    ).rejects.toMatchObject({
      code: "INVALID_REFERENCE",
    });
  });
});

/** Every file under `dir` with its sha256: a layout's state, to compare before and after. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of (await readdir(dir, { recursive: true })).sort()) {
    const path = join(dir, rel);
    if ((await stat(path)).isFile()) out[rel] = sha256(await readFile(path));
  }
  return out;
}

describe("OCI image layout sink: all or nothing", () => {
  it("a sink that aborts leaves no trace of a new layout, not even the directory", async () => {
    const parent = tmpDir("ferry-archive-");
    const dir = join(parent, "new", "layout");
    const image = await makeImage([layerA, layerB]);
    const sink = await createOciLayoutSink(dir);
    await putImage(sink, image, "1.0");
    expect(await sink.tagDigest?.("1.0")).toBe(image.manifest.digest);
    expect(Object.keys(await snapshot(dir)).length).toBe(4); // config, 2 layers, manifest
    await sink.abort();
    expect(await readdir(parent)).toEqual([]);
  });

  it("a sink that aborts leaves an existing layout byte for byte as it was", async () => {
    const dir = join(tmpDir("ferry-archive-"), "layout");
    const first = await makeImage([layerA]);
    const sink1 = await createOciLayoutSink(dir);
    await putImage(sink1, first, "1.0");
    await sink1.close?.();
    const before = await snapshot(dir);

    const second = await makeImage([layerA, layerB]);
    expect(second.layers[0]!.desc.digest).toBe(first.layers[0]!.desc.digest); // one blob shared
    const sink2 = await createOciLayoutSink(dir);
    await putImage(sink2, second, "1.0"); // would move the tag
    expect(Object.keys(await snapshot(dir)).length).toBeGreaterThan(Object.keys(before).length);
    await sink2.abort();
    expect(await snapshot(dir)).toEqual(before);
    expect((await (await openOciLayout(dir, "1.0")).resolve()).digest).toBe(first.manifest.digest);
  });

  it("sinks of one run on one layout: a failed one keeps the blobs a committed one needs; tags merge", async () => {
    const dir = join(tmpDir("ferry-archive-"), "layout");
    const kept = await makeImage([layerA], { architecture: "amd64" });
    const failed = await makeImage([layerA, layerB], { architecture: "arm64" });
    const other = await makeImage([layerB], { architecture: "s390x" });
    const a = await createOciLayoutSink(dir);
    const b = await createOciLayoutSink(dir);
    const c = await createOciLayoutSink(dir);
    // `failed` writes layerA and layerB first; `kept` finds layerA there (skipped), `other` layerB
    await putImage(a, failed, "f");
    expect(await b.putBlob(kept.layers[0]!.desc, bufferOpener(kept.layers[0]!.bytes))).toMatchObject({
      action: "skipped",
    });
    await putImage(b, kept, "k");
    await putImage(c, other, "o");
    await a.abort(); // fails first, while the others are still open
    await c.close?.();
    await b.close?.();

    const listed = JSON.parse(await readFile(join(dir, "index.json"), "utf8")).manifests as {
      digest: string;
      annotations: Record<string, string>;
    }[];
    expect(listed.map((d) => [d.annotations[REF_NAME_ANNOTATION], d.digest])).toEqual([
      ["o", other.manifest.digest],
      ["k", kept.manifest.digest],
    ]);
    for (const [tag, image] of [
      ["k", kept],
      ["o", other],
    ] as const) {
      const src = await openOciLayout(dir, tag);
      for (const blob of [image.config, ...image.layers])
        expect((await readAll(await src.openBlob(blob.desc))).equals(blob.bytes)).toBe(true);
    }
    // what only the failed image needed is gone
    const blobs = Object.keys(await snapshot(dir)).filter((f) => f.startsWith("blobs/"));
    for (const d of [failed.manifest.digest, failed.config.desc.digest])
      expect(blobs).not.toContain(`blobs/sha256/${d.slice(7)}`);
    expect(blobs).toHaveLength(6); // kept and other: a manifest and a config each; layerA, layerB
  });
});
