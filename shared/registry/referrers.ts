/**
 * The referrers tag schema (OCI distribution spec 1.1, "Unavailable Referrers API"): a registry without
 * `GET /v2/<name>/referrers/<digest>` cannot list what refers to a manifest, so the clients that push a
 * manifest with a `subject` keep the list themselves, as an OCI image index tagged `<alg>-<hex>`.
 * These are the pure parts (the tag, the descriptor a referrer gets, the merge); RegistryClient does the
 * reads and writes (`putManifest`, `referrers`).
 */
import { isDigest } from "./digest.ts";
import { InvalidManifestError } from "./errors.ts";
import type { Descriptor, RawManifest } from "./manifest.ts";
import { MediaType } from "./media-types.ts";

/**
 * The referrers tag of a digest: the algorithm truncated to 32 characters, `-`, the encoded part
 * truncated to 64, and any character a tag may not hold replaced with `-` (spec: "Referrers Tag Schema").
 * `sha256:abc…` → `sha256-abc…`.
 */
export function referrersTag(digest: string): string {
  const colon = digest.indexOf(":");
  const algorithm = digest.slice(0, colon);
  const encoded = digest.slice(colon + 1);
  return `${algorithm.slice(0, 32)}-${encoded.slice(0, 64)}`.replace(/[^a-zA-Z0-9._-]/g, "-");
}

/** What the referrers list needs of a pushed manifest: its subject and its own descriptor there. */
export interface Referrer {
  /** The digest of the manifest's `subject`. */
  subject: string;
  /** The descriptor listed under the subject's referrers tag. */
  descriptor: Descriptor;
}

/**
 * The subject of a manifest and the descriptor the referrers list gets for it, or undefined when the
 * manifest has no `subject` (or is not a JSON object: then the registry decided, not us). As the spec
 * says: `artifactType` is the manifest's, else (image manifests) the config's media type, and every
 * annotation of the manifest is copied.
 */
export function referrerOf(manifest: RawManifest): Referrer | undefined {
  const bytes = Buffer.from(manifest.bytes.buffer, manifest.bytes.byteOffset, manifest.bytes.byteLength);
  // most manifests have no subject: skip the parse for them
  if (!bytes.includes('"subject"')) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch {
    return undefined;
  }
  if (!isObject(json) || !isObject(json.subject)) return undefined;
  const subject = json.subject.digest;
  if (typeof subject !== "string" || !isDigest(subject)) return undefined;
  const descriptor: Descriptor = {
    mediaType: manifest.mediaType || (typeof json.mediaType === "string" ? json.mediaType : ""),
    digest: manifest.digest,
    size: manifest.bytes.byteLength,
  };
  const artifactType =
    typeof json.artifactType === "string" && json.artifactType
      ? json.artifactType
      : isObject(json.config) && typeof json.config.mediaType === "string"
        ? json.config.mediaType
        : undefined;
  if (artifactType) descriptor.artifactType = artifactType;
  if (isObject(json.annotations)) descriptor.annotations = json.annotations as Record<string, string>;
  return { subject, descriptor };
}

/**
 * The referrers index with `entry` added: `existing` (the index under the referrers tag, undefined when
 * the tag does not exist) keeps every entry and field it had, byte for byte in JSON terms; an entry
 * whose digest is already listed is not added twice. Undefined when there is nothing to change. A tag
 * that holds anything but an OCI image index is refused (`what` names it): it is not ours to overwrite.
 */
export function mergeReferrer(
  existing: RawManifest | undefined,
  entry: Descriptor,
  what: string,
): Uint8Array | undefined {
  let index: Record<string, unknown> & { manifests: unknown[] };
  if (!existing) {
    index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
  } else {
    const json = parseIndex(existing);
    if (!json) {
      throw new InvalidManifestError(
        `${what} holds ${existing.mediaType || "a manifest"} ${existing.digest}, not an OCI image index: not overwritten, so ${entry.digest} is not listed there`,
      );
    }
    index = json;
  }
  if (index.manifests.some((d) => isObject(d) && d.digest === entry.digest)) return undefined;
  index.manifests.push(entry);
  return Buffer.from(JSON.stringify(index));
}

/** The JSON of an OCI image index, or undefined when the manifest is anything else. */
export function parseIndex(
  raw: RawManifest,
): (Record<string, unknown> & { manifests: unknown[] }) | undefined {
  if (raw.mediaType && raw.mediaType !== MediaType.OciIndex) return undefined;
  try {
    const json = JSON.parse(Buffer.from(raw.bytes).toString("utf8")) as unknown;
    if (!isObject(json) || json.schemaVersion !== 2 || !Array.isArray(json.manifests)) return undefined;
    if (json.mediaType !== undefined && json.mediaType !== MediaType.OciIndex) return undefined;
    return json as Record<string, unknown> & { manifests: unknown[] };
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
