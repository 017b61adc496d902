/**
 * Manifests are kept as the exact bytes the registry sent (re-serialising JSON changes the digest);
 * parsing only reads them to find what they reference.
 */
import { type Digest, parseDigest } from "./digest.ts";
import { InvalidManifestError } from "./errors.ts";
import { INDEX_TYPES, isManifestType, MediaType, normaliseMediaType, SCHEMA1_TYPES } from "./media-types.ts";

/** Largest manifest ferry accepts (the distribution registry's own limit is 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  "os.version"?: string;
  "os.features"?: string[];
}

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

/** An image manifest (OCI or Docker schema 2). */
export interface ImageManifest {
  kind: "manifest";
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** An index / manifest list. */
export interface ImageIndex {
  kind: "index";
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** A legacy schema 1 manifest: readable only; its layers are listed in `fsLayers[].blobSum` (sizes unknown). */
export interface Schema1Manifest {
  kind: "schema1";
  schemaVersion: 1;
  mediaType: string;
  name?: string;
  tag?: string;
  layers: Descriptor[];
}

export type Manifest = ImageManifest | ImageIndex | Schema1Manifest;

/**
 * Manifest bytes as received, with the media type and digest that identify them. The digest is that
 * of the bytes, except for a Docker schema 1 manifest: there it is the digest of the canonical payload
 * (see `schema1Payload`), as registries compute it — such bytes are never written anywhere by ferry.
 */
export interface RawManifest {
  bytes: Uint8Array;
  mediaType: string;
  digest: Digest;
}

/** True for a Docker schema 1 manifest: by its media type, or by its JSON when the type says nothing. */
export function isSchema1(mediaType: string, bytes: Uint8Array): boolean {
  if (SCHEMA1_TYPES.has(mediaType)) return true;
  if (mediaType && isManifestType(mediaType)) return false;
  // a registry that sent no usable Content-Type: the JSON says
  try {
    const json = JSON.parse(Buffer.from(bytes).toString("utf8")) as unknown;
    return isObject(json) && json.schemaVersion === 1;
  } catch {
    return false;
  }
}

/**
 * The canonical payload of a Docker schema 1 manifest, which its digest is computed over. A signed
 * schema 1 manifest (`…v1+prettyjws`) is JSON with a `signatures` array spliced in (libtrust's "pretty
 * JWS"); registries sign it again on every GET, so the bytes — and a digest computed over them — change
 * from one read to the next. Each signature's protected header says how to undo the splice:
 * `formatLength` bytes of the original, then the base64url `formatTail` (the closing of the JSON). An
 * unsigned manifest is its own payload. `what` names the manifest in errors.
 */
export function schema1Payload(bytes: Uint8Array, mediaType: string, what: string): Uint8Array {
  const bad = (why: string) => new InvalidManifestError(`${what}: schema 1 signature block ${why}`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (e) {
    throw new InvalidManifestError(`${what}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(json)) throw new InvalidManifestError(`${what}: expected a JSON object`);
  if (json.signatures === undefined && mediaType !== MediaType.DockerSchema1Signed) return bytes;
  if (!Array.isArray(json.signatures) || json.signatures.length === 0) throw bad("has no signatures");
  let payload: Buffer | undefined;
  for (const sig of json.signatures) {
    let header: unknown;
    try {
      const protectedText = isObject(sig) && typeof sig.protected === "string" ? sig.protected : "";
      header = JSON.parse(Buffer.from(protectedText, "base64url").toString("utf8"));
    } catch {
      throw bad("has an unreadable protected header");
    }
    const length = isObject(header) ? header.formatLength : undefined;
    const tail = isObject(header) ? header.formatTail : undefined;
    if (!Number.isSafeInteger(length) || (length as number) < 0 || (length as number) > bytes.length)
      throw bad("has no valid formatLength");
    if (typeof tail !== "string") throw bad("has no formatTail");
    const p = Buffer.concat([
      Buffer.from(bytes.buffer, bytes.byteOffset, length as number),
      Buffer.from(tail, "base64url"),
    ]);
    // every signature must describe the same payload (libtrust refuses conflicting ones too)
    if (payload && !payload.equals(p)) throw bad("has signatures over different payloads");
    payload = p;
  }
  return payload!;
}

/**
 * Parses manifest bytes. `contentType` (from the HTTP header or descriptor) is used when the JSON
 * has no `mediaType` field; when both exist and disagree the JSON wins for OCI/Docker v2 types.
 */
export function parseManifest(bytes: Uint8Array, contentType?: string, what = "manifest"): Manifest {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new InvalidManifestError(
      `${what}: ${bytes.length} bytes is over the ${MAX_MANIFEST_BYTES}-byte manifest limit`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch (e) {
    throw new InvalidManifestError(`${what}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(json)) throw new InvalidManifestError(`${what}: expected a JSON object`);
  const header = normaliseMediaType(contentType);
  const declared = typeof json.mediaType === "string" ? json.mediaType : undefined;
  const schemaVersion = json.schemaVersion;

  if (schemaVersion === 1 || SCHEMA1_TYPES.has(header)) {
    const fsLayers = json.fsLayers;
    if (!Array.isArray(fsLayers))
      throw new InvalidManifestError(`${what}: schema 1 manifest without fsLayers`);
    const layers = fsLayers.map((l, i) => {
      const sum = isObject(l) ? l.blobSum : undefined;
      if (typeof sum !== "string") throw new InvalidManifestError(`${what}: fsLayers[${i}].blobSum missing`);
      return {
        mediaType: MediaType.DockerLayerGzip,
        digest: digestField(sum, `${what}: fsLayers[${i}].blobSum`),
        size: -1,
      };
    });
    return {
      kind: "schema1",
      schemaVersion: 1,
      mediaType: SCHEMA1_TYPES.has(header) ? header : MediaType.DockerSchema1Signed,
      ...(typeof json.name === "string" ? { name: json.name } : {}),
      ...(typeof json.tag === "string" ? { tag: json.tag } : {}),
      // schema 1 lists layers top-most first; keep registry order, de-duplicated by the caller
      layers,
    };
  }
  if (schemaVersion !== 2)
    throw new InvalidManifestError(`${what}: unsupported schemaVersion ${JSON.stringify(schemaVersion)}`);

  const mediaType = declared ?? (header || undefined);
  const isIndex = mediaType
    ? INDEX_TYPES.has(mediaType)
    : Array.isArray(json.manifests) && !("config" in json);
  if (isIndex) {
    if (!Array.isArray(json.manifests))
      throw new InvalidManifestError(`${what}: index without a manifests array`);
    return {
      kind: "index",
      schemaVersion: 2,
      mediaType: mediaType ?? MediaType.OciIndex,
      manifests: json.manifests.map((d, i) => parseDescriptor(d, `${what}: manifests[${i}]`)),
      ...optionalCommon(json, what),
    };
  }
  if (!("config" in json)) throw new InvalidManifestError(`${what}: image manifest without config`);
  if (!Array.isArray(json.layers))
    throw new InvalidManifestError(`${what}: image manifest without a layers array`);
  if (mediaType && !(mediaType === MediaType.OciManifest || mediaType === MediaType.DockerManifest)) {
    throw new InvalidManifestError(`${what}: unsupported manifest media type "${mediaType}"`);
  }
  return {
    kind: "manifest",
    schemaVersion: 2,
    mediaType: mediaType ?? MediaType.OciManifest,
    config: parseDescriptor(json.config, `${what}: config`),
    layers: json.layers.map((d, i) => parseDescriptor(d, `${what}: layers[${i}]`)),
    ...optionalCommon(json, what),
  };
}

/** Descriptors a manifest depends on: config and layers for an image, child manifests for an index. */
export function referencedBlobs(m: Manifest): Descriptor[] {
  if (m.kind === "index") return [];
  if (m.kind === "schema1") return m.layers;
  return [m.config, ...m.layers];
}

/** Validates and normalises one descriptor. */
export function parseDescriptor(value: unknown, what: string): Descriptor {
  if (!isObject(value)) throw new InvalidManifestError(`${what}: expected a descriptor object`);
  const { mediaType, digest, size } = value;
  if (typeof mediaType !== "string" || !mediaType)
    throw new InvalidManifestError(`${what}: missing mediaType`);
  if (typeof digest !== "string") throw new InvalidManifestError(`${what}: missing digest`);
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidManifestError(`${what}: size must be a non-negative integer`);
  }
  const d: Descriptor = { mediaType, digest: digestField(digest, what), size };
  if (Array.isArray(value.urls)) d.urls = value.urls.filter((u): u is string => typeof u === "string");
  if (isObject(value.annotations)) d.annotations = value.annotations as Record<string, string>;
  if (typeof value.artifactType === "string") d.artifactType = value.artifactType;
  if (isObject(value.platform)) {
    const p = value.platform;
    if (typeof p.os !== "string" || typeof p.architecture !== "string") {
      throw new InvalidManifestError(`${what}: platform needs os and architecture`);
    }
    d.platform = p as unknown as Platform;
  }
  return d;
}

function optionalCommon(json: Record<string, unknown>, what: string) {
  return {
    ...(json.subject !== undefined ? { subject: parseDescriptor(json.subject, `${what}: subject`) } : {}),
    ...(typeof json.artifactType === "string" ? { artifactType: json.artifactType } : {}),
    ...(isObject(json.annotations) ? { annotations: json.annotations as Record<string, string> } : {}),
  };
}

function digestField(value: string, what: string): Digest {
  try {
    return parseDigest(value);
  } catch (e) {
    throw new InvalidManifestError(`${what}: ${(e as Error).message}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `os/arch[/variant]` for display and matching. */
export function formatPlatform(p: Platform | undefined): string {
  if (!p) return "unknown";
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/** Parses `os/arch[/variant]` as given to `--platform`. */
export function parsePlatform(s: string): Platform {
  const parts = s.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/i.test(p))) {
    throw new InvalidManifestError(`invalid platform "${s}": expected os/arch[/variant], e.g. linux/arm64`);
  }
  return { os: parts[0]!, architecture: parts[1]!, ...(parts[2] ? { variant: parts[2] } : {}) };
}

/** True when `candidate` satisfies `wanted` (a missing variant in `wanted` matches any variant). */
export function platformMatches(wanted: Platform, candidate: Platform | undefined): boolean {
  if (!candidate) return false;
  return (
    wanted.os === candidate.os &&
    wanted.architecture === candidate.architecture &&
    (!wanted.variant || wanted.variant === candidate.variant)
  );
}
