/**
 * Planning: resolve the source to its manifests (children before the index) and the de-duplicated
 * blobs they reference. Pure apart from reading manifests from the source.
 */
import { mapLimit } from "../concurrency.ts";
import { sha256 } from "../registry/digest.ts";
import { FerryError } from "../registry/errors.ts";
import {
  type Descriptor,
  formatPlatform,
  type Manifest,
  type Platform,
  parseManifest,
  platformMatches,
  type RawManifest,
  referencedBlobs,
} from "../registry/manifest.ts";
import { MediaType } from "../registry/media-types.ts";
import type { ImageSink, ImageSource } from "./types.ts";

export interface PlannedManifest {
  raw: RawManifest;
  manifest: Manifest;
  platform?: Platform;
}

export interface TransferPlan {
  source: string;
  /** The manifest that gets the destination tags: the source's root, a filtered index, or one platform's manifest. */
  root: PlannedManifest;
  /** Every manifest to put, in dependency order: children first, root last. */
  manifests: PlannedManifest[];
  /** Blobs referenced, each once. */
  blobs: Descriptor[];
  totalBytes: number;
  /** The digest of the source's own root, when the plan's root differs from it (platform selection). */
  sourceDigest: string;
  /** What planning changed, for the report: filtered platforms, skipped foreign layers. */
  notes: string[];
}

export interface PlanOptions {
  /** Keep only these platforms of an index (the index is rewritten: its digest changes). */
  platforms?: Platform[];
  /** The destination holds one image manifest only (docker-archive): pick one platform. */
  singleImage?: boolean;
}

const MAX_DEPTH = 4;

export async function planTransfer(source: ImageSource, opts: PlanOptions = {}): Promise<TransferPlan> {
  const rootRaw = await source.resolve();
  const notes: string[] = [];
  const root: PlannedManifest = {
    raw: rootRaw,
    manifest: copyable(
      parseManifest(rootRaw.bytes, rootRaw.mediaType, `manifest of ${source.name}`),
      source.name,
    ),
  };
  const manifests: PlannedManifest[] = [];
  let top = root;

  if (root.manifest.kind === "index") {
    const entries = root.manifest.manifests;
    let selected = entries;
    if (opts.platforms?.length) {
      selected = entries.filter((d) => opts.platforms!.some((p) => platformMatches(p, d.platform)));
      if (selected.length === 0) {
        throw new FerryError(
          "PLATFORM_NOT_FOUND",
          `${source.name} has no manifest for ${opts.platforms.map(formatPlatform).join(", ")}; it has ${describePlatforms(entries)}`,
        );
      }
    }
    if (opts.singleImage) {
      const images = selected.filter((d) => d.platform && d.platform.os !== "unknown");
      const pick = opts.platforms?.length
        ? images
        : [
            images.find((d) => d.platform?.os === "linux" && d.platform.architecture === "amd64") ??
              images[0],
          ].filter(Boolean);
      if (pick.length !== 1 || !pick[0]) {
        throw new FerryError(
          "PLATFORM_AMBIGUOUS",
          `${source.name} is a multi-platform index; this destination holds one image: choose one with --platform (${describePlatforms(entries)})`,
        );
      }
      const child = await loadChild(source, pick[0], 1);
      notes.push(`selected platform ${formatPlatform(pick[0].platform)} of index ${rootRaw.digest}`);
      top = child.top;
      manifests.push(...child.all.filter((m) => m !== child.top));
    } else {
      const children = await mapLimit(selected, 8, (d) => loadChild(source, d, 1));
      for (const c of children) manifests.push(...c.all);
      if (selected.length !== entries.length) {
        const bytes = rewriteIndex(rootRaw, selected);
        top = {
          raw: { bytes, mediaType: rootRaw.mediaType, digest: sha256(bytes) },
          manifest: { ...root.manifest, manifests: selected },
        };
        notes.push(
          `kept ${selected.length} of ${entries.length} platforms (${selected.map((d) => formatPlatform(d.platform)).join(", ")}): ` +
            `the index was rewritten, digest ${rootRaw.digest} → ${top.raw.digest}`,
        );
      }
    }
  }
  manifests.push(top);

  const blobs = new Map<string, Descriptor>();
  for (const m of manifests) {
    for (const d of referencedBlobs(m.manifest)) {
      if (d.mediaType === MediaType.DockerForeignLayerGzip || (d.urls && d.urls.length > 0)) {
        notes.push(
          `foreign layer ${d.digest} not copied (non-distributable; fetched from ${d.urls?.[0] ?? "its URL"})`,
        );
        continue;
      }
      if (!blobs.has(d.digest)) blobs.set(d.digest, d);
    }
  }
  const list = [...blobs.values()];
  return {
    source: source.name,
    root: top,
    manifests: dedupeManifests(manifests),
    blobs: list,
    totalBytes: list.reduce((a, d) => a + Math.max(0, d.size), 0),
    sourceDigest: rootRaw.digest,
    notes,
  };
}

async function loadChild(
  source: ImageSource,
  desc: Descriptor,
  depth: number,
): Promise<{ top: PlannedManifest; all: PlannedManifest[] }> {
  if (depth > MAX_DEPTH)
    throw new FerryError("INVALID_MANIFEST", `${source.name}: indexes nested deeper than ${MAX_DEPTH}`);
  const raw = await source.getManifest(desc);
  if (raw.digest !== desc.digest) {
    throw new FerryError(
      "DIGEST_MISMATCH",
      `${source.name}: child manifest ${desc.digest} came back as ${raw.digest}`,
    );
  }
  const manifest = copyable(
    parseManifest(raw.bytes, raw.mediaType || desc.mediaType, `manifest ${desc.digest} of ${source.name}`),
    `${source.name} (manifest ${desc.digest})`,
  );
  const top: PlannedManifest = { raw, manifest, ...(desc.platform ? { platform: desc.platform } : {}) };
  if (manifest.kind !== "index") return { top, all: [top] };
  const all: PlannedManifest[] = [];
  for (const d of manifest.manifests) all.push(...(await loadChild(source, d, depth + 1)).all);
  all.push(top);
  return { top, all };
}

/**
 * Refuses Docker schema 1, the one gate for every copy (engine, workflow, pull): its registry signs it
 * again on every read, so the bytes ferry would write are not the ones the digest names, and its name
 * and tag are inside the signed payload, so it cannot move to another repository unchanged.
 */
function copyable(m: Manifest, name: string): Manifest {
  if (m.kind === "schema1") {
    throw new FerryError(
      "UNSUPPORTED_MANIFEST",
      `${name} is a Docker schema 1 manifest: schema 1 is deprecated and re-signed on every read, so ferry cannot copy it faithfully; convert the image to schema 2 or OCI with a newer client (e.g. skopeo copy --format v2s2)`,
    );
  }
  return m;
}

function dedupeManifests(list: PlannedManifest[]): PlannedManifest[] {
  const seen = new Set<string>();
  return list.filter((m) => {
    if (seen.has(m.raw.digest)) return false;
    seen.add(m.raw.digest);
    return true;
  });
}

/** A new index holding only `keep`, every other field as in the original. */
function rewriteIndex(raw: RawManifest, keep: Descriptor[]): Uint8Array {
  const json = JSON.parse(Buffer.from(raw.bytes).toString("utf8")) as { manifests: { digest: string }[] };
  const digests = new Set(keep.map((d) => d.digest));
  json.manifests = json.manifests.filter((m) => digests.has(m.digest));
  return Buffer.from(JSON.stringify(json, null, 2));
}

function describePlatforms(entries: Descriptor[]): string {
  const names = entries.map((d) => formatPlatform(d.platform)).filter((p) => p !== "unknown/unknown");
  return names.length ? names.join(", ") : "no platforms";
}

/**
 * The up-to-date check, before anything is planned: the digest the destination already has under every
 * one of `tags` (or, with no tag, by the source's pinned digest), when it is the source's. Then nothing
 * moves. Not with a platform selection or compression (they rewrite the root), nor when forced, nor for
 * sources that cannot tell their digest cheaply (files) or sinks that cannot tell theirs.
 */
export async function upToDateDigest(
  source: ImageSource,
  sink: ImageSink,
  tags: readonly string[],
  opts: { force?: boolean; platforms?: readonly Platform[]; compress?: string } = {},
): Promise<string | undefined> {
  if (opts.force || opts.platforms?.length || opts.compress || !sink.tagDigest || !source.headDigest)
    return undefined;
  const target = tags[0] ?? source.pinnedDigest;
  if (!target) return undefined;
  const [src, dst] = await Promise.all([source.headDigest(), sink.tagDigest(target)]);
  if (!src || src !== dst) return undefined;
  for (const t of tags.slice(1)) if ((await sink.tagDigest(t)) !== src) return undefined;
  return src;
}

/**
 * The `--no-clobber` rule: the first of `tags` that the sink already has pointing to another digest than
 * `digest`, with what it points to; undefined when none does (or the sink cannot tell).
 */
export async function clobberedTag(
  sink: ImageSink,
  tags: readonly string[],
  digest: string,
): Promise<{ tag: string; existing: string } | undefined> {
  if (!sink.tagDigest) return undefined;
  for (const tag of tags) {
    const existing = await sink.tagDigest(tag);
    if (existing && existing !== digest) return { tag, existing };
  }
  return undefined;
}
