/**
 * docker-archive: the tar written by `docker save` and read by `docker load`.
 *
 * Reading handles both layouts `docker save` has produced:
 * - legacy (Docker < 25): `manifest.json` = `[{Config, RepoTags, Layers}]`, the config as
 *   `<hex>.json`, layers as `<id>/layer.tar` (duplicates as symlinks), no image manifest at all: one
 *   is synthesised (Docker schema 2) from the config and the layer files;
 * - OCI (Docker 25+): an OCI image layout inside the tar (`oci-layout`, `index.json`,
 *   `blobs/sha256/…`) plus a `manifest.json` whose paths point into `blobs/`: the original manifest
 *   bytes are served. A plain `oci-archive` (a layout tar without manifest.json) is read too.
 * The tar is never extracted: its headers are indexed once and entries are read in place.
 *
 * Writing produces the legacy layout (`<hex>.json`, `<hex>.tar`, `manifest.json`, `repositories`),
 * which `docker load` (all versions) and skopeo read. Layers are stored as they come: compressed
 * layers stay compressed (docker load and skopeo decompress them and check the config's diff_ids).
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { resolve as resolvePath } from "node:path";
import { type Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { type Digest, digestHex, isDigest, parseDigest, sha256 } from "../registry/digest.ts";
import { InvalidReferenceError, SizeMismatchError } from "../registry/errors.ts";
import {
  type Descriptor,
  MAX_MANIFEST_BYTES,
  parseManifest,
  type RawManifest,
} from "../registry/manifest.ts";
import { isIndexType, MediaType } from "../registry/media-types.ts";
import { parseReference } from "../registry/reference.ts";
import type { ImageSink, ImageSource } from "../transfer/types.ts";
import { type Compression, detectCompression, layerMediaType } from "./compression.ts";
import { ArchiveError, BlobNotFoundError, ImageNotFoundError, UnsupportedManifestError } from "./errors.ts";
import { isObject, openFileRange, pumpVerified, removeAtExit, spoolHashed, tempNameFor } from "./io.ts";
import {
  blobRelPath,
  checkManifestBytes,
  manifestMediaType,
  parseIndexJson,
  refName,
  selectRoot,
} from "./oci-layout.ts";
import {
  hasTarEntry,
  indexTar,
  openTarEntry,
  peekTarEntry,
  readTarEntry,
  resolveTarEntry,
  type TarEntryInfo,
  type TarIndex,
} from "./tar-index.ts";

/** One element of a docker-archive's manifest.json. */
export interface DockerArchiveManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

export interface OpenDockerArchiveOptions {
  /** A RepoTag (`busybox:latest`, also matched in normalised form) or a 0-based index into manifest.json; default: the first image. */
  image?: string;
  /**
   * `oci-archive`: read the tar as skopeo's `oci-archive:` does — the OCI layout only (`image` is a
   * ref.name tag or a digest in its index.json), ignoring a manifest.json beside it. Default
   * `docker-archive`: manifest.json first, a bare OCI layout as a fallback.
   */
  transport?: "docker-archive" | "oci-archive";
}

export interface DockerArchiveSource extends ImageSource {
  readonly file: string;
  /** The chosen image's RepoTags (for an OCI archive without manifest.json: the ref.name tags). */
  readonly repoTags: string[];
  /** Which layout the archive uses. */
  readonly format: "docker-legacy" | "docker-oci" | "oci-archive";
}

const CONFIG_TYPES = new Set<string>([MediaType.DockerConfig, MediaType.OciConfig]);

function parseManifestJson(bytes: Buffer, what: string): DockerArchiveManifestEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    throw new ArchiveError(`${what}: manifest.json is not valid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(json)) throw new ArchiveError(`${what}: manifest.json must be a JSON array`);
  if (json.length === 0) throw new ArchiveError(`${what}: manifest.json lists no images`);
  return json.map((e, i) => {
    const at = `${what}: manifest.json[${i}]`;
    if (!isObject(e)) throw new ArchiveError(`${at}: expected an object`);
    if (typeof e.Config !== "string" || e.Config === "")
      throw new ArchiveError(`${at}: Config must be a file name`);
    if (!Array.isArray(e.Layers) || !e.Layers.every((l) => typeof l === "string" && l !== "")) {
      throw new ArchiveError(`${at}: Layers must be an array of file names`);
    }
    const tags = e.RepoTags;
    if (
      tags !== null &&
      tags !== undefined &&
      !(Array.isArray(tags) && tags.every((t) => typeof t === "string"))
    ) {
      throw new ArchiveError(`${at}: RepoTags must be an array of strings or null`);
    }
    return {
      Config: e.Config,
      RepoTags: (tags as string[] | null | undefined) ?? null,
      Layers: e.Layers as string[],
    };
  });
}

function normaliseTag(tag: string): string | undefined {
  try {
    const r = parseReference(tag);
    return `${r.registry}/${r.repository}:${r.tag ?? ""}@${r.digest ?? ""}`;
  } catch {
    return undefined;
  }
}

function chooseEntry(entries: DockerArchiveManifestEntry[], image: string | undefined, what: string): number {
  if (image === undefined || image === "") return 0;
  if (/^\d+$/.test(image)) {
    const i = Number(image);
    if (i >= entries.length) {
      throw new ImageNotFoundError(
        `${what}: image index ${i} is out of range (manifest.json lists ${entries.length})`,
      );
    }
    return i;
  }
  const exact = entries.findIndex((e) => e.RepoTags?.includes(image));
  if (exact >= 0) return exact;
  const wanted = normaliseTag(image);
  const loose = wanted ? entries.findIndex((e) => e.RepoTags?.some((t) => normaliseTag(t) === wanted)) : -1;
  if (loose >= 0) return loose;
  const all = entries.flatMap((e) => e.RepoTags ?? []);
  throw new ImageNotFoundError(
    `${what}: no image tagged "${image}" in manifest.json${all.length ? ` (RepoTags: ${all.join(", ")})` : " (it has no RepoTags)"}`,
  );
}

/** `blobs/<alg>/<hex>` → `<alg>:<hex>`, when the path has that form. */
function digestFromBlobPath(path: string): Digest | undefined {
  const m = /^(?:\.\/)?blobs\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(path);
  if (!m) return undefined;
  const d = `${m[1]}:${m[2]}`;
  return isDigest(d) ? d : undefined;
}

async function hashEntry(index: TarIndex, entry: TarEntryInfo, what: string): Promise<Digest> {
  const hash = createHash("sha256");
  for await (const chunk of openTarEntry(index, entry, 0, what) as AsyncIterable<Buffer>) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

interface Loaded {
  root: RawManifest;
  /** Digest → archive path, for blobs served by openBlob. */
  blobs: Map<Digest, string>;
  /** Child manifests available by digest (OCI layouts only). */
  manifests: boolean;
  repoTags: string[];
  format: DockerArchiveSource["format"];
}

/**
 * Opens a `docker save` tar (legacy or OCI layout inside) or an oci-archive as an image source,
 * without extracting it. Validates manifest.json, the presence and sizes of every referenced file,
 * and that the layer count matches the config's diff_ids.
 */
export async function openDockerArchive(
  file: string,
  opts: OpenDockerArchiveOptions = {},
): Promise<DockerArchiveSource> {
  const transport = opts.transport ?? "docker-archive";
  const what = `${transport}:${file}`;
  const index = await indexTar(resolvePath(file), what);
  const has = (name: string) => hasTarEntry(index, name, what);
  const hasManifestJson = has("manifest.json");
  const hasOci = has("index.json") && has("oci-layout");

  let loaded: Loaded | undefined;
  if (transport === "oci-archive") {
    if (!hasOci)
      throw new ArchiveError(
        `${what}: not an oci-archive: no OCI layout (oci-layout and index.json) in the tar${hasManifestJson ? "; it is a docker-archive" : ""}`,
      );
    loaded = await loadOci(index, opts.image, what);
  } else if (hasManifestJson) {
    const mjEntry = resolveTarEntry(index, "manifest.json", what);
    const entries = parseManifestJson(await readTarEntry(index, mjEntry, MAX_MANIFEST_BYTES, what), what);
    const chosen = entries[chooseEntry(entries, opts.image, what)]!;
    if (hasOci) loaded = await loadOciForEntry(index, chosen, what);
    loaded ??= await loadLegacy(index, chosen, what);
  } else if (hasOci) {
    loaded = await loadOci(index, opts.image, what);
  } else {
    throw new ArchiveError(
      `${what}: not a docker-archive: no manifest.json (nor an OCI index.json) in the tar`,
    );
  }
  const { root, blobs, manifests, repoTags, format } = loaded;

  const entryFor = (digest: Digest): TarEntryInfo => {
    const path = blobs.get(digest) ?? (manifests ? blobRelPath(digest) : undefined);
    if (path === undefined || !hasTarEntry(index, path, what)) {
      throw new BlobNotFoundError(`${what}: blob ${digest} is not in the archive`, digest);
    }
    return resolveTarEntry(index, path, what);
  };

  return {
    name: `${what}${opts.image ? `:${opts.image}` : ""}`,
    file,
    repoTags,
    format,
    async resolve() {
      return root;
    },
    async getManifest(desc) {
      if (desc.digest === root.digest) return root;
      if (!manifests)
        throw new BlobNotFoundError(`${what}: no manifest ${desc.digest} in the archive`, desc.digest);
      const entry = entryFor(parseDigest(desc.digest));
      const bytes = await readTarEntry(index, entry, MAX_MANIFEST_BYTES, `${what}: manifest ${desc.digest}`);
      checkManifestBytes(bytes, desc, `${what}: manifest ${desc.digest}`);
      return {
        bytes,
        digest: desc.digest,
        mediaType: manifestMediaType(bytes, desc.mediaType, `${what}: manifest ${desc.digest}`),
      };
    },
    async openBlob(desc: Descriptor, offset = 0): Promise<Readable> {
      const entry = entryFor(parseDigest(desc.digest));
      const at = `${what}: blob ${desc.digest} ("${entry.name}")`;
      if (desc.size >= 0 && desc.size !== entry.size) throw new SizeMismatchError(at, desc.size, entry.size);
      return openTarEntry(index, entry, offset, at);
    },
  };
}

/** The legacy layout: synthesise a Docker schema 2 manifest (OCI when a layer is zstd-compressed). */
async function loadLegacy(
  index: TarIndex,
  chosen: DockerArchiveManifestEntry,
  what: string,
): Promise<Loaded> {
  const configEntry = resolveTarEntry(index, chosen.Config, `${what}: config`);
  if (configEntry.size === 0) throw new ArchiveError(`${what}: config "${chosen.Config}" is empty`);
  const configBytes = await readTarEntry(index, configEntry, MAX_MANIFEST_BYTES, `${what}: config`);
  const configDigest = sha256(configBytes);
  const diffIds = parseDiffIds(configBytes, `${what}: config "${chosen.Config}"`);
  if (diffIds.length !== chosen.Layers.length) {
    throw new ArchiveError(
      `${what}: manifest.json lists ${chosen.Layers.length} layers but config "${chosen.Config}" has ${diffIds.length} rootfs.diff_ids`,
    );
  }

  const blobs = new Map<Digest, string>([[configDigest, configEntry.name]]);
  const byOffset = new Map<number, { digest: Digest; compression: Compression }>();
  const layers: { compression: Compression; digest: Digest; size: number }[] = [];
  for (const [i, path] of chosen.Layers.entries()) {
    const entry = resolveTarEntry(index, path, `${what}: layer ${i}`);
    if (entry.size === 0) throw new ArchiveError(`${what}: layer ${i} "${path}" is empty`);
    let known = byOffset.get(entry.offset);
    if (!known) {
      const compression = detectCompression(await peekTarEntry(index, entry, 8));
      if (compression === "bzip2" || compression === "xz") {
        throw new ArchiveError(
          `${what}: layer ${i} "${path}" is ${compression}-compressed (not supported by registries)`,
        );
      }
      const digest =
        compression === "none" ? diffIds[i]! : await hashEntry(index, entry, `${what}: layer "${path}"`);
      known = { digest, compression };
      byOffset.set(entry.offset, known);
    }
    if (known.compression === "none" && known.digest !== diffIds[i]) {
      // the same uncompressed file cannot have two different diff_ids
      throw new ArchiveError(`${what}: layer ${i} "${path}" is listed with two different diff_ids`);
    }
    blobs.set(known.digest, entry.name);
    layers.push({ compression: known.compression, digest: known.digest, size: entry.size });
  }

  const oci = layers.some((l) => l.compression === "zstd");
  const flavour = oci ? "oci" : "docker";
  const manifest = {
    schemaVersion: 2,
    mediaType: oci ? MediaType.OciManifest : MediaType.DockerManifest,
    config: {
      mediaType: oci ? MediaType.OciConfig : MediaType.DockerConfig,
      size: configBytes.length,
      digest: configDigest,
    },
    layers: layers.map((l) => ({
      mediaType: layerMediaType(l.compression, flavour),
      size: l.size,
      digest: l.digest,
    })),
  };
  const bytes = Buffer.from(JSON.stringify(manifest, null, 3));
  return {
    root: { bytes, mediaType: manifest.mediaType, digest: sha256(bytes) },
    blobs,
    manifests: false,
    repoTags: chosen.RepoTags ?? [],
    format: "docker-legacy",
  };
}

function parseDiffIds(configBytes: Buffer, what: string): Digest[] {
  let json: unknown;
  try {
    json = JSON.parse(configBytes.toString("utf8"));
  } catch (err) {
    throw new ArchiveError(`${what}: not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(json) || !isObject(json.rootfs) || !Array.isArray(json.rootfs.diff_ids)) {
    throw new ArchiveError(`${what}: no rootfs.diff_ids array`);
  }
  return json.rootfs.diff_ids.map((d, i) => {
    if (typeof d !== "string" || !isDigest(d))
      throw new ArchiveError(`${what}: rootfs.diff_ids[${i}] is not a digest`);
    return d;
  });
}

/**
 * Docker 25+: find, in the layout inside the tar, the image manifest whose config is manifest.json's
 * Config, and serve its original bytes. Undefined when none matches (the caller then synthesises).
 */
async function loadOciForEntry(
  index: TarIndex,
  chosen: DockerArchiveManifestEntry,
  what: string,
): Promise<Loaded | undefined> {
  const layout = parseIndexJson(
    await readTarEntry(index, resolveTarEntry(index, "index.json", what), MAX_MANIFEST_BYTES, what),
    `${what}: index.json`,
  );
  let configDigest = digestFromBlobPath(chosen.Config);
  if (!configDigest) {
    const entry = resolveTarEntry(index, chosen.Config, `${what}: config`);
    configDigest = sha256(await readTarEntry(index, entry, MAX_MANIFEST_BYTES, `${what}: config`));
  }
  const seen = new Set<string>();
  const visit = async (descs: Descriptor[], depth: number): Promise<RawManifest | undefined> => {
    for (const d of descs) {
      if (seen.has(d.digest) || depth > 4) continue;
      seen.add(d.digest);
      const path = blobRelPath(d.digest);
      if (!hasTarEntry(index, path, what)) continue; // e.g. other platforms of an index, not saved
      const entry = resolveTarEntry(index, path, what);
      if (entry.size > MAX_MANIFEST_BYTES) continue;
      const bytes = await readTarEntry(index, entry, MAX_MANIFEST_BYTES, `${what}: ${path}`);
      checkManifestBytes(bytes, d, `${what}: manifest ${d.digest}`);
      let m: ReturnType<typeof parseManifest>;
      try {
        m = parseManifest(bytes, d.mediaType, `${what}: manifest ${d.digest}`);
      } catch {
        continue;
      }
      if (m.kind === "manifest" && m.config.digest === configDigest) {
        return { bytes, digest: d.digest, mediaType: manifestMediaType(bytes, d.mediaType, what) };
      }
      if (m.kind === "index") {
        const found = await visit(m.manifests, depth + 1);
        if (found) return found;
      }
    }
    return undefined;
  };
  const root = await visit(layout.manifests, 0);
  if (!root) return undefined;
  checkBlobsPresent(index, root, what);
  return { root, blobs: new Map(), manifests: true, repoTags: chosen.RepoTags ?? [], format: "docker-oci" };
}

/** An OCI layout tar without manifest.json (oci-archive): select by ref.name or digest like a layout directory. */
async function loadOci(index: TarIndex, ref: string | undefined, what: string): Promise<Loaded> {
  const layout = parseIndexJson(
    await readTarEntry(index, resolveTarEntry(index, "index.json", what), MAX_MANIFEST_BYTES, what),
    `${what}: index.json`,
  );
  const desc = selectRoot(layout, ref, what);
  if (!desc) throw new ImageNotFoundError(`${what}: no manifest ${ref} in index.json`);
  const path = blobRelPath(desc.digest);
  if (!hasTarEntry(index, path, what))
    throw new ArchiveError(`${what}: manifest ${desc.digest} is missing (${path})`);
  const bytes = await readTarEntry(
    index,
    resolveTarEntry(index, path, what),
    MAX_MANIFEST_BYTES,
    `${what}: ${path}`,
  );
  checkManifestBytes(bytes, desc, `${what}: manifest ${desc.digest}`);
  const root = { bytes, digest: desc.digest, mediaType: manifestMediaType(bytes, desc.mediaType, what) };
  if (!isIndexType(root.mediaType)) checkBlobsPresent(index, root, what);
  const tags = layout.manifests.map(refName).filter((t): t is string => t !== undefined);
  return { root, blobs: new Map(), manifests: true, repoTags: tags, format: "oci-archive" };
}

function checkBlobsPresent(index: TarIndex, root: RawManifest, what: string): void {
  const m = parseManifest(root.bytes, root.mediaType, `${what}: manifest ${root.digest}`);
  if (m.kind !== "manifest") return;
  for (const [role, d] of [
    ["config", m.config] as const,
    ...m.layers.map((l, i) => [`layer ${i}`, l] as const),
  ]) {
    const path = blobRelPath(d.digest);
    if (!hasTarEntry(index, path, what))
      throw new ArchiveError(`${what}: ${role} ${d.digest} is missing from the archive (${path})`);
    const entry = resolveTarEntry(index, path, what);
    if (entry.size !== d.size) {
      throw new ArchiveError(
        `${what}: ${role} "${path}" has ${entry.size} bytes but the manifest says ${d.size}`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface DockerArchiveSinkOptions {
  /**
   * RepoTags recorded in manifest.json (`repo:tag`, familiar form such as `busybox:latest`). A name
   * without a tag gets the tag passed to putManifest (or `latest`).
   */
  repoTags: string[];
}

export interface DockerArchiveSink extends ImageSink {
  readonly file: string;
  /** Gives up: stops writing and removes the partial file (close() after a failure does the same). */
  abort(reason?: Error): Promise<void>;
}

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

/**
 * Writes one image as a docker-archive tar loadable by `docker load` and skopeo. Blobs may be put
 * concurrently: each is written as one tar entry, in turn (the next source is opened only when the
 * previous entry is complete). The tar goes to a temporary file next to `file`, renamed into place by
 * close() once manifest.json is written; after any failure (a digest mismatch cannot be taken back
 * out of a tar stream) the sink refuses further work and close() removes the partial file.
 */
export function createDockerArchiveSink(file: string, opts: DockerArchiveSinkOptions): DockerArchiveSink {
  const target = resolvePath(file);
  const name = `docker-archive:${file}`;
  for (const t of opts.repoTags) checkRepoTag(t);

  const tmp = tempNameFor(target, "archive");
  const pack = tar.pack();
  const out = createWriteStream(tmp, { flags: "wx", mode: 0o644 });
  const written = pipeline(pack as unknown as Readable, out);
  removeAtExit(tmp, true);
  let failed: Error | undefined;
  written.catch((err: Error & { code?: string }) => {
    failed ??= err.code?.startsWith("E")
      ? new ArchiveError(`${name}: cannot write the archive (${err.message})`, { cause: err })
      : err;
  });

  interface Stored {
    path: string;
    size: number;
    config?: Buffer;
  }
  const stored = new Map<Digest, Stored>();
  const inflight = new Map<Digest, Promise<number>>();
  let queue: Promise<unknown> = Promise.resolve();
  let image: { digest: Digest; config: string; layers: string[]; tags: string[] } | undefined;
  let state: "open" | "closing" | "closed" = "open";

  const fail = (err: Error) => {
    failed ??= err;
    pack.destroy(failed);
  };
  const check = () => {
    if (failed) throw failed;
    if (state !== "open") throw new ArchiveError(`${name}: the archive is already closed`);
  };

  const writeEntry = async (
    desc: Descriptor,
    path: string,
    openSource: (offset: number) => Promise<Readable>,
    progress: ((n: number) => void) | undefined,
    source = "the source",
  ): Promise<number> => {
    check();
    const keep = CONFIG_TYPES.has(desc.mediaType) && desc.size <= MAX_MANIFEST_BYTES;
    const chunks: Buffer[] = [];
    let entryError: Error | undefined;
    let settle: (err?: Error | null) => void = () => {};
    const entryDone = new Promise<void>((resolve, reject) => {
      settle = (err) => {
        if (err) {
          entryError = err;
          reject(err);
        } else resolve();
      };
    });
    entryDone.catch(() => {});
    const entry = pack.entry(
      { name: path, size: desc.size, mode: 0o644, mtime: new Date(0), type: "file" },
      (err) => settle(err),
    );
    // streamx throws an 'error' without a listener; the error reaches us through the callback
    entry.on("error", () => {});
    const dest = new EntryWriter(entry, entryDone, () => entryError);
    try {
      return await pumpVerified(desc, openSource, dest, {
        what: `blob ${desc.digest} read from ${source} for ${name}`,
        progress: (n) => progress?.(n),
        onChunk: keep ? (c) => chunks.push(c) : undefined,
      });
    } catch (err) {
      fail(err as Error);
      throw err;
    } finally {
      if (keep && !failed) stored.set(desc.digest, { path, size: desc.size, config: Buffer.concat(chunks) });
    }
  };

  const sink: DockerArchiveSink = {
    name,
    file: target,
    acceptsIndex: false,
    async hasBlob(desc) {
      return stored.has(desc.digest);
    },
    async putBlob(desc, openSource, opts = {}) {
      const { progress } = opts;
      check();
      parseDigest(desc.digest);
      if (!Number.isSafeInteger(desc.size) || desc.size < 0) {
        throw new ArchiveError(`${name}: blob ${desc.digest} has no size; a tar header needs it`);
      }
      if (stored.has(desc.digest)) return { action: "skipped", bytesSent: 0 };
      const pending = inflight.get(desc.digest);
      if (pending) {
        await pending;
        return { action: "skipped", bytesSent: 0 };
      }
      const ext = CONFIG_TYPES.has(desc.mediaType) || /json$/.test(desc.mediaType) ? "json" : "tar";
      const path = `${digestHex(desc.digest)}.${ext}`;
      const run = queue.then(async () => {
        const n = await writeEntry(desc, path, openSource, progress, opts.source);
        if (!stored.has(desc.digest)) stored.set(desc.digest, { path, size: desc.size });
        return n;
      });
      queue = run.catch(() => {});
      inflight.set(desc.digest, run);
      try {
        return { action: "uploaded", bytesSent: await run };
      } finally {
        inflight.delete(desc.digest);
      }
    },
    async putBlobStream(mediaType, stream, progress) {
      check();
      // a tar header needs the size first: spool to a file beside the archive (disk, not memory)
      const spool = tempNameFor(target, "spool");
      try {
        const { digest, size } = await spoolHashed(stream, spool, progress);
        const desc: Descriptor = { mediaType, digest, size };
        await sink.putBlob(desc, async (offset) =>
          openFileRange(spool, offset, size - offset, `${name}: spooled blob`),
        );
        return desc;
      } finally {
        await rm(spool, { force: true });
      }
    },
    async tagDigest(tag) {
      if (!image) return undefined;
      const hit = image.tags.some((t) => t === tag || splitRepoTag(t).tag === tag);
      return hit ? image.digest : undefined;
    },
    async putManifest(m, tag) {
      check();
      const what = `${name}: manifest ${m.digest}`;
      checkManifestBytes(m.bytes, { digest: m.digest }, what);
      const parsed = parseManifest(m.bytes, m.mediaType, what);
      if (parsed.kind === "index") {
        throw new UnsupportedManifestError(
          `${what}: a docker-archive holds a single-platform image, not an index (${parsed.manifests.length} manifests): select a platform first`,
        );
      }
      if (parsed.kind === "schema1")
        throw new UnsupportedManifestError(
          `${what}: schema 1 manifests cannot be written to a docker-archive`,
        );
      await queue;
      check();
      const need = (d: Descriptor, role: string): Stored => {
        const s = stored.get(d.digest);
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
      const tags = opts.repoTags.map((t) =>
        splitRepoTag(t).tag === undefined ? `${t}:${tag ?? "latest"}` : t,
      );
      if (image && image.digest !== m.digest) {
        throw new UnsupportedManifestError(
          `${what}: this docker-archive already holds image ${image.digest}; it takes one image`,
        );
      }
      image = { digest: m.digest, config: config.path, layers, tags };
    },
    async close() {
      if (state === "closed") return;
      if (state === "closing") throw new ArchiveError(`${name}: close() called twice`);
      state = "closing";
      await queue;
      try {
        if (failed) throw failed;
        if (!image) throw new ArchiveError(`${name}: no image manifest was written; nothing to save`);
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
        await addSmallEntry(pack, "manifest.json", `${JSON.stringify(manifestJson)}\n`);
        await addSmallEntry(pack, "repositories", `${JSON.stringify(repositories)}\n`);
        pack.finalize();
        await written;
        if (failed) throw failed;
        await rename(tmp, target);
        removeAtExit(tmp, false);
        state = "closed";
      } catch (err) {
        state = "closed";
        await sink.abort(err as Error);
        throw err;
      }
    },
    async abort(reason) {
      state = "closed";
      failed ??= reason ?? new ArchiveError(`${name}: aborted`);
      pack.destroy(failed);
      out.destroy();
      await written.catch(() => {});
      await rm(tmp, { force: true });
      removeAtExit(tmp, false);
    },
  };
  return sink;
}

function addSmallEntry(pack: tar.Pack, name: string, content: string): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry({ name, mode: 0o644, mtime: new Date(0) }, content, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * A Node Writable over one tar-stream entry (a streamx stream), with backpressure; `final` waits
 * until tar-stream has accepted the whole entry (it checks the size).
 */
type EntrySink = ReturnType<tar.Pack["entry"]>;

class EntryWriter extends Writable {
  private readonly entry: EntrySink;
  private readonly done: Promise<void>;
  private readonly entryError: () => Error | undefined;
  constructor(entry: EntrySink, done: Promise<void>, entryError: () => Error | undefined) {
    super();
    this.entry = entry;
    this.done = done;
    this.entryError = entryError;
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const entry = this.entry;
    const err = this.entryError();
    if (err) {
      cb(err);
      return;
    }
    if (entry.write(chunk)) {
      cb();
      return;
    }
    const cleanup = () => {
      entry.off("drain", onDrain);
      entry.off("close", onClose);
    };
    const onDrain = () => {
      cleanup();
      cb();
    };
    const onClose = () => {
      cleanup();
      cb(this.entryError() ?? new ArchiveError("tar entry closed while writing"));
    };
    entry.on("drain", onDrain);
    entry.on("close", onClose);
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.entry.end(undefined);
    this.done.then(
      () => cb(),
      (err: Error) => cb(err),
    );
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (err) this.entry.destroy(err);
    cb(err);
  }
}
