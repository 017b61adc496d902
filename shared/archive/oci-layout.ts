/**
 * OCI image layout directories (image-spec image-layout.md): `oci-layout`, `index.json` and
 * `blobs/<alg>/<hex>`. Read as an ImageSource, written as an ImageSink. Manifests are blobs too;
 * index.json names the roots, tagged with the `org.opencontainers.image.ref.name` annotation.
 */
import { existsSync } from "node:fs";
import { mkdir, open, readFile, rename, rm, rmdir, stat } from "node:fs/promises";
import { dirname, join, resolve as resolvePath } from "node:path";
import type { Readable } from "node:stream";
import { digestAlgorithm, digestHex, digestOf, isDigest, parseDigest } from "../registry/digest.ts";
import { DigestMismatchError, InvalidReferenceError, SizeMismatchError } from "../registry/errors.ts";
import {
  type Descriptor,
  type ImageIndex,
  MAX_MANIFEST_BYTES,
  parseManifest,
  type RawManifest,
} from "../registry/manifest.ts";
import { isManifestType, MediaType } from "../registry/media-types.ts";
import type { ImageSink, ImageSource } from "../transfer/types.ts";
import { ArchiveError, BlobNotFoundError, ImageNotFoundError } from "./errors.ts";
import {
  errnoCode,
  isObject,
  openFileRange,
  pumpVerified,
  spoolHashed,
  tempNameFor,
  writeFileAtomic,
} from "./io.ts";

/** The annotation that carries a tag in index.json. */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";
/** containerd / Docker 25+ put the full image name here (`docker.io/library/alpine:3.20`). */
export const CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name";
export const OCI_LAYOUT_FILE = "oci-layout";
export const OCI_LAYOUT_VERSION = "1.0.0";

/** An OCI layout read as an image source; `root` is the descriptor chosen from index.json. */
export interface OciLayoutSource extends ImageSource {
  readonly dir: string;
  readonly root: Descriptor;
}

/** `blobs/<alg>/<hex>` for a digest; the digest is validated first, so the path cannot leave `blobs/`. */
export function blobRelPath(digest: string): string {
  parseDigest(digest);
  return `blobs/${digestAlgorithm(digest)}/${digestHex(digest)}`;
}

/** Parses index.json bytes (an OCI index without a required mediaType). */
export function parseIndexJson(bytes: Uint8Array, what: string): ImageIndex {
  let m: ReturnType<typeof parseManifest>;
  try {
    m = parseManifest(bytes, MediaType.OciIndex, what);
  } catch (err) {
    throw new ArchiveError((err as Error).message, { cause: err });
  }
  if (m.kind !== "index") throw new ArchiveError(`${what}: not an image index`);
  return m;
}

/** The tag of an index.json entry, when it has one. */
export function refName(desc: Descriptor): string | undefined {
  return desc.annotations?.[REF_NAME_ANNOTATION];
}

/**
 * Chooses the root descriptor in an index.json: by tag (ref.name annotation, or the full containerd
 * image name), by digest, or the only entry when `ref` is not given.
 * Returns undefined for a digest that index.json does not list (the caller may still find the blob).
 */
export function selectRoot(index: ImageIndex, ref: string | undefined, what: string): Descriptor | undefined {
  const entries = index.manifests;
  if (ref === undefined || ref === "") {
    if (entries.length === 1) return entries[0]!;
    if (entries.length === 0) throw new ImageNotFoundError(`${what}: index.json lists no manifests`);
    const names = entries.map((d) => refName(d) ?? d.digest);
    throw new ArchiveError(
      `${what}: index.json lists ${entries.length} manifests; choose one by tag or digest (${names.join(", ")})`,
    );
  }
  if (isDigest(ref)) return entries.find((d) => d.digest === ref);
  const byTag = entries.filter((d) => refName(d) === ref);
  const found =
    byTag.length > 0 ? byTag : entries.filter((d) => d.annotations?.[CONTAINERD_NAME_ANNOTATION] === ref);
  if (found.length === 1) return found[0]!;
  if (found.length > 1) {
    const digests = new Set(found.map((d) => d.digest));
    if (digests.size === 1) return found[0]!;
    throw new ArchiveError(`${what}: tag "${ref}" names ${digests.size} different manifests in index.json`);
  }
  const tags = entries.map(refName).filter((t): t is string => t !== undefined);
  throw new ImageNotFoundError(
    `${what}: no manifest tagged "${ref}" in index.json${tags.length ? ` (tags: ${tags.join(", ")})` : " (it has no tags)"}`,
  );
}

/** The media type of manifest bytes: the descriptor's when it is a manifest type, else the JSON's own. */
export function manifestMediaType(bytes: Uint8Array, hint: string | undefined, what: string): string {
  if (hint && isManifestType(hint)) return hint;
  try {
    return parseManifest(bytes, hint, what).mediaType;
  } catch (err) {
    throw new ArchiveError((err as Error).message, { cause: err });
  }
}

/** Checks manifest bytes against their descriptor's size and digest. */
export function checkManifestBytes(
  bytes: Uint8Array,
  desc: Pick<Descriptor, "digest"> & { size?: number },
  what: string,
) {
  if (desc.size !== undefined && desc.size >= 0 && bytes.length !== desc.size) {
    throw new SizeMismatchError(what, desc.size, bytes.length);
  }
  const actual = digestOf(bytes, desc.digest);
  if (actual !== desc.digest) throw new DigestMismatchError(what, desc.digest, actual);
}

async function readLimited(file: string, limit: number, what: string): Promise<Buffer> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(file, "r");
  } catch (err) {
    if (errnoCode(err) === "ENOENT") throw new ArchiveError(`${what}: missing (${file})`);
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ArchiveError(`${what}: not a regular file (${file})`);
    if (st.size > limit)
      throw new ArchiveError(`${what}: ${st.size} bytes is over the ${limit}-byte limit (${file})`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/**
 * Opens an OCI image layout directory as an image source.
 * @param ref a tag (`org.opencontainers.image.ref.name`, or the full `io.containerd.image.name`), or a
 *   digest; by default the only manifest listed in index.json (an error when there are several).
 */
export async function openOciLayout(dir: string, ref?: string): Promise<OciLayoutSource> {
  const root = resolvePath(dir);
  const name = `oci:${dir}${ref ? `:${ref}` : ""}`;
  const layoutBytes = await readLimited(join(root, OCI_LAYOUT_FILE), 64 * 1024, `${name}: oci-layout`).catch(
    (err) => {
      if (err instanceof ArchiveError && /missing/.test(err.message)) {
        throw new ArchiveError(`${name}: not an OCI image layout (no oci-layout file in ${dir})`);
      }
      throw err;
    },
  );
  checkLayoutFile(layoutBytes, `${name}: oci-layout`);
  const index = parseIndexJson(
    await readLimited(join(root, "index.json"), MAX_MANIFEST_BYTES, `${name}: index.json`),
    `${name}: index.json`,
  );

  const blobFile = (digest: string) => join(root, blobRelPath(digest));
  const readManifestBlob = async (
    desc: Pick<Descriptor, "digest" | "mediaType"> & { size?: number },
  ): Promise<RawManifest> => {
    const what = `${name}: manifest ${desc.digest}`;
    let bytes: Buffer;
    try {
      bytes = await readLimited(blobFile(desc.digest), MAX_MANIFEST_BYTES, what);
    } catch (err) {
      if (err instanceof ArchiveError && /missing/.test(err.message)) {
        throw new BlobNotFoundError(
          `${what}: blob missing from the layout (${blobRelPath(desc.digest)})`,
          desc.digest,
        );
      }
      throw err;
    }
    checkManifestBytes(bytes, desc, what);
    return { bytes, digest: desc.digest, mediaType: manifestMediaType(bytes, desc.mediaType, what) };
  };

  let chosen = selectRoot(index, ref, name);
  if (!chosen) {
    // a digest not listed in index.json: accept any manifest blob present in the layout
    const digest = ref as string;
    const raw = await readManifestBlob({ digest, mediaType: "" }).catch((err) => {
      if (err instanceof BlobNotFoundError)
        throw new ImageNotFoundError(`${name}: no manifest ${digest} in the layout`);
      throw err;
    });
    chosen = { mediaType: raw.mediaType, digest, size: raw.bytes.length };
  }
  const rootDesc = chosen;

  return {
    name,
    dir: root,
    root: rootDesc,
    resolve: () => readManifestBlob(rootDesc),
    getManifest: (desc) => readManifestBlob(desc),
    async openBlob(desc: Descriptor, offset = 0): Promise<Readable> {
      const file = blobFile(desc.digest);
      const what = `${name}: blob ${desc.digest}`;
      let size: number;
      try {
        const st = await stat(file);
        if (!st.isFile()) throw new ArchiveError(`${what}: not a regular file`);
        size = st.size;
      } catch (err) {
        if (errnoCode(err) === "ENOENT") {
          throw new BlobNotFoundError(
            `${what}: missing from the layout (${blobRelPath(desc.digest)})`,
            desc.digest,
          );
        }
        throw err;
      }
      if (desc.size >= 0 && size !== desc.size) throw new SizeMismatchError(what, desc.size, size);
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > size) {
        throw new ArchiveError(`${what}: offset ${offset} is outside the blob (${size} bytes)`);
      }
      return openFileRange(file, offset, size - offset, what);
    },
  };
}

function checkLayoutFile(bytes: Uint8Array, what: string): void {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    throw new ArchiveError(`${what}: not valid JSON`);
  }
  if (!isObject(json) || typeof json.imageLayoutVersion !== "string") {
    throw new ArchiveError(`${what}: missing imageLayoutVersion`);
  }
  if (!json.imageLayoutVersion.startsWith("1.")) {
    throw new ArchiveError(`${what}: unsupported imageLayoutVersion "${json.imageLayoutVersion}"`);
  }
}

/** An OCI layout written as an image sink. */
export interface OciLayoutSink extends ImageSink {
  readonly dir: string;
  /** Commits: writes index.json (and oci-layout for a new layout). Nothing is listed before. */
  close(): Promise<void>;
  /** Gives up: removes the blobs this sink added (unless an image committed here needs them); index.json is untouched. */
  abort(reason?: Error): Promise<void>;
}

/**
 * What the sinks of this process do to one layout directory. Several sinks may write one layout at once
 * (`copy --from-file` with one `oci:` destination, the images of a run): index.json updates are
 * serialised, and the clean-up after a failure waits until every sink of the directory is done, so a
 * blob one image wrote and failed is not removed while another image of the run still counts on it.
 */
interface LayoutState {
  /** Sinks neither closed nor aborted. */
  open: number;
  /** Serialises index.json updates (read, merge, write). */
  commit: Promise<void>;
  /** Blob files written by sinks that failed. */
  orphans: Set<string>;
  /** Blobs that committed sinks wrote or reference: never removed. */
  kept: Set<string>;
  /** Directories created by these sinks, removed (when empty) if nothing was committed into them. */
  createdDirs: Set<string>;
}
const layouts = new Map<string, LayoutState>();

/**
 * Creates (or opens, to add to) an OCI image layout directory as an image sink. All or nothing:
 * - blobs are written to a temporary file, verified while streaming, then renamed into
 *   `blobs/<alg>/<hex>` (content-addressed: a blob under its name is always the right bytes); blobs
 *   already present are skipped;
 * - `putManifest(m, tag)` stores the manifest as a blob and notes the tag; index.json (and, for a new
 *   layout, `oci-layout`) is written only by `close()`, which re-reads index.json and applies this sink's
 *   entries to it — an entry with the same tag is replaced. Untagged manifests referenced by an index put
 *   to this sink (the children of a multi-platform image) are not listed; other untagged ones are;
 * - `abort()` (the copy failed) leaves the directory as it was: index.json never changed, and the blobs
 *   and directories this sink created are removed (see LayoutState for concurrent sinks).
 */
export async function createOciLayoutSink(dir: string): Promise<OciLayoutSink> {
  const root = resolvePath(dir);
  const name = `oci:${dir}`;
  const layoutFile = join(root, OCI_LAYOUT_FILE);
  const indexFile = join(root, "index.json");
  try {
    checkLayoutFile(await readFile(layoutFile), `${name}: oci-layout`);
  } catch (err) {
    if (errnoCode(err) !== "ENOENT") throw err;
  }
  /** index.json as it was when this sink opened (for tagDigest: --no-clobber, up-to-date checks). */
  const existing = await readIndexFile(indexFile, name);

  let state = layouts.get(root);
  if (!state) {
    state = {
      open: 0,
      commit: Promise.resolve(),
      orphans: new Set(),
      kept: new Set(),
      createdDirs: new Set(),
    };
    layouts.set(root, state);
  }
  const shared = state;
  shared.open++;

  /** Entries tagged by this sink, by tag (the last putManifest of a tag wins). */
  const tagged = new Map<string, Descriptor>();
  /** Untagged manifests put to this sink, listed in index.json unless an index references them. */
  const untagged = new Map<string, Descriptor>();
  /** Digests referenced by indexes put to this sink. */
  const children = new Set<string>();
  /** Blob files this sink created, and blobs its manifests reference. */
  const added = new Set<string>();
  const referenced = new Set<string>();
  let settled = false;

  const blobFile = (digest: string) => join(root, blobRelPath(digest));
  const makeDir = async (path: string) => {
    const first = await mkdir(path, { recursive: true });
    // mkdir returns the first directory it had to create: it and those below it up to `path` are new
    for (let d = path; first !== undefined && d.length >= first.length; d = dirname(d))
      shared.createdDirs.add(d);
  };
  const blobDir = (digest: string) => makeDir(join(root, "blobs", digestAlgorithm(digest)));
  /** Renames a verified temporary file to its blob name; notes the blob as this sink's when it is new. */
  const commitBlob = async (tmp: string, digest: string) => {
    const fresh = !existsSync(blobFile(digest));
    await rename(tmp, blobFile(digest));
    if (fresh) added.add(digest);
  };

  const settle = async (committed: boolean) => {
    if (settled) return;
    settled = true;
    if (committed) for (const d of [...added, ...referenced]) shared.kept.add(d);
    else for (const d of added) shared.orphans.add(d);
    if (--shared.open > 0) return;
    layouts.delete(root);
    for (const d of shared.orphans) if (!shared.kept.has(d)) await rm(blobFile(d), { force: true });
    // deepest first; a directory that holds anything (a committed image, a user's file) stays
    for (const d of [...shared.createdDirs].sort((a, b) => b.length - a.length))
      await rmdir(d).catch(() => {});
  };

  const hasBlob = async (desc: Pick<Descriptor, "digest" | "size">): Promise<boolean> => {
    try {
      const st = await stat(blobFile(desc.digest));
      return st.isFile() && (desc.size < 0 || st.size === desc.size);
    } catch (err) {
      if (errnoCode(err) === "ENOENT" || errnoCode(err) === "ENOTDIR") return false;
      throw err;
    }
  };

  const sink: OciLayoutSink = {
    name,
    dir: root,
    hasBlob,
    acceptsIndex: true,
    async putBlob(desc, openSource, opts = {}) {
      const { progress } = opts;
      if (await hasBlob(desc)) return { action: "skipped", bytesSent: 0 };
      if (!Number.isSafeInteger(desc.size) || desc.size < 0) {
        throw new ArchiveError(`${name}: blob ${desc.digest} has no size; cannot verify it`);
      }
      await blobDir(desc.digest);
      const tmp = tempNameFor(join(root, "blob"), "blob");
      const fh = await open(tmp, "wx", 0o644);
      try {
        const sent = await pumpVerified(desc, openSource, fh.createWriteStream(), {
          what: `blob ${desc.digest} read from ${opts.source ?? "the source"} for ${name}`,
          progress,
        });
        await commitBlob(tmp, desc.digest);
        return { action: "uploaded", bytesSent: sent };
      } catch (err) {
        await fh.close().catch(() => {});
        await rm(tmp, { force: true });
        throw err;
      }
    },
    async putBlobStream(mediaType, stream, progress) {
      await makeDir(root);
      const tmp = tempNameFor(join(root, "blob"), "blob");
      try {
        const { digest, size } = await spoolHashed(stream, tmp, progress);
        await blobDir(digest);
        await commitBlob(tmp, digest);
        return { mediaType, digest, size };
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    },
    async tagDigest(tag) {
      return tagged.get(tag)?.digest ?? existing?.manifests.find((d) => refName(d) === tag)?.digest;
    },
    async putManifest(m, tag) {
      const what = `${name}: manifest ${m.digest}`;
      checkManifestBytes(m.bytes, { digest: m.digest }, what);
      let parsed: ReturnType<typeof parseManifest>;
      try {
        parsed = parseManifest(m.bytes, m.mediaType, what);
      } catch (err) {
        throw new ArchiveError((err as Error).message, { cause: err });
      }
      if (tag !== undefined && (tag === "" || /[\s]/.test(tag)))
        throw new InvalidReferenceError(`${name}: invalid tag "${tag}"`);
      const desc: Descriptor = {
        mediaType: m.mediaType || parsed.mediaType,
        digest: m.digest,
        size: m.bytes.length,
      };
      if (!(await hasBlob(desc))) {
        await blobDir(m.digest);
        const tmp = tempNameFor(join(root, "blob"), "blob");
        await writeFileAtomic(tmp, m.bytes);
        await commitBlob(tmp, m.digest);
      }
      referenced.add(m.digest);
      if (parsed.kind === "index") {
        for (const child of parsed.manifests) {
          children.add(child.digest);
          referenced.add(child.digest);
        }
      } else if (parsed.kind === "manifest") {
        for (const d of [parsed.config, ...parsed.layers]) referenced.add(d.digest);
      }
      if (tag !== undefined) {
        tagged.delete(tag); // re-inserted last: index.json lists entries in the order they were tagged
        tagged.set(tag, { ...desc, annotations: { [REF_NAME_ANNOTATION]: tag } });
        untagged.delete(m.digest);
      } else if (![...tagged.values()].some((d) => d.digest === m.digest)) {
        untagged.set(m.digest, desc);
      }
    },
    async close() {
      if (settled) return;
      const run = async () => {
        await makeDir(root);
        if (!existsSync(layoutFile))
          await writeFileAtomic(layoutFile, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
        // index.json as it is now (another sink of this run may have committed since this one opened)
        const now = await readIndexFile(indexFile, name);
        const tags = new Set(tagged.keys());
        const entries = (now?.manifests ?? []).filter((d) => !tags.has(refName(d) ?? "\0"));
        entries.push(...tagged.values());
        const listed = new Set(entries.map((d) => d.digest));
        for (const d of untagged.values())
          if (!children.has(d.digest) && !listed.has(d.digest)) entries.push(d);
        const doc = {
          schemaVersion: 2,
          mediaType: MediaType.OciIndex,
          manifests: entries,
          ...(now?.extras ?? {}),
        };
        await writeFileAtomic(indexFile, `${JSON.stringify(doc)}\n`);
      };
      const done = shared.commit.then(run, run);
      shared.commit = done.catch(() => {});
      try {
        await done;
      } catch (err) {
        await settle(false);
        throw err;
      }
      await settle(true);
    },
    async abort() {
      await settle(false);
    },
  };
  return sink;
}

/** index.json's entries and its other top-level fields, or undefined when there is none yet. */
async function readIndexFile(
  file: string,
  name: string,
): Promise<{ manifests: Descriptor[]; extras: Record<string, unknown> } | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return undefined;
    throw err;
  }
  const manifests = parseIndexJson(bytes, `${name}: index.json`).manifests;
  const {
    schemaVersion: _s,
    mediaType: _m,
    manifests: _ms,
    ...extras
  } = JSON.parse(bytes.toString("utf8")) as Record<string, unknown>;
  return { manifests, extras };
}
