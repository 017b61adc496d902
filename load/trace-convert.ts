/**
 * `ferry bench trace convert`: a CNCF distribution registry's own logs → a trace in the IBM format
 * (trace.ts), so a team can record its registry's traffic and replay it against another.
 *
 * Input, per file (the first that applies):
 * - JSON logs (`log.formatter: json`): each "response completed" (or "… with error") line carries the
 *   method, URI, remote address, status, bytes written, `http.response.duration` (a Go duration such as
 *   "9.93ms") and `time` (when the response completed).
 * - Access-log lines (`127.0.0.1 - - [06/Dec/2026:03:46:44 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "ua"`),
 *   when that is all a file has: one-second times, no durations. (distribution writes both when its
 *   access log is on; the JSON lines are then used and the access lines, the same requests, ignored.)
 *
 * Records are written with `timestamp` = when the request started (the log's time minus its duration).
 *
 * A blob push (POST, PATCHes, PUT ?digest=) becomes ONE PUT record of `v2/<name>/blobs/<digest>`: its size
 * is that of a GET of the same blob in the logs, else the bytes the PATCHes sent before the final PUT (the
 * `Offset` distribution keeps in the upload URL's `_state`); a push of a size the logs do not tell
 * (a monolithic PUT never read back) is written with `written` 0 and so skipped by the replay, and counted
 * here. A manifest PUT takes the size of a GET of the same manifest. Mount POSTs are left out (no bytes).
 *
 * Secure by default: repository names, references, digests and client addresses are replaced by keyed
 * hashes (a random key per conversion, never written): the trace keeps the traffic's shape — which
 * requests hit the same object, from the same client — and nothing else. `--keep-names` keeps them.
 */
import { createHmac, randomBytes } from "node:crypto";
import { FerryError } from "../shared/registry/errors.ts";
import { readUserFile } from "./input.ts";
import { classifyUri, clientOf, formatIsoTime, parseIsoTime, type RawTraceRecord } from "./trace.ts";

/** Go's time.Duration text ("1h2m3.5s", "9.93ms", "896.091µs", "12ns") → seconds; undefined if not one. */
export function parseGoDuration(text: string): number | undefined {
  if (text === "0") return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  const unit: Record<string, number> = {
    ns: 1e-9,
    us: 1e-6,
    µs: 1e-6,
    μs: 1e-6,
    ms: 1e-3,
    s: 1,
    m: 60,
    h: 3600,
  };
  let total = 0;
  let pos = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * unit[m[2]!]!;
    pos = re.lastIndex;
  }
  return pos === text.length && pos > 0 ? total : undefined;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `06/Dec/2026:03:46:44 +0000` (Apache's common log time) → epoch ms. */
export function parseAccessTime(text: string): number | undefined {
  const m = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text);
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[2]!) + 1;
  if (month === 0) return undefined;
  const p = (n: number) => String(n).padStart(2, "0");
  return parseIsoTime(`${m[3]}-${p(month)}-${m[1]}T${m[4]}:${m[5]}:${m[6]}${m[7]}${m[8]}:${m[9]}`);
}

const ACCESS_LINE = /^(\S+) \S+ \S+ \[([^\]]+)\] "([A-Z]+) (\S+) [^"]*" (\d{3}) (\d+|-)/;

/** One request as the logs tell it, before pushes are folded. */
interface LoggedRequest {
  file: string;
  line: number;
  method: string;
  uri: string;
  remote: string;
  status: number;
  written: number;
  /** Seconds; 0 when the log does not tell. */
  duration: number;
  /** When the response completed, epoch ms. */
  time: number;
}

function lineError(file: string, line: number, what: string): FerryError {
  return new FerryError("USAGE", `log ${file}: line ${line}: ${what}`);
}

/** The "response completed" record of a JSON log line; undefined for every other line. */
function fromJsonLine(file: string, n: number, line: string): LoggedRequest | undefined {
  const start = line.indexOf("{");
  if (start < 0 || !line.includes('"response completed')) return undefined;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line.slice(start)) as Record<string, unknown>;
  } catch {
    return undefined; // not a JSON record (a text line that mentions the message)
  }
  if (typeof o.msg !== "string" || !o.msg.startsWith("response completed")) return undefined;
  const need = (f: string, type: "string" | "number") => {
    if (typeof o[f] !== type)
      throw lineError(file, n, `"response completed" record without a ${type} "${f}"`);
    return o[f] as never;
  };
  const method: string = need("http.request.method", "string");
  const uri: string = need("http.request.uri", "string");
  const remote: string = need("http.request.remoteaddr", "string");
  const status: number = need("http.response.status", "number");
  const written: number = typeof o["http.response.written"] === "number" ? o["http.response.written"] : 0;
  const durationText: string = need("http.response.duration", "string");
  const duration = parseGoDuration(durationText);
  if (duration === undefined)
    throw lineError(
      file,
      n,
      `"http.response.duration" is not a duration (got ${JSON.stringify(durationText)})`,
    );
  const timeText: string = need("time", "string");
  const time = parseIsoTime(timeText);
  if (time === undefined)
    throw lineError(file, n, `"time" is not an ISO 8601 time (got ${JSON.stringify(timeText.slice(0, 60))})`);
  return { file, line: n, method, uri, remote, status, written, duration, time };
}

function fromAccessLine(file: string, n: number, line: string): LoggedRequest | undefined {
  const m = ACCESS_LINE.exec(line);
  if (!m) return undefined;
  const time = parseAccessTime(m[2]!);
  if (time === undefined)
    throw lineError(file, n, `access log time "${m[2]}" is not dd/Mon/yyyy:hh:mm:ss +zzzz`);
  return {
    file,
    line: n,
    method: m[3]!,
    uri: m[4]!,
    remote: m[1]!,
    status: Number(m[5]),
    written: m[6] === "-" ? 0 : Number(m[6]),
    duration: 0,
    time,
  };
}

/** Requests of one log file (JSON records if it has any, else access-log lines). */
export function parseLogText(file: string, text: string): { requests: LoggedRequest[]; other: number } {
  const lines = text.split("\n");
  const json: LoggedRequest[] = [];
  const access: LoggedRequest[] = [];
  let textCompleted = 0;
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const j = fromJsonLine(file, i + 1, line);
    if (j) {
      json.push(j);
      return;
    }
    const a = fromAccessLine(file, i + 1, line);
    if (a) access.push(a);
    else if (/msg="response completed/.test(line)) textCompleted++;
  });
  const requests = json.length ? json : access;
  if (requests.length === 0)
    throw new FerryError(
      "USAGE",
      textCompleted
        ? `log ${file}: its requests are logged as text: set the registry's log.formatter to json (or enable its access log) and record again`
        : `log ${file}: no "response completed" JSON records and no access log lines (run the registry with log.formatter: json and log.level: info)`,
    );
  return { requests, other: lines.filter((l) => l.trim()).length - requests.length };
}

export interface ConvertSummary {
  files: number;
  /** Requests found in the logs. */
  requests: number;
  /** Records written. */
  records: number;
  byMethod: Record<string, number>;
  /** Blob pushes (one PUT record each) and the POST/PATCH requests folded into them. */
  pushes: number;
  folded: number;
  /** Pushes whose size the logs do not tell (written 0: the replay skips them). */
  unknownSize: number;
  /** Log lines that are not requests (other messages, duplicate access lines). */
  otherLines: number;
  anonymised: boolean;
}

/** The byte offset an upload URL's `_state` records (distribution: HMAC + JSON {Name, UUID, Offset, …}). */
export function uploadStateOffset(uri: string): number | undefined {
  const q = uri.split("?")[1];
  if (!q) return undefined;
  const state = new URLSearchParams(q).get("_state");
  if (!state) return undefined;
  const bytes = Buffer.from(state, "base64url").toString("latin1");
  const start = bytes.indexOf("{");
  if (start < 0) return undefined;
  try {
    const offset = (JSON.parse(bytes.slice(start)) as { Offset?: unknown }).Offset;
    return typeof offset === "number" && offset >= 0 ? offset : undefined;
  } catch {
    return undefined;
  }
}

/** Keyed pseudonyms (HMAC-SHA-256 under a random key): stable within one conversion, not reversible. */
function anonymiser(keep: boolean) {
  const key = randomBytes(32);
  const h = (kind: string, s: string, n: number) =>
    createHmac("sha256", key).update(`${kind}\0${s}`).digest("hex").slice(0, n);
  return {
    name: (name: string) => (keep ? name : `u${h("user", name, 8)}/r${h("repo", name, 10)}`),
    ref: (ref: string) =>
      keep ? ref : ref.startsWith("sha256:") ? `sha256:${h("ref", ref, 64)}` : h("ref", ref, 16),
    client: (c: string) => (keep ? c : `client-${h("client", c, 12)}`),
  };
}

/**
 * Converts parsed log requests into trace records (sorted by start time). Pure but for the random
 * anonymisation key.
 */
export function convertRequests(
  requests: LoggedRequest[],
  opts: { keepNames?: boolean } = {},
): { records: RawTraceRecord[]; summary: Omit<ConvertSummary, "files" | "otherLines"> } {
  const anon = anonymiser(opts.keepNames === true);
  // Sizes the logs tell: GETs of blobs by digest and of manifests by reference.
  const getSize = new Map<string, number>();
  for (const r of requests) {
    const c = classifyUri(r.uri);
    if (r.method === "GET" && c && !c.upload && r.status === 200 && r.written > 0)
      getSize.set(c.uri, Math.max(getSize.get(c.uri) ?? 0, r.written));
  }
  const records: { start: number; rec: RawTraceRecord }[] = [];
  const byMethod: Record<string, number> = {};
  let pushes = 0;
  let folded = 0;
  let unknownSize = 0;
  const path = (uri: string) => uri.split("?")[0]!.replace(/^\/+/, "");
  const anonUri = (p: string) => {
    const m = /^v2\/(.+)\/(blobs|manifests|tags)\/([^/]+)$/.exec(p);
    if (m) return `v2/${anon.name(m[1]!)}/${m[2]}/${anon.ref(m[3]!)}`;
    const t = /^v2\/(.+)\/(tags\/list|blobs\/uploads\/?.*|referrers\/.*)$/.exec(p);
    if (t) return `v2/${anon.name(t[1]!)}/${t[2]!.replace(/uploads\/.+$/, "uploads/-")}`;
    return p;
  };
  for (const r of requests) {
    const p = path(r.uri);
    const upload = /^v2\/(.+)\/blobs\/uploads\/?([^/]*)$/.exec(p);
    const start = r.time - r.duration * 1000;
    let uri = anonUri(p);
    const method = r.method.toUpperCase();
    let written = r.written;
    if (upload) {
      const digest = new URLSearchParams(r.uri.split("?")[1] ?? "").get("digest");
      if (r.method === "PUT" && digest && r.status < 400) {
        // the completion of a push: one PUT record of the blob
        pushes++;
        const blobUri = `v2/${upload[1]}/blobs/${digest}`;
        written = getSize.get(blobUri) ?? uploadStateOffset(r.uri) ?? 0;
        if (written <= 0) unknownSize++;
        uri = anonUri(blobUri);
      } else if (r.method === "POST" || r.method === "PATCH" || r.method === "PUT") {
        if (r.status < 400 || r.method !== "PUT") {
          folded++;
          continue;
        }
      }
    } else if (r.method === "PUT" && /\/manifests\//.test(p) && r.status < 400) {
      written = getSize.get(p) ?? 0;
    }
    byMethod[method] = (byMethod[method] ?? 0) + 1;
    records.push({
      start,
      rec: {
        "http.request.method": method,
        "http.request.uri": uri,
        "http.response.written": written,
        "http.request.duration": r.duration,
        "http.request.remoteaddr": anon.client(clientOf(r.remote)),
        "http.response.status": r.status,
        timestamp: formatIsoTime(start),
      },
    });
  }
  records.sort((a, b) => a.start - b.start);
  return {
    records: records.map((r) => r.rec),
    summary: {
      requests: requests.length,
      records: records.length,
      byMethod,
      pushes,
      folded,
      unknownSize,
      anonymised: opts.keepNames !== true,
    },
  };
}

/** Reads and converts log files. */
export async function convertLogs(
  files: string[],
  opts: { keepNames?: boolean } = {},
): Promise<{ records: RawTraceRecord[]; summary: ConvertSummary }> {
  const parsed = await Promise.all(
    files.map(async (file) => {
      const text = await readUserFile(file, "log");
      return parseLogText(file, text);
    }),
  );
  const { records, summary } = convertRequests(
    parsed.flatMap((p) => p.requests),
    opts,
  );
  return {
    records,
    summary: { ...summary, files: files.length, otherLines: parsed.reduce((a, p) => a + p.other, 0) },
  };
}

/** A trace file's text: one record per line, so that it reads and diffs well. */
export function traceText(records: RawTraceRecord[]): string {
  return records.length ? `[\n${records.map((r) => JSON.stringify(r)).join(",\n")}\n]\n` : "[]\n";
}
