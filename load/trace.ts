/**
 * Registry traces in the IBM format (Anwar et al., FAST '18; the traces of chalianwar/docker-performance):
 * JSON arrays of request records taken from CNCF distribution's logs, one file per log slice. Each record:
 *
 *   http.request.method       "GET" | "PUT" | "HEAD" | …
 *   http.request.uri          "v2/<user>/<repo>/blobs/<id>" or ".../manifests/<id>" (anonymised; a leading
 *                             "/" and a query string are allowed)
 *   http.response.written     bytes (for a PUT: the bytes pushed, as the IBM replayer reads it)
 *   http.request.duration     seconds, as recorded (informational)
 *   http.request.remoteaddr   the client ("host:port" or an anonymised id)
 *   http.response.status      HTTP status
 *   timestamp                 ISO 8601 with fractional seconds, e.g. 2017-06-20T02:41:18.123Z
 *
 * Records may come unsorted and from several files; they are merged and sorted by time. Records that are
 * not a GET or PUT of a manifest or blob (HEADs, tag lists, uploads' POST/PATCH), errors (status ≥ 400)
 * and records of no size (`written` ≤ 0) are skipped and counted by reason. A malformed file or record
 * (bad JSON, a missing field, a bad timestamp) is refused with one error naming the file and the record.
 */
import { createHash } from "node:crypto";
import { FerryError } from "../shared/registry/errors.ts";
import { readUserFile } from "./input.ts";

export type TraceMethod = "GET" | "PUT";
export type TraceKind = "blob" | "manifest";

/** One usable request of a trace, normalised. */
export interface TraceRecord {
  /** Milliseconds after the first usable record (before any limit). */
  at: number;
  method: TraceMethod;
  kind: TraceKind;
  /** `v2/<name>/<blobs|manifests>/<id>`: no leading slash, no query. */
  uri: string;
  /** Bytes (GET: the response body; PUT: the bytes pushed). */
  size: number;
  /** The trace client (remoteaddr without a port). */
  client: string;
  /** The recorded duration, milliseconds. */
  durationMs: number;
}

export const SKIP_REASONS = ["method", "path", "status", "size"] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

/** What each skip reason means, for reports. */
export const SKIP_TEXT: Record<SkipReason, string> = {
  method: "not a GET or PUT (HEAD, POST, PATCH, DELETE…)",
  path: "not a manifest or blob (tag lists, catalog, /v2/, upload sessions)",
  status: "an error (status 400 or more)",
  size: "no size (written ≤ 0)",
};

export interface TraceLimits {
  /** Keep the records of the first N seconds (offsets ≤ N s), as the IBM replayer's `seconds` limit. */
  limitSeconds?: number;
  /** Keep the first N usable records. */
  limitRequests?: number;
}

export interface LoadedTrace {
  files: string[];
  /** Records read, over every file. */
  read: number;
  /** Usable records, sorted by time, within the limits. */
  records: TraceRecord[];
  skipped: Record<SkipReason, number>;
  /** Usable records left out by --limit-seconds / --limit-requests. */
  limited: number;
  /** Offset of the last record kept, ms. */
  spanMs: number;
  /** Identifies the records kept (time, method, URI, size, client): two runs replayed the same trace iff equal. */
  fingerprint: string;
}

/** The fields every record carries, in the IBM traces and in `ferry bench trace convert`'s output. */
export const TRACE_FIELDS = [
  "http.request.method",
  "http.request.uri",
  "http.response.written",
  "http.request.duration",
  "http.request.remoteaddr",
  "http.response.status",
  "timestamp",
] as const;

/** A record as written to a trace file (convert and synth write these). */
export interface RawTraceRecord {
  "http.request.method": string;
  "http.request.uri": string;
  "http.response.written": number;
  "http.request.duration": number;
  "http.request.remoteaddr": string;
  "http.response.status": number;
  timestamp: string;
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Epoch milliseconds (with the fraction below a millisecond) of an ISO 8601 time with an explicit zone;
 * undefined when it is not one or names an impossible date. Date.parse would drop digits past the
 * millisecond and accept many other spellings.
 */
export function parseIsoTime(text: string): number | undefined {
  const m = ISO.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = "", zone] = m;
  const whole = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const check = new Date(whole);
  if (
    check.getUTCFullYear() !== Number(y) ||
    check.getUTCMonth() !== Number(mo) - 1 ||
    check.getUTCDate() !== Number(d) ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(s) > 59
  )
    return undefined;
  let offsetMin = 0;
  if (zone !== "Z") {
    const sign = zone!.startsWith("-") ? -1 : 1;
    offsetMin = sign * (Number(zone!.slice(1, 3)) * 60 + Number(zone!.slice(4, 6)));
  }
  return whole + (frac ? Number(`0.${frac}`) * 1000 : 0) - offsetMin * 60_000;
}

/** ISO 8601 UTC with microseconds, from epoch milliseconds (fractional). */
export function formatIsoTime(ms: number): string {
  const whole = Math.floor(ms / 1000) * 1000;
  const micros = Math.round((ms - whole) * 1000);
  const base = new Date(whole + (micros >= 1e6 ? 1000 : 0)).toISOString().slice(0, 19);
  return `${base}.${String(micros % 1_000_000).padStart(6, "0")}Z`;
}

/** `v2/<name>/blobs/<id>` → blob, `…/manifests/<ref>` → manifest; upload sessions and the rest: undefined. */
export function classifyUri(uri: string): { uri: string; kind: TraceKind; upload: boolean } | undefined {
  const path = uri.split("?")[0]!.replace(/^\/+/, "");
  const m = /^v2\/(.+)\/(blobs|manifests)\/([^/]+)$/.exec(path);
  if (m) return { uri: path, kind: m[2] === "blobs" ? "blob" : "manifest", upload: false };
  if (/^v2\/.+\/blobs\/uploads\/[^/]+$/.test(path)) return { uri: path, kind: "blob", upload: true };
  return undefined;
}

/** The client of a remote address: "10.1.2.3:5123" → "10.1.2.3", "[::1]:80" → "[::1]"; anything else as is. */
export function clientOf(remoteaddr: string): string {
  const m = /^(\[[^\]]*\]|[^:[\]]+):\d+$/.exec(remoteaddr);
  return m ? m[1]! : remoteaddr;
}

function bad(file: string, index: number, what: string): FerryError {
  return new FerryError("USAGE", `trace ${file}: record ${index + 1}: ${what}`);
}

/** Line and column of a character offset, for JSON errors. */
function lineCol(text: string, pos: number): string {
  const before = text.slice(0, pos);
  const line = before.split("\n").length;
  return `line ${line}, column ${pos - before.lastIndexOf("\n")}`;
}

interface Parsed {
  time: number;
  record: TraceRecord | undefined;
  skip?: SkipReason;
}

/** Validates one record; throws naming the file and the record (1-based). */
function parseRecord(file: string, index: number, r: unknown): Parsed {
  if (typeof r !== "object" || r === null || Array.isArray(r))
    throw bad(file, index, `expected an object, got ${Array.isArray(r) ? "an array" : JSON.stringify(r)}`);
  const o = r as Record<string, unknown>;
  for (const f of TRACE_FIELDS) if (!(f in o)) throw bad(file, index, `missing "${f}"`);
  const str = (f: string) => {
    const v = o[f];
    if (typeof v !== "string" || v === "") throw bad(file, index, `"${f}" must be a non-empty string`);
    return v;
  };
  const num = (f: string) => {
    const v = o[f];
    if (typeof v !== "number" || !Number.isFinite(v)) throw bad(file, index, `"${f}" must be a number`);
    return v;
  };
  const method = str("http.request.method").toUpperCase();
  const rawUri = str("http.request.uri");
  const written = num("http.response.written");
  const duration = num("http.request.duration");
  if (duration < 0) throw bad(file, index, `"http.request.duration" must not be negative`);
  const remote = str("http.request.remoteaddr");
  const status = num("http.response.status");
  if (!Number.isInteger(status) || status < 100 || status > 599)
    throw bad(file, index, `"http.response.status" must be an HTTP status (got ${status})`);
  const ts = str("timestamp");
  const time = parseIsoTime(ts);
  if (time === undefined)
    throw bad(
      file,
      index,
      `"timestamp" is not an ISO 8601 time such as 2017-06-20T02:41:18.123Z (got ${JSON.stringify(ts.slice(0, 60))})`,
    );
  if (method !== "GET" && method !== "PUT") return { time, record: undefined, skip: "method" };
  const c = classifyUri(rawUri);
  // A GET of an upload session is a status query; a PUT to one completes a blob push.
  if (!c || (c.upload && method === "GET")) return { time, record: undefined, skip: "path" };
  if (status >= 400) return { time, record: undefined, skip: "status" };
  if (written <= 0) return { time, record: undefined, skip: "size" };
  return {
    time,
    record: {
      at: time,
      method,
      kind: c.kind,
      uri: c.uri,
      size: Math.round(written),
      client: clientOf(remote),
      durationMs: duration * 1000,
    },
  };
}

/** The records of one trace file's text: usable ones (with absolute times) and skip counts. */
export function parseTraceText(
  file: string,
  text: string,
): { read: number; records: TraceRecord[]; skipped: Record<SkipReason, number> } {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const pos = /position (\d+)/.exec(msg);
    throw new FerryError(
      "USAGE",
      `trace ${file}: not valid JSON${pos ? ` at ${lineCol(text, Number(pos[1]))}` : ""}: ${msg
        .replace(/\s*\(line \d+ column \d+\)$/, "")
        .replace(/\s+/g, " ")
        .slice(0, 200)}`,
    );
  }
  if (!Array.isArray(data))
    throw new FerryError("USAGE", `trace ${file}: expected a JSON array of request records`);
  const skipped = Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>;
  const records: TraceRecord[] = [];
  data.forEach((r, i) => {
    const p = parseRecord(file, i, r);
    if (p.record) records.push(p.record);
    else skipped[p.skip!]++;
  });
  return { read: data.length, records, skipped };
}

/**
 * Reads trace files, merges and sorts their usable records (offsets from the first one), applies the
 * limits. An unreadable or malformed file is a usage error naming it.
 */
export async function loadTrace(files: string[], limits: TraceLimits = {}): Promise<LoadedTrace> {
  const parts = await Promise.all(
    files.map(async (file) => {
      const text = await readUserFile(file, "trace");
      return parseTraceText(file, text);
    }),
  );
  return assembleTrace(files, parts, limits);
}

/** Merges parsed files: sorted by time (stable: file order, then record order), offsets, limits. */
export function assembleTrace(
  files: string[],
  parts: { read: number; records: TraceRecord[]; skipped: Record<SkipReason, number> }[],
  limits: TraceLimits = {},
): LoadedTrace {
  const skipped = Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>;
  for (const p of parts) for (const r of SKIP_REASONS) skipped[r] += p.skipped[r];
  const all = parts.flatMap((p) => p.records);
  all.sort((a, b) => a.at - b.at);
  const first = all[0]?.at ?? 0;
  for (const r of all) r.at -= first;
  let kept = all;
  if (limits.limitSeconds !== undefined) {
    const cut = limits.limitSeconds * 1000;
    kept = kept.filter((r) => r.at <= cut);
  }
  if (limits.limitRequests !== undefined) kept = kept.slice(0, limits.limitRequests);
  const hash = createHash("sha256");
  for (const r of kept) hash.update(`${r.at.toFixed(3)}|${r.method}|${r.uri}|${r.size}|${r.client}\n`);
  return {
    files,
    read: parts.reduce((a, p) => a + p.read, 0),
    records: kept,
    skipped,
    limited: all.length - kept.length,
    spanMs: kept.at(-1)?.at ?? 0,
    fingerprint: `sha256:${hash.digest("hex")}`,
  };
}
