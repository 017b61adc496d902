/**
 * Sample images for the demo, the tests and the benchmarks: real layers (gzip'd tars with files) and
 * large pseudo-random blobs generated on the fly from a seed (AES-CTR keystream, seekable), so a
 * 1 GiB layer is never held in memory or written to disk.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { sha256 } from "../registry/digest.ts";
import type { Descriptor, Platform, RawManifest } from "../registry/manifest.ts";
import { MediaType } from "../registry/media-types.ts";
import type { ImageSink } from "../transfer/types.ts";
import { seededStream } from "./seeded.ts";

export interface SampleBlob {
  desc: Descriptor;
  open(offset: number): Promise<Readable>;
}

/** A pseudo-random blob of `size` bytes; its digest is computed by streaming it once. */
export async function seededBlob(
  seed: string,
  size: number,
  mediaType: string = MediaType.OciLayer,
): Promise<SampleBlob> {
  const hash = createHash("sha256");
  for await (const chunk of seededStream(seed, size)) hash.update(chunk as Buffer);
  return {
    desc: { mediaType, digest: `sha256:${hash.digest("hex")}`, size },
    open: async (offset) => seededStream(seed, size, offset),
  };
}

/** A small in-memory blob. */
export function bytesBlob(bytes: Buffer, mediaType: string): SampleBlob {
  return {
    desc: { mediaType, digest: sha256(bytes), size: bytes.length },
    open: async (offset) => Readable.from([bytes.subarray(offset)]),
  };
}

export interface TarEntry {
  name: string;
  content?: string | Buffer;
  type?: "file" | "directory" | "symlink" | "link";
  linkname?: string;
  mode?: number;
}

/** A tar of `entries`, gzip'd; returns both so the config can carry the uncompressed diff_id. */
export async function tarLayer(
  entries: TarEntry[],
  gzip = true,
): Promise<{ blob: SampleBlob; diffId: string }> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  for (const e of entries) {
    const type = e.type ?? "file";
    const content = typeof e.content === "string" ? Buffer.from(e.content) : e.content;
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === "directory" ? 0o755 : 0o644),
      mtime: new Date(0),
      ...(e.linkname ? { linkname: e.linkname } : {}),
    };
    if (type === "file") pack.entry({ ...header, size: content?.length ?? 0 }, content ?? Buffer.alloc(0));
    else pack.entry(header);
  }
  pack.finalize();
  await done;
  const raw = Buffer.concat(chunks);
  const diffId = sha256(raw);
  const bytes = gzip ? gzipSync(raw, { level: 6 }) : raw;
  return { blob: bytesBlob(bytes, gzip ? MediaType.OciLayerGzip : MediaType.OciLayer), diffId };
}

export interface SampleImage {
  config: SampleBlob;
  layers: SampleBlob[];
  manifest: RawManifest;
  platform: Platform;
}

/** An OCI image manifest over the given layers, with a config naming their diff_ids. */
export function imageOf(
  layers: { blob: SampleBlob; diffId: string }[],
  platform: Platform,
  mediaType: string = MediaType.OciManifest,
): SampleImage {
  const docker = mediaType === MediaType.DockerManifest;
  const config = Buffer.from(
    JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      created: "2026-01-01T00:00:00Z",
      config: { Cmd: ["/bin/sh"], Env: ["PATH=/usr/bin:/bin"] },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created: "2026-01-01T00:00:00Z", created_by: "ferry sample" })),
    }),
  );
  const configBlob = bytesBlob(config, docker ? MediaType.DockerConfig : MediaType.OciConfig);
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: configBlob.desc,
      layers: layers.map((l) => l.blob.desc),
    }),
  );
  return {
    config: configBlob,
    layers: layers.map((l) => l.blob),
    manifest: { bytes, mediaType, digest: sha256(bytes) },
    platform,
  };
}

/** An OCI index over images. */
export function indexOf(images: SampleImage[]): RawManifest {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: images.map((i) => ({
        mediaType: i.manifest.mediaType,
        digest: i.manifest.digest,
        size: i.manifest.bytes.length,
        platform: i.platform,
      })),
    }),
  );
  return { bytes, mediaType: MediaType.OciIndex, digest: sha256(bytes) };
}

/** The demo's multi-platform image: a shared base layer plus one small layer per platform. */
export async function sampleMultiPlatform(
  name = "ferry-sample",
): Promise<{ images: SampleImage[]; index: RawManifest }> {
  const base = await tarLayer([
    { name: "etc/", type: "directory" },
    { name: "etc/os-release", content: `NAME="${name}"\nID=ferry\n` },
    { name: "bin/", type: "directory" },
    { name: "bin/hello", content: "#!/bin/sh\necho hello from ferry\n", mode: 0o755 },
    { name: "tmp/", type: "directory" },
    { name: "tmp/scratch.txt", content: "removed by the next layer\n" },
  ]);
  const images: SampleImage[] = [];
  for (const platform of [
    { os: "linux", architecture: "amd64" },
    { os: "linux", architecture: "arm64", variant: "v8" },
  ] as Platform[]) {
    const top = await tarLayer([
      { name: "etc/arch", content: `${platform.architecture}\n` },
      { name: "tmp/.wh.scratch.txt", content: "" },
      { name: "usr/", type: "directory" },
      { name: "usr/share/", type: "directory" },
      { name: "usr/share/ferry.txt", content: `${name} for ${platform.os}/${platform.architecture}\n` },
      { name: "bin/hi", type: "symlink", linkname: "hello" },
    ]);
    images.push(imageOf([base, top], platform));
  }
  return { images, index: indexOf(images) };
}

/** Writes sample images (and an index, if given) to a sink, blobs first. */
export async function writeSample(
  sink: ImageSink,
  images: SampleImage[],
  index: RawManifest | undefined,
  tag: string,
): Promise<void> {
  const seen = new Set<string>();
  for (const img of images) {
    for (const b of [img.config, ...img.layers]) {
      if (seen.has(b.desc.digest)) continue;
      seen.add(b.desc.digest);
      if (!(await sink.hasBlob(b.desc))) await sink.putBlob(b.desc, b.open);
    }
  }
  if (index) {
    for (const img of images) await sink.putManifest(img.manifest);
    await sink.putManifest(index, tag);
  } else {
    for (const img of images) await sink.putManifest(img.manifest, tag);
  }
  await sink.close?.();
}
