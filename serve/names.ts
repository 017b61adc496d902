/**
 * Grammar checks for everything that ends up in a file path (repository names, tags, digests,
 * upload ids) and parsers for the byte-range headers. Nothing here touches the disk.
 */
import { RegistryError } from "./errors.ts";

/** One path component of a repository name (distribution-spec, "Pulling manifests"). */
const NAME_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*";
const NAME_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Longest accepted repository name, as in CNCF distribution. */
export const MAX_NAME_LENGTH = 255;

/** Digest algorithms accepted, with the length of their hex encoding. */
export const DIGEST_ALGORITHMS = { sha256: 64, sha512: 128 } as const;
export type DigestAlgorithm = keyof typeof DIGEST_ALGORITHMS;

/** A parsed `algorithm:hex` digest. */
export interface Digest {
  algorithm: DigestAlgorithm;
  hex: string;
  /** The canonical `algorithm:hex` string. */
  value: string;
}

/** True when `name` is a valid repository name (raw, never percent-decoded). */
export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

/** Returns `name` or throws NAME_INVALID. */
export function checkName(name: string): string {
  if (!isValidName(name)) throw new RegistryError("NAME_INVALID", { detail: { name: name.slice(0, 300) } });
  return name;
}

/** True when `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. */
export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** True for a lower-case RFC 4122 UUID, the only form of upload id this server hands out. */
export function isValidUploadId(id: string): boolean {
  return UUID_RE.test(id);
}

/** Parses a digest or returns undefined. Only sha256 and sha512 with lower-case hex are accepted. */
export function parseDigest(value: string): Digest | undefined {
  const colon = value.indexOf(":");
  if (colon < 0) return undefined;
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  if (algorithm !== "sha256" && algorithm !== "sha512") return undefined;
  if (hex.length !== DIGEST_ALGORITHMS[algorithm] || !/^[0-9a-f]+$/.test(hex)) return undefined;
  return { algorithm, hex, value };
}

/** Parses a digest or throws DIGEST_INVALID. */
export function requireDigest(value: string | null | undefined): Digest {
  const digest = value ? parseDigest(value) : undefined;
  if (!digest)
    throw new RegistryError("DIGEST_INVALID", { message: "invalid digest", detail: { digest: value } });
  return digest;
}

/** True when the string looks like a digest (has an algorithm prefix), valid or not. */
export function looksLikeDigest(reference: string): boolean {
  return reference.includes(":");
}

/**
 * Parses an upload `Content-Range: <start>-<end>` (inclusive; the spec's form has no unit, a
 * `bytes ` or `bytes=` prefix is tolerated). Returns undefined when malformed.
 */
export function parseContentRange(header: string): { start: number; end: number } | undefined {
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return undefined;
  return { start, end };
}

/** Result of interpreting a request `Range` header against a blob of `size` bytes. */
export type RangeResult =
  | { kind: "full" }
  | { kind: "partial"; start: number; end: number }
  | { kind: "unsatisfiable" };

/**
 * Interprets `Range: bytes=a-b`, `bytes=a-` and `bytes=-n`. Anything else (other units, several
 * ranges, garbage) is ignored and the whole blob is served, as RFC 9110 allows.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (!header) return { kind: "full" };
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return { kind: "full" };
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "partial", start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  let end = m[2] === "" ? size - 1 : Number(m[2]);
  if (m[2] !== "" && end < start) return { kind: "full" };
  if (start >= size) return { kind: "unsatisfiable" };
  if (end >= size) end = size - 1;
  return { kind: "partial", start, end };
}
