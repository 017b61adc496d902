/** Builds small OCI image layouts on disk for the skopeo interop tests (no other tooling needed). */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";
import { bytes, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, sha256 } from "./helpers.ts";

export const OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}

/** A tar with the given files (fixed mtime, so the bytes are reproducible). */
export async function makeTar(files: Record<string, Buffer | string>): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((resolve, reject) => {
    p.on("end", resolve);
    p.on("error", reject);
  });
  for (const [name, content] of Object.entries(files)) {
    await new Promise<void>((resolve, reject) => {
      p.entry({ name, mtime: new Date(0), mode: 0o644, uid: 0, gid: 0 }, content, (err) =>
        err ? reject(err) : resolve(),
      );
    });
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

export class LayoutBuilder {
  readonly dir: string;
  private readonly refs: Descriptor[] = [];

  constructor(dir: string) {
    this.dir = dir;
  }

  async blob(data: Buffer): Promise<string> {
    const digest = sha256(data);
    await mkdir(join(this.dir, "blobs", "sha256"), { recursive: true });
    await writeFile(join(this.dir, "blobs", "sha256", digest.slice(7)), data);
    return digest;
  }

  /** Writes config + layers + manifest; returns the manifest descriptor and bytes. */
  async image(opts: {
    arch?: string;
    layers: { files: Record<string, Buffer | string>; gzip: boolean }[];
  }): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
    const layerDescriptors: Descriptor[] = [];
    const diffIds: string[] = [];
    for (const layer of opts.layers) {
      const tar = await makeTar(layer.files);
      diffIds.push(sha256(tar));
      const data = layer.gzip ? gzipSync(tar, { level: 1 }) : tar;
      layerDescriptors.push({
        mediaType: layer.gzip ? OCI_LAYER_GZIP : OCI_LAYER_TAR,
        digest: await this.blob(data),
        size: data.length,
      });
    }
    const architecture = opts.arch ?? "amd64";
    const config = Buffer.from(
      JSON.stringify({
        architecture,
        os: "linux",
        config: { Cmd: ["/bin/true"] },
        rootfs: { type: "layers", diff_ids: diffIds },
      }),
    );
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: await this.blob(config), size: config.length },
        layers: layerDescriptors,
      }),
    );
    const descriptor: Descriptor = {
      mediaType: OCI_MANIFEST,
      digest: await this.blob(manifest),
      size: manifest.length,
      platform: { architecture, os: "linux" },
    };
    return { descriptor, bytes: manifest };
  }

  /** Writes an index over the given manifests; returns its descriptor and bytes. */
  async index(children: Descriptor[]): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
    const index = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children }),
    );
    return {
      descriptor: { mediaType: OCI_INDEX, digest: await this.blob(index), size: index.length },
      bytes: index,
    };
  }

  /** Names a manifest or index `tag` in index.json. */
  tag(descriptor: Descriptor, tag: string): void {
    const { platform: _platform, ...rest } = descriptor;
    this.refs.push({ ...rest, annotations: { "org.opencontainers.image.ref.name": tag } });
  }

  async write(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFile(join(this.dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await writeFile(join(this.dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: this.refs }));
  }
}

/** The descriptor index.json gives for `tag`. */
export async function readLayoutRef(dir: string, tag: string): Promise<Descriptor | undefined> {
  const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as { manifests: Descriptor[] };
  return index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === tag);
}

/** Pseudo-random file content of `size` bytes. */
export function noise(size: number, seed: number): Buffer {
  return bytes(size, seed);
}
