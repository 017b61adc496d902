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
 * Writing is docker-archive-sink.ts's (the legacy layout); the two share manifest.json's entry type and
 * the config's diff_ids, here.
 */
import { createHash } from "node:crypto";
import { resolve as resolvePath } from "node:path";
import type { Readable } from "node:stream";
import { type Digest, isDigest, parseDigest, sha256 } from "../registry/digest.ts";
import { SizeMismatchError } from "../registry/errors.ts";
import {
  type Descriptor,
  MAX_MANIFEST_BYTES,
  parseManifest,
  type RawManifest,
} from "../registry/manifest.ts";
import { isIndexType, MediaType } from "../registry/media-types.ts";
import { parseReference } from "../registry/reference.ts";
import type { ImageSource } from "../transfer/types.ts";
import { type Compression, detectCompression, layerMediaType } from "./compression.ts";
import { ArchiveError, BlobNotFoundError, ImageNotFoundError } from "./errors.ts";
import { isObject } from "./io.ts";
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

/** A config's rootfs.diff_ids: one per layer, the digest of its uncompressed tar. */
export function parseDiffIds(configBytes: Buffer, what: string): Digest[] {
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
