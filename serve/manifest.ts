/**
 * Parsing and structural validation of pushed manifests: OCI image manifest and index, Docker
 * schema2 manifest and manifest list. Schema1 is not accepted (as in CNCF distribution 3).
 */
import { RegistryError } from "./errors.ts";
import { parseDigest } from "./names.ts";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
export const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";

const KINDS: Record<string, "manifest" | "index"> = {
  [OCI_MANIFEST]: "manifest",
  [DOCKER_MANIFEST]: "manifest",
  [OCI_INDEX]: "index",
  [DOCKER_LIST]: "index",
};

/** Content-Type values that say nothing about the manifest kind: the `mediaType` field decides. */
const GENERIC_TYPES = new Set(["", "application/json", "application/octet-stream", "text/plain"]);

/** A content descriptor as it appears in a manifest. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** What the registry needs to know about a pushed manifest. */
export interface ParsedManifest {
  mediaType: string;
  kind: "manifest" | "index";
  /** Blobs that must be present in the repository (config and layers, foreign layers excluded). */
  blobs: Descriptor[];
  /** Manifests an index points at, which must be present in the repository. */
  children: Descriptor[];
  subject?: Descriptor;
  /** For the referrers API: `artifactType`, else (image manifests) the config media type. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

function invalid(message: string, detail?: unknown): RegistryError {
  return new RegistryError("MANIFEST_INVALID", { message: `manifest invalid: ${message}`, detail });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkAnnotations(v: unknown, where: string): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v) || !Object.values(v).every((x) => typeof x === "string")) {
    throw invalid(`${where}annotations must map strings to strings`);
  }
  return v as Record<string, string>;
}

function checkDescriptor(v: unknown, where: string): Descriptor {
  if (!isObject(v)) throw invalid(`${where} is not a descriptor`);
  if (typeof v.mediaType !== "string" || v.mediaType === "") throw invalid(`${where}.mediaType is missing`);
  if (typeof v.digest !== "string" || !parseDigest(v.digest)) {
    throw invalid(`${where}.digest is not a valid digest`, { digest: v.digest });
  }
  if (typeof v.size !== "number" || !Number.isSafeInteger(v.size) || v.size < 0) {
    throw invalid(`${where}.size is not a non-negative integer`);
  }
  if (v.urls !== undefined && (!Array.isArray(v.urls) || !v.urls.every((u) => typeof u === "string"))) {
    throw invalid(`${where}.urls must be an array of strings`);
  }
  if (v.artifactType !== undefined && typeof v.artifactType !== "string") {
    throw invalid(`${where}.artifactType must be a string`);
  }
  checkAnnotations(v.annotations, `${where}.`);
  return v as unknown as Descriptor;
}

/** Layers that clients fetch from their `urls`, never from the registry: not required to exist. */
function isForeign(d: Descriptor): boolean {
  return (
    (d.urls?.length ?? 0) > 0 &&
    (d.mediaType.startsWith("application/vnd.docker.image.rootfs.foreign.") ||
      d.mediaType.includes(".nondistributable."))
  );
}

/**
 * Parses and validates manifest bytes. The media type comes from the `Content-Type` header when it
 * names a manifest type, else from the `mediaType` field, else from the shape of the document;
 * a `mediaType` field that contradicts the header is refused.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw invalid("not valid JSON");
  }
  if (!isObject(doc)) throw invalid("not a JSON object");
  const headerType = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  const field = doc.mediaType;
  if (field !== undefined && typeof field !== "string") throw invalid("mediaType must be a string");

  let mediaType: string;
  if (!GENERIC_TYPES.has(headerType)) {
    mediaType = headerType;
    if (field !== undefined && field !== headerType) {
      throw invalid(`mediaType field ${field} does not match Content-Type ${headerType}`);
    }
  } else if (field !== undefined) {
    mediaType = field;
  } else {
    mediaType = Array.isArray(doc.manifests) ? OCI_INDEX : OCI_MANIFEST;
  }
  const kind = KINDS[mediaType];
  if (!kind) {
    throw new RegistryError("MANIFEST_INVALID", {
      message: `unsupported manifest media type ${mediaType}`,
      detail: { mediaType },
    });
  }
  if (doc.schemaVersion !== 2) throw invalid("schemaVersion must be 2");
  if (doc.artifactType !== undefined && typeof doc.artifactType !== "string") {
    throw invalid("artifactType must be a string");
  }
  const annotations = checkAnnotations(doc.annotations, "");
  const subject = doc.subject === undefined ? undefined : checkDescriptor(doc.subject, "subject");
  const parsed: ParsedManifest = { mediaType, kind, blobs: [], children: [] };
  if (subject) parsed.subject = subject;
  if (annotations) parsed.annotations = annotations;

  if (kind === "manifest") {
    const config = checkDescriptor(doc.config, "config");
    if (!Array.isArray(doc.layers)) throw invalid("layers must be an array");
    const layers = doc.layers.map((l, i) => checkDescriptor(l, `layers[${i}]`));
    parsed.blobs = [config, ...layers.filter((l) => !isForeign(l))];
    parsed.artifactType = typeof doc.artifactType === "string" ? doc.artifactType : config.mediaType;
  } else {
    if (!Array.isArray(doc.manifests)) throw invalid("manifests must be an array");
    parsed.children = doc.manifests.map((m, i) => checkDescriptor(m, `manifests[${i}]`));
    if (typeof doc.artifactType === "string") parsed.artifactType = doc.artifactType;
  }
  return parsed;
}
