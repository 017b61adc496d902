/**
 * Writing a docker-archive (reading, and the format, are docker-archive.ts's): the legacy layout
 * (`<hex>.json`, `<hex>.tar`, `manifest.json`, `repositories`), which `docker load` (all versions) and
 * skopeo read. Layers are stored as they come: compressed layers stay compressed (docker load and skopeo
 * decompress them and check the config's diff_ids).
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { resolve as resolvePath } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { type Digest, digestHex, parseDigest } from "../registry/digest.ts";
import { InvalidReferenceError } from "../registry/errors.ts";
import {
  type Descriptor,
  MAX_MANIFEST_BYTES,
  parseManifest,
  type RawManifest,
} from "../registry/manifest.ts";
import { MediaType } from "../registry/media-types.ts";
import { parseReference } from "../registry/reference.ts";
import type { BlobPutOptions, BlobPutResult, ImageSink } from "../transfer/types.ts";
import { type DockerArchiveManifestEntry, parseDiffIds } from "./docker-archive.ts";
import { ArchiveError, UnsupportedManifestError } from "./errors.ts";
import { openFileRange, pumpVerified, removeAtExit, spoolHashed, tempNameFor } from "./io.ts";
import { checkManifestBytes } from "./oci-layout.ts";
import { addEntry, type EntryHeader, openEntry } from "./tar-pack.ts";

export interface DockerArchiveSinkOptions {
  /**
   * RepoTags recorded in manifest.json (`repo:tag`, familiar form such as `busybox:latest`). A name
   * without a tag gets the tag passed to putManifest (or `latest`).
   */
  repoTags: string[];
}

const CONFIG_TYPES = new Set<string>([MediaType.DockerConfig, MediaType.OciConfig]);

/** A blob written to the tar: its entry name, size and (a config's) bytes, kept to check the manifest. */
interface Stored {
  path: string;
  size: number;
  config?: Buffer;
}

/** Writes one image as a docker-archive tar at `file` (see DockerArchiveSink). */
export function createDockerArchiveSink(file: string, opts: DockerArchiveSinkOptions): DockerArchiveSink {
  return new DockerArchiveSink(file, opts);
}

/**
 * Writes one image as a docker-archive tar loadable by `docker load` and skopeo. Blobs may be put
 * concurrently: each is written as one tar entry, in turn (the next source is opened only when the
 * previous entry is complete). The tar goes to a temporary file next to `file`, renamed into place by
 * close() once manifest.json is written; after any failure (a digest mismatch cannot be taken back
 * out of a tar stream) the sink refuses further work and close() removes the partial file.
 */
export class DockerArchiveSink implements ImageSink {
  readonly name: string;
  /** The archive's absolute path. */
  readonly file: string;
  readonly acceptsIndex = false;
  private readonly repoTags: readonly string[];
  private readonly tmp: string;
  private readonly pack: tar.Pack;
  private readonly out: WriteStream;
  /** Settles once the tar has gone to `tmp` whole, or failed. */
  private readonly written: Promise<void>;
  /** The first failure; the sink takes no more work after it. */
  private failed: Error | undefined;
  private readonly stored = new Map<Digest, Stored>();
  private readonly inflight = new Map<Digest, Promise<number>>();
  /** The tail of the entries being written, one after the other. */
  private queue: Promise<unknown> = Promise.resolve();
  private image: { digest: Digest; config: string; layers: string[]; tags: string[] } | undefined;
  private state: "open" | "closing" | "closed" = "open";

  constructor(file: string, opts: DockerArchiveSinkOptions) {
    this.file = resolvePath(file);
    this.name = `docker-archive:${file}`;
    for (const t of opts.repoTags) checkRepoTag(t);
    this.repoTags = opts.repoTags;

    this.tmp = tempNameFor(this.file, "archive");
    this.pack = tar.pack();
    this.out = createWriteStream(this.tmp, { flags: "wx", mode: 0o644 });
    this.written = pipeline(this.pack as unknown as Readable, this.out);
    removeAtExit(this.tmp, true);
    this.written.catch((err: Error & { code?: string }) => {
      this.failed ??= err.code?.startsWith("E")
        ? new ArchiveError(`${this.name}: cannot write the archive (${err.message})`, { cause: err })
        : err;
    });
  }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    return this.stored.has(desc.digest);
  }

  async putBlob(
    desc: Descriptor,
    openSource: (offset: number) => Promise<Readable>,
    opts: BlobPutOptions = {},
  ): Promise<BlobPutResult> {
    const { progress } = opts;
    this.check();
    parseDigest(desc.digest);
    if (!Number.isSafeInteger(desc.size) || desc.size < 0) {
      throw new ArchiveError(`${this.name}: blob ${desc.digest} has no size; a tar header needs it`);
    }
    if (this.stored.has(desc.digest)) return { action: "skipped", bytesSent: 0 };
    const pending = this.inflight.get(desc.digest);
    if (pending) {
      await pending;
      return { action: "skipped", bytesSent: 0 };
    }
    const ext = CONFIG_TYPES.has(desc.mediaType) || /json$/.test(desc.mediaType) ? "json" : "tar";
    const path = `${digestHex(desc.digest)}.${ext}`;
    const run = this.queue.then(async () => {
      const n = await this.writeEntry(desc, path, openSource, progress, opts.source);
      if (!this.stored.has(desc.digest)) this.stored.set(desc.digest, { path, size: desc.size });
      return n;
    });
    this.queue = run.catch(() => {});
    this.inflight.set(desc.digest, run);
    try {
      return { action: "uploaded", bytesSent: await run };
    } finally {
      this.inflight.delete(desc.digest);
    }
  }

  async putBlobStream(
    mediaType: string,
    stream: Readable,
    progress?: (bytes: number) => void,
  ): Promise<Descriptor> {
    this.check();
    // a tar header needs the size first: spool to a file beside the archive (disk, not memory)
    const spool = tempNameFor(this.file, "spool");
    try {
      const { digest, size } = await spoolHashed(stream, spool, progress);
      const desc: Descriptor = { mediaType, digest, size };
      await this.putBlob(desc, async (offset) =>
        openFileRange(spool, offset, size - offset, `${this.name}: spooled blob`),
      );
      return desc;
    } finally {
      await rm(spool, { force: true });
    }
  }

  async tagDigest(tag: string): Promise<Digest | undefined> {
    const image = this.image;
    if (!image) return undefined;
    const hit = image.tags.some((t) => t === tag || splitRepoTag(t).tag === tag);
    return hit ? image.digest : undefined;
  }

  async putManifest(m: RawManifest, tag?: string): Promise<void> {
    this.check();
    const what = `${this.name}: manifest ${m.digest}`;
    checkManifestBytes(m.bytes, { digest: m.digest }, what);
    const parsed = parseManifest(m.bytes, m.mediaType, what);
    if (parsed.kind === "index") {
      throw new UnsupportedManifestError(
        `${what}: a docker-archive holds a single-platform image, not an index (${parsed.manifests.length} manifests): select a platform first`,
      );
    }
    if (parsed.kind === "schema1")
      throw new UnsupportedManifestError(`${what}: schema 1 manifests cannot be written to a docker-archive`);
    await this.queue;
    this.check();
    const need = (d: Descriptor, role: string): Stored => {
      const s = this.stored.get(d.digest);
      if (!s)
        throw new ArchiveError(
          `${what}: ${role} ${d.digest} was not written to the archive before the manifest`,
        );
      return s;
    };
    const config = need(parsed.config, "config");
    const layers = parsed.layers.map((l, i) => need(l, `layer ${i}`).path);
    if (config.config) {
      const diffIds = parseDiffIds(config.config, `${what}: config ${parsed.config.digest}`);
      if (diffIds.length !== layers.length) {
        throw new ArchiveError(
          `${what}: ${layers.length} layers but the config lists ${diffIds.length} rootfs.diff_ids`,
        );
      }
    }
    const tags = this.repoTags.map((t) =>
      splitRepoTag(t).tag === undefined ? `${t}:${tag ?? "latest"}` : t,
    );
    if (this.image && this.image.digest !== m.digest) {
      throw new UnsupportedManifestError(
        `${what}: this docker-archive already holds image ${this.image.digest}; it takes one image`,
      );
    }
    this.image = { digest: m.digest, config: config.path, layers, tags };
  }

  async close(): Promise<void> {
    if (this.state === "closed") return;
    if (this.state === "closing") throw new ArchiveError(`${this.name}: close() called twice`);
    this.state = "closing";
    await this.queue;
    try {
      if (this.failed) throw this.failed;
      if (!this.image) throw new ArchiveError(`${this.name}: no image manifest was written; nothing to save`);
      const { manifestJson, repositories } = archiveIndex(this.image);
      await addEntry(this.pack, smallFile("manifest.json"), `${JSON.stringify(manifestJson)}\n`);
      await addEntry(this.pack, smallFile("repositories"), `${JSON.stringify(repositories)}\n`);
      this.pack.finalize();
      await this.written;
      if (this.failed) throw this.failed;
      await rename(this.tmp, this.file);
      removeAtExit(this.tmp, false);
      this.state = "closed";
    } catch (err) {
      this.state = "closed";
      await this.abort(err as Error);
      throw err;
    }
  }

  /** Gives up: stops writing and removes the partial file (close() after a failure does the same). */
  async abort(reason?: Error): Promise<void> {
    this.state = "closed";
    this.failed ??= reason ?? new ArchiveError(`${this.name}: aborted`);
    this.pack.destroy(this.failed);
    this.out.destroy();
    await this.written.catch(() => {});
    await rm(this.tmp, { force: true });
    removeAtExit(this.tmp, false);
  }

  private fail(err: Error): void {
    this.failed ??= err;
    this.pack.destroy(this.failed);
  }

  private check(): void {
    if (this.failed) throw this.failed;
    if (this.state !== "open") throw new ArchiveError(`${this.name}: the archive is already closed`);
  }

  /** Streams one blob, verified, into its tar entry; a config's bytes are kept to check the manifest. */
  private async writeEntry(
    desc: Descriptor,
    path: string,
    openSource: (offset: number) => Promise<Readable>,
    progress: ((n: number) => void) | undefined,
    source = "the source",
  ): Promise<number> {
    this.check();
    const keep = CONFIG_TYPES.has(desc.mediaType) && desc.size <= MAX_MANIFEST_BYTES;
    const chunks: Buffer[] = [];
    const dest = openEntry(this.pack, {
      name: path,
      size: desc.size,
      mode: 0o644,
      mtime: new Date(0),
      type: "file",
    });
    try {
      return await pumpVerified(desc, openSource, dest, {
        what: `blob ${desc.digest} read from ${source} for ${this.name}`,
        progress: (n) => progress?.(n),
        onChunk: keep ? (c) => chunks.push(c) : undefined,
      });
    } catch (err) {
      this.fail(err as Error);
      throw err;
    } finally {
      if (keep && !this.failed)
        this.stored.set(desc.digest, { path, size: desc.size, config: Buffer.concat(chunks) });
    }
  }
}

/** manifest.json and the `repositories` file (repository → tag → top layer id) for the image written. */
function archiveIndex(image: { config: string; layers: string[]; tags: string[] }): {
  manifestJson: DockerArchiveManifestEntry[];
  repositories: Record<string, Record<string, string>>;
} {
  const manifestJson: DockerArchiveManifestEntry[] = [
    { Config: image.config, RepoTags: image.tags, Layers: image.layers },
  ];
  const repositories: Record<string, Record<string, string>> = {};
  const top = image.layers.at(-1)?.replace(/\.tar$/, "");
  if (top) {
    for (const t of image.tags) {
      const { repo, tag } = splitRepoTag(t);
      repositories[repo] = { ...repositories[repo], [tag ?? "latest"]: top };
    }
  }
  return { manifestJson, repositories };
}

const smallFile = (name: string): EntryHeader => ({ name, mode: 0o644, mtime: new Date(0) });

function splitRepoTag(repoTag: string): { repo: string; tag: string | undefined } {
  const slash = repoTag.lastIndexOf("/");
  const colon = repoTag.lastIndexOf(":");
  if (colon > slash) return { repo: repoTag.slice(0, colon), tag: repoTag.slice(colon + 1) };
  return { repo: repoTag, tag: undefined };
}

function checkRepoTag(repoTag: string): void {
  if (repoTag.includes("@"))
    throw new InvalidReferenceError(`docker-archive RepoTag "${repoTag}" cannot carry a digest`);
  parseReference(repoTag); // throws InvalidReferenceError with the reason
}
