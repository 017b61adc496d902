/**
 * The bench report: built from one merged WorkerResult (whatever the number of workers), printed as a
 * table, as JSON, or as a self-contained HTML page (html.ts).
 */
import * as hdr from "hdr-histogram-js";
import { formatRepository } from "../shared/registry/reference.ts";
import { type ClientSummary, SATURATED, summariseClients } from "./client-load.ts";
import { type BenchConfig, describeModel, type LoadModel } from "./config.ts";
import type { CleanupReport, ReadbackReport } from "./lifecycle.ts";
import { type LatencySummary, latencySummary, type SerializedOp } from "./metrics.ts";
import type { ReplayReport } from "./replay-report.ts";
import type { WorkerResult } from "./runner.ts";
import type { CreatedImage } from "./scenarios.ts";

export interface OpSummary {
  name: string;
  count: number;
  failed: number;
  opsPerSec: number;
  bytes: number;
  bytesPerSec: number;
  /** Milliseconds; absent when nothing was timed. */
  latency?: LatencySummary;
  statuses: Record<string, number>;
  failedStatuses: Record<string, number>;
  codes: Record<string, number>;
  /** The HDR histogram (µs), encodeIntoCompressedBase64: merge it with other runs'. */
  histogram: string;
}

export interface SeriesOp {
  count: number[];
  failed: number[];
  bytes: number[];
  /** Milliseconds per second of the run; null for seconds with nothing timed. */
  p50: (number | null)[];
  p90: (number | null)[];
  p99: (number | null)[];
  max: (number | null)[];
}

export interface BenchReport {
  tool: "ferry bench";
  target: { registry: string; repository: string };
  scenario: string;
  model: LoadModel;
  modelText: string;
  config: BenchConfig;
  startedAt: string;
  durationMs: number;
  workers: number;
  viaWorkflow: boolean;
  images: string[];
  iterations: {
    total: number;
    ok: number;
    failed: number;
    /** Open model: arrivals still queued when the time was up. */
    dropped: number;
    /** In flight when the grace period ended. */
    aborted: number;
    perSec: number;
    byKind: OpSummary[];
  };
  requests: OpSummary[];
  totals: { requests: number; failedRequests: number; bytes: number; bytesPerSec: number };
  /** What generating the load cost the client (absent in results from before it was measured). */
  client?: ClientSummary;
  errors: {
    requests: { byStatus: Record<string, number>; byCode: Record<string, number> };
    iterations: { byStatus: Record<string, number>; byCode: Record<string, number> };
    samples: Record<string, string>;
  };
  verification: {
    verify: boolean;
    blobsVerified: number;
    verifyFailures: number;
    readback?: ReadbackReport;
  };
  created: CreatedImage[];
  cleanup?: CleanupReport;
  series: {
    seconds: number[];
    /** Share of each second inside the run (the last one is usually partial): counts / coverage = rates. */
    coverage: number[];
    requests: Record<string, SeriesOp>;
    iterations: Record<string, SeriesOp>;
  };
  /**
   * Per operation, each second's latency histogram (encoded, 2 digits; "" for none), aligned with
   * series.seconds: what `ferry bench compare` estimates a run's own noise from (noise.ts).
   */
  seriesHistograms?: { requests: Record<string, string[]>; iterations: Record<string, string[]> };
  /** `-s replay`: the trace, its timing, the seeding, and what the trace had next to what was sent. */
  replay?: ReplayReport;
}

/** Display order of HTTP operations: the protocol's order, then anything else alphabetically. */
export const OP_ORDER = [
  "token",
  "ping",
  "manifest.head",
  "manifest.get",
  "manifest.put",
  "blob.head",
  "blob.get",
  "blob.mount",
  "upload.post",
  "upload.patch",
  "upload.put",
  "upload.complete",
  "upload.status",
  "upload.delete",
  "catalog",
  "tags.list",
  "referrers",
  "manifest.delete",
  "blob.delete",
];

function orderOps(names: string[]): string[] {
  const rank = (n: string) => {
    const i = OP_ORDER.indexOf(n);
    return i < 0 ? OP_ORDER.length : i;
  };
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

function summarise(name: string, op: SerializedOp, seconds: number): OpSummary {
  const latency = latencySummary(op.hist);
  return {
    name,
    count: op.count,
    failed: op.failed,
    opsPerSec: seconds > 0 ? op.count / seconds : 0,
    bytes: op.bytes,
    bytesPerSec: seconds > 0 ? op.bytes / seconds : 0,
    ...(latency ? { latency } : {}),
    statuses: op.statuses,
    failedStatuses: op.failedStatuses,
    codes: op.codes,
    histogram: op.hist,
  };
}

function seriesOf(op: SerializedOp, length: number): SeriesOp {
  const s: SeriesOp = {
    count: new Array(length).fill(0),
    failed: new Array(length).fill(0),
    bytes: new Array(length).fill(0),
    p50: new Array(length).fill(null),
    p90: new Array(length).fill(null),
    p99: new Array(length).fill(null),
    max: new Array(length).fill(null),
  };
  for (const [sec, count, failed, bytes, h] of op.series) {
    if (sec >= length) continue;
    s.count[sec] = count;
    s.failed[sec] = failed;
    s.bytes[sec] = bytes;
    if (h) {
      const hist = hdr.decodeFromCompressedBase64(h);
      s.p50[sec] = hist.getValueAtPercentile(50) / 1000;
      s.p90[sec] = hist.getValueAtPercentile(90) / 1000;
      s.p99[sec] = hist.getValueAtPercentile(99) / 1000;
      s.max[sec] = hist.maxValue / 1000;
    }
  }
  return s;
}

function sumMaps(maps: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of maps) for (const [k, v] of Object.entries(m)) out[k] = (out[k] ?? 0) + v;
  return out;
}

export function buildReport(
  config: BenchConfig,
  result: WorkerResult,
  extra: { images: string[]; readback?: ReadbackReport; cleanup?: CleanupReport },
): BenchReport {
  const seconds = result.durationMs / 1000;
  const requests = orderOps(Object.keys(result.requests)).map((n) =>
    summarise(n, result.requests[n]!, seconds),
  );
  const byKind = Object.keys(result.iterations)
    .sort()
    .map((n) => summarise(n, result.iterations[n]!, seconds));
  const total = byKind.reduce((a, o) => a + o.count, 0);
  const failed = byKind.reduce((a, o) => a + o.failed, 0);
  const lastSecond = Math.max(
    -1,
    ...[...Object.values(result.requests), ...Object.values(result.iterations)].flatMap((o) =>
      o.series.map((p) => p[0]),
    ),
  );
  const length = Math.max(lastSecond + 1, Math.ceil(seconds));
  const mapSeries = (m: Record<string, SerializedOp>) =>
    Object.fromEntries(Object.entries(m).map(([k, v]) => [k, seriesOf(v, length)]));
  const bytes = requests.reduce((a, o) => a + o.bytes, 0);
  const requestCount = requests.reduce((a, o) => a + o.count, 0);
  const client = summariseClients(result.clients ?? [], requestCount);
  return {
    tool: "ferry bench",
    target: { registry: config.registry, repository: config.repository },
    scenario: config.scenario,
    model: config.model,
    modelText: describeModel(config.model),
    config,
    startedAt: new Date(result.startedAt).toISOString(),
    durationMs: result.durationMs,
    workers: result.workers,
    viaWorkflow: config.viaWorkflow,
    images: extra.images,
    iterations: {
      total,
      ok: total - failed,
      failed,
      dropped: result.counters.dropped ?? 0,
      aborted: result.counters.aborted ?? 0,
      perSec: seconds > 0 ? total / seconds : 0,
      byKind,
    },
    requests,
    totals: {
      requests: requestCount,
      failedRequests: requests.reduce((a, o) => a + o.failed, 0),
      bytes,
      bytesPerSec: seconds > 0 ? bytes / seconds : 0,
    },
    ...(client ? { client } : {}),
    errors: {
      requests: {
        byStatus: sumMaps(requests.map((o) => o.failedStatuses)),
        byCode: sumMaps(requests.map((o) => o.codes)),
      },
      iterations: {
        byStatus: sumMaps(byKind.map((o) => o.failedStatuses)),
        byCode: sumMaps(byKind.map((o) => o.codes)),
      },
      samples: result.errorSamples,
    },
    verification: {
      verify: config.verify,
      blobsVerified: result.counters.blobsVerified ?? 0,
      verifyFailures: result.counters.verifyFailures ?? 0,
      ...(extra.readback ? { readback: extra.readback } : {}),
    },
    created: result.created,
    ...(extra.cleanup ? { cleanup: extra.cleanup } : {}),
    series: {
      seconds: Array.from({ length }, (_, i) => i),
      coverage: Array.from({ length }, (_, i) => Math.max(0, Math.min(1, seconds - i))),
      requests: mapSeries(result.requests),
      iterations: mapSeries(result.iterations),
    },
  };
}

// ---------------------------------------------------------------------------------------------- text

export function formatMs(ms: number | undefined | null): string {
  if (ms === undefined || ms === null) return "-";
  if (ms < 1) return `${ms.toFixed(2)}ms`;
  if (ms < 100) return `${ms.toFixed(1)}ms`;
  if (ms < 10_000) return `${ms.toFixed(0)}ms`;
  return `${(ms / 1000).toFixed(1)}s`;
}

export function formatRate(n: number): string {
  if (n >= 100) return n.toFixed(0);
  if (n >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

export function formatMBps(bytesPerSec: number): string {
  return bytesPerSec > 0 ? (bytesPerSec / 1e6).toFixed(bytesPerSec >= 1e8 ? 0 : 1) : "-";
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
}

function opRows(ops: OpSummary[]): string[][] {
  return ops.map((o) => [
    o.name,
    String(o.count),
    formatRate(o.opsPerSec),
    o.failed ? String(o.failed) : "0",
    formatMBps(o.bytesPerSec),
    formatMs(o.latency?.p50),
    formatMs(o.latency?.p90),
    formatMs(o.latency?.p99),
    formatMs(o.latency?.p999),
    formatMs(o.latency?.max),
  ]);
}

function counts(m: Record<string, number>): string {
  return Object.entries(m)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ×${v}`)
    .join(", ");
}

/** One line on what the load cost the client, and a warning when the client may have been the limit. */
export function formatClient(c: ClientSummary): string {
  const per = c.cpuPerRequestUs !== undefined ? ` (${c.cpuPerRequestUs.toFixed(0)} µs per request)` : "";
  const line =
    `client: ${c.cpuSeconds.toFixed(2)} CPU-s in ${c.processes} process${c.processes > 1 ? "es" : ""}${per}; ` +
    `busiest event loop ${(c.busiestEventLoop * 100).toFixed(0)}% busy, ${c.busiestCores.toFixed(2)} cores`;
  return c.saturated
    ? `${line}\nwarning: an event loop was busy over ${(SATURATED * 100).toFixed(0)}% of the run: the client, not ` +
        "the registry, may have set this load (spread it over more workers or machines)"
    : line;
}

/** The final table. */
export function formatReport(r: BenchReport): string {
  const lines: string[] = [];
  const where = `${r.target.registry}${r.scenario === "catalog" ? "" : `/${r.target.repository}`}`;
  lines.push(
    `ferry bench ${r.scenario} → ${where} · ${r.modelText} · ${(r.durationMs / 1000).toFixed(1)} s` +
      (r.workers > 1 ? ` · ${r.workers} workers${r.viaWorkflow ? " (Step Functions fan-out)" : ""}` : ""),
  );
  if (r.images.length) lines.push(`images: ${r.images.join(", ")}`);
  lines.push("");
  const header = ["", "count", "ops/s", "errors", "MB/s", "p50", "p90", "p99", "p99.9", "max"];
  const rows = [
    ["iterations", ...header.slice(1)],
    ...opRows(r.iterations.byKind),
    ["requests", ...header.slice(1).map(() => "")],
    ...opRows(r.requests),
  ];
  const rendered = table(rows);
  lines.push(rendered[0]!);
  lines.push(...rendered.slice(1).map((l) => (l.startsWith("requests") ? l.trimEnd() : `  ${l}`)));
  lines.push("");
  lines.push(
    `iterations: ${r.iterations.total} (${formatRate(r.iterations.perSec)}/s), ${r.iterations.ok} ok, ${r.iterations.failed} failed` +
      (r.iterations.dropped
        ? `, ${r.iterations.dropped} dropped (arrivals the registry could not keep up with)`
        : "") +
      (r.iterations.aborted ? `, ${r.iterations.aborted} aborted at the end` : ""),
  );
  lines.push(
    `requests: ${r.totals.requests}, ${r.totals.failedRequests} failed; ${formatMBps(r.totals.bytesPerSec)} MB/s (${r.totals.bytes} bytes)`,
  );
  if (r.client) lines.push(formatClient(r.client));
  const reqErr = r.errors.requests;
  const itErr = r.errors.iterations;
  if (r.totals.failedRequests || r.iterations.failed) {
    if (Object.keys(reqErr.byStatus).length)
      lines.push(`failed requests by status: ${counts(reqErr.byStatus)}`);
    if (Object.keys(reqErr.byCode).length) lines.push(`failed requests by code: ${counts(reqErr.byCode)}`);
    if (Object.keys(itErr.byCode).length) lines.push(`failed iterations by code: ${counts(itErr.byCode)}`);
    for (const [code, msg] of Object.entries(r.errors.samples).slice(0, 5)) lines.push(`  ${code}: ${msg}`);
  } else lines.push("errors: none");
  const v = r.verification;
  const pulls = r.iterations.byKind.some((o) => o.name === "pull");
  if (pulls)
    lines.push(
      v.verify
        ? `verification: ${v.blobsVerified} pulled blobs digest-verified, ${v.verifyFailures} failed`
        : "verification: off (--no-verify): pulled blobs were not digest-checked",
    );
  if (v.readback)
    lines.push(
      `read back by digest: ${v.readback.manifests} manifests, ${v.readback.blobs} blobs, ${v.readback.failures} failures` +
        (v.readback.errors.length ? `\n  ${v.readback.errors.join("\n  ")}` : ""),
    );
  if (r.created.length) {
    const repos = [
      ...new Set(
        r.created.map((c) => formatRepository({ registry: r.target.registry, repository: c.repository })),
      ),
    ];
    const blobs = new Set(r.created.flatMap((c) => c.blobs.map((b) => `${c.repository}@${b}`))).size;
    lines.push(
      `created: ${r.created.length} image(s), ${blobs} blob link(s) in ${repos.join(", ")}` +
        (r.cleanup ? "" : " — delete them with --cleanup (listed in --json)"),
    );
  }
  if (r.cleanup)
    lines.push(
      `cleanup: deleted ${r.cleanup.manifests} manifests and ${r.cleanup.blobs} blobs, ${r.cleanup.failures} failures` +
        (r.cleanup.errors.length ? `\n  ${r.cleanup.errors.join("\n  ")}` : ""),
    );
  lines.push(
    "latency: requests = to response headers; iterations = whole iteration" +
      (r.model.kind === "open" ? ", from the intended start (open model)" : ""),
  );
  return `${lines.join("\n")}\n`;
}
