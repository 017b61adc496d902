/**
 * Load-test metrics: per HTTP operation and per iteration kind, an HDR histogram of latencies
 * (microseconds, 3 significant digits), counters (count, failures, bytes, HTTP statuses, OCI error codes)
 * and a per-second time series (counts, failures, bytes and a 2-digit histogram per second).
 *
 * Everything leaves a worker serialised (`encodeIntoCompressedBase64` + plain counters) and every report
 * — one worker or many — is built from the merge of serialised results, so the merge path is the only
 * path and is exact: HDR histograms of equal precision add bucket by bucket, counters add.
 */

import type { Histogram } from "hdr-histogram-js";
import * as hdr from "hdr-histogram-js";
import { FerryError, RegistryError } from "../shared/registry/errors.ts";
import type { RequestEvent } from "../shared/registry/options.ts";

/** Precision of the whole-run histograms (0.1 %). */
export const LATENCY_DIGITS = 3;
/** Precision of the per-second histograms (1 %): enough for charts, small to ship. */
export const SERIES_DIGITS = 2;

export function newHistogram(digits: 1 | 2 | 3 | 4 | 5 = LATENCY_DIGITS): Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 2,
    autoResize: true,
    numberOfSignificantValueDigits: digits,
    bitBucketSize: 32,
  });
}

export function encodeHistogram(h: Histogram): string {
  return h.totalCount === 0 ? "" : hdr.encodeIntoCompressedBase64(h);
}

/** Decodes into an auto-resizing histogram, ready to add others to. */
export function decodeHistogram(encoded: string, digits: 1 | 2 | 3 | 4 | 5 = LATENCY_DIGITS): Histogram {
  const out = newHistogram(digits);
  if (encoded) out.add(hdr.decodeFromCompressedBase64(encoded));
  return out;
}

/** Milliseconds → whole microseconds, at least 1 (the histogram's unit). */
export function toMicros(ms: number): number {
  return Math.max(1, Math.round(ms * 1000));
}

interface Second {
  count: number;
  failed: number;
  bytes: number;
  hist?: Histogram;
}

/** One operation (or iteration kind), recording. */
export class OpRecorder {
  readonly hist = newHistogram();
  count = 0;
  failed = 0;
  bytes = 0;
  readonly statuses: Record<string, number> = {};
  readonly failedStatuses: Record<string, number> = {};
  readonly codes: Record<string, number> = {};
  readonly seconds = new Map<number, Second>();

  private second(sec: number): Second {
    let s = this.seconds.get(sec);
    if (!s) {
      s = { count: 0, failed: 0, bytes: 0 };
      this.seconds.set(sec, s);
    }
    return s;
  }

  /** One completed exchange or iteration. `us` undefined: no latency to record (connection error, failure). */
  record(sec: number, us: number | undefined, failed: boolean, status?: string, code?: string): void {
    this.count++;
    const s = this.second(sec);
    s.count++;
    if (status !== undefined) this.statuses[status] = (this.statuses[status] ?? 0) + 1;
    if (failed) {
      this.failed++;
      s.failed++;
      if (status !== undefined) this.failedStatuses[status] = (this.failedStatuses[status] ?? 0) + 1;
      if (code !== undefined) this.codes[code] = (this.codes[code] ?? 0) + 1;
    }
    if (us !== undefined) {
      this.hist.recordValue(us);
      s.hist ??= newHistogram(SERIES_DIGITS);
      s.hist.recordValue(us);
    }
  }

  addBytes(sec: number, n: number): void {
    this.bytes += n;
    this.second(sec).bytes += n;
  }

  serialise(): SerializedOp {
    return {
      count: this.count,
      failed: this.failed,
      bytes: this.bytes,
      statuses: { ...this.statuses },
      failedStatuses: { ...this.failedStatuses },
      codes: { ...this.codes },
      hist: encodeHistogram(this.hist),
      series: [...this.seconds.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([sec, s]) => [sec, s.count, s.failed, s.bytes, s.hist ? encodeHistogram(s.hist) : ""]),
    };
  }
}

/** A second of the time series: [second since start, count, failed, bytes, encoded 2-digit histogram]. */
export type SeriesPoint = [number, number, number, number, string];

export interface SerializedOp {
  count: number;
  failed: number;
  bytes: number;
  /** Exchanges by HTTP status ("connection": no status); for iterations, failed ones by status. */
  statuses: Record<string, number>;
  /** Failures by HTTP status. */
  failedStatuses: Record<string, number>;
  /** Failures by OCI error code (else HTTP_<status>, or the connection error code, or ferry's code). */
  codes: Record<string, number>;
  /** encodeIntoCompressedBase64 of the latency histogram (µs), "" when empty. */
  hist: string;
  series: SeriesPoint[];
}

/** What a worker returns (and what an aggregation returns: merging is closed over this shape). */
export interface MetricsResult {
  /** Workers merged into this result. */
  workers: number;
  /** Epoch ms when the (earliest) measurement started. */
  startedAt: number;
  /** Measured wall time, ms (the longest worker's, for a merge: workers run side by side). */
  durationMs: number;
  /** Per HTTP operation: token, ping, manifest.head, blob.get, upload.put, … */
  requests: Record<string, SerializedOp>;
  /** Per iteration kind: pull, push, manifest, catalog, tags. */
  iterations: Record<string, SerializedOp>;
  /** dropped, aborted, blobsVerified, verifyFailures, … */
  counters: Record<string, number>;
  /** First message seen per error code (at most 20 codes). */
  errorSamples: Record<string, string>;
}

const MAX_SAMPLES = 20;

/** Stable error key of a failed iteration: the OCI code, ferry code, or the connection error code. */
export function classifyError(err: unknown): { code: string; status?: string; message: string } {
  const message = (err as Error)?.message ?? String(err);
  if (err instanceof RegistryError) return { code: err.code, status: String(err.status), message };
  if (err instanceof FerryError) {
    if (err.code === "TRANSPORT") {
      const cause = (err.cause as { code?: string; cause?: { code?: string } } | undefined) ?? {};
      const net = cause.code ?? cause.cause?.code;
      return { code: net && /^[A-Z_]+$/.test(net) ? net : "TRANSPORT", message };
    }
    return { code: err.code, message };
  }
  const code = (err as { code?: unknown })?.code;
  return { code: typeof code === "string" && /^[A-Z_]+$/.test(code) ? code : "ERROR", message };
}

/** The recorder of one worker. `observe` is the RegistryClient observer. */
export class Metrics {
  /** performance.now() at the start of measurement: seconds of the series count from here. */
  t0 = performance.now();
  startedAt = Date.now();
  endedAt: number | undefined;
  /** Set at the end: exchanges of aborted iterations are not counted as registry failures. */
  closed = false;
  readonly requests = new Map<string, OpRecorder>();
  readonly iterations = new Map<string, OpRecorder>();
  readonly counters: Record<string, number> = {};
  readonly errorSamples: Record<string, string> = {};

  /** Restarts the clock (after setup, before the load starts). */
  start(): void {
    this.t0 = performance.now();
    this.startedAt = Date.now();
  }

  end(): void {
    this.endedAt ??= performance.now();
  }

  /** Seconds since start, as a series index. */
  sec(now = performance.now()): number {
    return Math.max(0, Math.floor((now - this.t0) / 1000));
  }

  private op(map: Map<string, OpRecorder>, name: string): OpRecorder {
    let r = map.get(name);
    if (!r) {
      r = new OpRecorder();
      map.set(name, r);
    }
    return r;
  }

  /** The RegistryClient observer: one call per HTTP exchange. */
  readonly observe = (e: RequestEvent): void => {
    if (this.closed) return;
    const failed = e.failed === true || (e.error !== undefined && e.status === 0);
    let code = e.code;
    if (!code && e.status > 0) code = `HTTP_${e.status}`;
    if (!code && e.error) code = /\b(E[A-Z]{3,}|UND_ERR_[A-Z_]+)\b/.exec(e.error)?.[1] ?? "CONNECTION";
    this.op(this.requests, e.op).record(
      this.sec(),
      e.status > 0 ? toMicros(e.ms) : undefined,
      failed,
      e.status > 0 ? String(e.status) : "connection",
      failed ? code : undefined,
    );
  };

  /** Bytes moved by an operation (counted in the second they moved). */
  addBytes(op: string, n: number): void {
    if (this.closed || n <= 0) return;
    this.op(this.requests, op).addBytes(this.sec(), n);
  }

  /** One finished iteration; latency recorded for successes only (failures are counted by code). */
  iteration(kind: string, ms: number, err?: unknown, bytes = 0): void {
    const r = this.op(this.iterations, kind);
    const sec = this.sec();
    if (bytes > 0) r.addBytes(sec, bytes);
    if (err === undefined) {
      r.record(sec, toMicros(ms), false);
      return;
    }
    const c = classifyError(err);
    r.record(sec, undefined, true, c.status ?? "error", c.code);
    this.sample(c.code, c.message);
  }

  sample(code: string, message: string): void {
    if (this.errorSamples[code] === undefined && Object.keys(this.errorSamples).length < MAX_SAMPLES)
      this.errorSamples[code] = message.length > 500 ? `${message.slice(0, 500)}…` : message;
  }

  count(counter: string, n = 1): void {
    this.counters[counter] = (this.counters[counter] ?? 0) + n;
  }

  /** The serialised result of this worker. */
  result(): MetricsResult {
    const end = this.endedAt ?? performance.now();
    const ser = (m: Map<string, OpRecorder>) =>
      Object.fromEntries([...m.entries()].map(([k, v]) => [k, v.serialise()]));
    return {
      workers: 1,
      startedAt: this.startedAt,
      durationMs: Math.max(0, end - this.t0),
      requests: ser(this.requests),
      iterations: ser(this.iterations),
      counters: { ...this.counters },
      errorSamples: { ...this.errorSamples },
    };
  }
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/** Exact merge of serialised operations: counters add, histograms add bucket by bucket, seconds align by index. */
export function mergeOps(ops: SerializedOp[]): SerializedOp {
  const hist = newHistogram(LATENCY_DIGITS);
  const out: SerializedOp = {
    count: 0,
    failed: 0,
    bytes: 0,
    statuses: {},
    failedStatuses: {},
    codes: {},
    hist: "",
    series: [],
  };
  const seconds = new Map<number, { count: number; failed: number; bytes: number; hist?: Histogram }>();
  for (const op of ops) {
    out.count += op.count;
    out.failed += op.failed;
    out.bytes += op.bytes;
    addCounts(out.statuses, op.statuses);
    addCounts(out.failedStatuses, op.failedStatuses);
    addCounts(out.codes, op.codes);
    if (op.hist) hist.add(hdr.decodeFromCompressedBase64(op.hist));
    for (const [sec, count, failed, bytes, h] of op.series) {
      let s = seconds.get(sec);
      if (!s) {
        s = { count: 0, failed: 0, bytes: 0 };
        seconds.set(sec, s);
      }
      s.count += count;
      s.failed += failed;
      s.bytes += bytes;
      if (h) {
        s.hist ??= newHistogram(SERIES_DIGITS);
        s.hist.add(hdr.decodeFromCompressedBase64(h));
      }
    }
  }
  out.hist = encodeHistogram(hist);
  out.series = [...seconds.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([sec, s]) => [sec, s.count, s.failed, s.bytes, s.hist ? encodeHistogram(s.hist) : ""]);
  return out;
}

/** Merges worker results (or earlier merges) into one. */
export function mergeResults(results: MetricsResult[]): MetricsResult {
  if (results.length === 0)
    return {
      workers: 0,
      startedAt: Date.now(),
      durationMs: 0,
      requests: {},
      iterations: {},
      counters: {},
      errorSamples: {},
    };
  const mergeMap = (pick: (r: MetricsResult) => Record<string, SerializedOp>) => {
    const names = [...new Set(results.flatMap((r) => Object.keys(pick(r))))].sort();
    return Object.fromEntries(
      names.map((n) => [n, mergeOps(results.flatMap((r) => (pick(r)[n] ? [pick(r)[n]!] : [])))]),
    );
  };
  const counters: Record<string, number> = {};
  const errorSamples: Record<string, string> = {};
  for (const r of results) {
    addCounts(counters, r.counters);
    for (const [k, v] of Object.entries(r.errorSamples))
      if (errorSamples[k] === undefined && Object.keys(errorSamples).length < MAX_SAMPLES)
        errorSamples[k] = v;
  }
  return {
    workers: results.reduce((a, r) => a + r.workers, 0),
    startedAt: Math.min(...results.map((r) => r.startedAt)),
    durationMs: Math.max(...results.map((r) => r.durationMs)),
    requests: mergeMap((r) => r.requests),
    iterations: mergeMap((r) => r.iterations),
    counters,
    errorSamples,
  };
}

export interface LatencySummary {
  /** Milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  min: number;
  mean: number;
}

/** Percentiles of an encoded histogram, in milliseconds. */
export function latencySummary(encoded: string): LatencySummary | undefined {
  if (!encoded) return undefined;
  const h = hdr.decodeFromCompressedBase64(encoded);
  const ms = (us: number) => us / 1000;
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    min: ms(h.minNonZeroValue),
    mean: ms(h.mean),
  };
}
