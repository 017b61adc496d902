/**
 * The last act of every copy: manifests, children first (each by its digest), then the root under each
 * tag — or by its digest when there is no tag (ggcr's WriteIndex order). A manifest is never put before
 * every blob it references is present: the engine guarantees it by putting manifests only after its blobs
 * settled (each found, mounted, or uploaded and acknowledged by the registry); a workflow step, whose
 * blobs were moved by other steps, asks `requireBlobs` first, which takes the same confirmations from
 * those steps' records and checks with a `HEAD` only the blobs without one.
 */
import { mapLimit } from "../concurrency.ts";
import { FerryError } from "../registry/errors.ts";
import { type Descriptor, formatPlatform, type Platform, type RawManifest } from "../registry/manifest.ts";
import type { ManifestReport } from "./report.ts";
import type { ImageSink } from "./types.ts";

/** A referenced blob is missing at the destination: no manifest was put. */
export class IncompleteImageError extends FerryError {
  constructor(message: string) {
    super("INCOMPLETE_IMAGE", message);
    this.name = "IncompleteImageError";
  }
}

/** A manifest to put, with the platform it is for (children of an index). */
export interface ManifestToPut {
  raw: RawManifest;
  platform?: Platform | string;
}

/**
 * Puts `manifests` (children first, the root last) to `sink`: every child by digest, then the root
 * under each of `tags`. Returns one report per manifest, in the same order.
 */
export async function putManifests(
  sink: ImageSink,
  manifests: readonly ManifestToPut[],
  tags: readonly string[],
  onPut: (digest: string, tag?: string) => void = () => {},
): Promise<ManifestReport[]> {
  const reports: ManifestReport[] = [];
  const root = manifests[manifests.length - 1];
  if (!root) throw new FerryError("NOTHING_TO_PUT", `no manifest to put to ${sink.name}`);
  for (const m of manifests.slice(0, -1)) {
    await sink.putManifest(m.raw);
    onPut(m.raw.digest);
    reports.push(report(m, []));
  }
  if (tags.length === 0) {
    await sink.putManifest(root.raw);
    onPut(root.raw.digest);
  }
  for (const tag of tags) {
    await sink.putManifest(root.raw, tag);
    onPut(root.raw.digest, tag);
  }
  reports.push(report(root, [...tags]));
  return reports;
}

/**
 * Throws IncompleteImageError unless `sink` holds every one of `blobs`. The digests in `confirmed` were
 * confirmed at the destination by this transfer (found there, mounted, or uploaded and acknowledged) and
 * are not asked again, as the engine does not ask again; every other blob gets a `HEAD`, 8 at a time.
 */
export async function requireBlobs(
  sink: ImageSink,
  blobs: readonly Descriptor[],
  image: string,
  confirmed: ReadonlySet<string> = new Set(),
): Promise<void> {
  const unconfirmed = blobs.filter((b) => !confirmed.has(b.digest));
  const present = await mapLimit(unconfirmed, 8, (b) => sink.hasBlob(b));
  const missing = unconfirmed.filter((_, i) => !present[i]).map((b) => b.digest);
  if (missing.length > 0) {
    throw new IncompleteImageError(
      `${image}: ${missing.length} of ${blobs.length} blob(s) missing at ${sink.name} ` +
        `(${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ", …" : ""}); no manifest was pushed`,
    );
  }
}

function report(m: ManifestToPut, tags: string[]): ManifestReport {
  const platform = typeof m.platform === "string" ? m.platform : m.platform && formatPlatform(m.platform);
  return { digest: m.raw.digest, mediaType: m.raw.mediaType, ...(platform ? { platform } : {}), tags };
}
