/**
 * The replay part of a bench report: the trace (read, used, skipped by reason), the timing (on-time share
 * and lateness, from intended vs actual starts), the seeding (never in the replay's figures), and the
 * object-popularity and size distributions the trace had next to what was sent.
 */
import * as hdr from "hdr-histogram-js";
import type { BenchConfig } from "./config.ts";
import { type LatencySummary, latencySummary } from "./metrics.ts";
import type { SeedingReport, TraceObject } from "./replay-plan.ts";
import type { ReplayWorkerStats } from "./replay-stats.ts";
import { formatMs } from "./report.ts";
import { type LoadedTrace, SKIP_REASONS, SKIP_TEXT, type SkipReason } from "./trace.ts";

export interface PopularitySummary {
  objects: number;
  /** GETs over every object. */
  requests: number;
  /** Share of the GETs that went to the most requested 1 % and 10 % of objects (at least one object). */
  top1: number;
  top10: number;
  /** [rank (1 = most requested), GETs], thinned to at most ~200 points on a log scale of ranks. */
  curve: [number, number][];
}

export interface SizeSummary {
  count: number;
  bytes: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface ReplayReport {
  trace: {
    files: string[];
    read: number;
    used: number;
    skipped: Record<SkipReason, number>;
    limited: number;
    spanSeconds: number;
    gets: number;
    puts: number;
    clients: number;
    pools: number;
    clientsBy: string;
    objects: number;
    fingerprint: string;
  };
  timing: {
    mode: "speed" | "max-rate";
    speed?: number;
    /** The schedule's length (last intended start), seconds; 0 for --max-rate. */
    scheduledSeconds: number;
    toleranceMs: number;
    started: number;
    onTime: number;
    /** Share started within toleranceMs of their intended start; null for --max-rate (no schedule). */
    onTimeShare: number | null;
    /** Lateness (actual − intended start), ms. */
    lateness?: LatencySummary;
    latenessHistogram: string;
    /** Per second of the run: starts, late starts, and the p99 lateness (ms). */
    series: { started: number[]; late: number[]; p99: (number | null)[]; hist: string[] };
  };
  seeding: SeedingReport;
  sent: { gets: number; puts: number };
  distributions: {
    popularity: { trace: PopularitySummary; sent: PopularitySummary };
    sizes: { trace: SizeSummary; sent: SizeSummary };
  };
}

export function popularity(counts: number[]): PopularitySummary {
  const sorted = [...counts].sort((a, b) => b - a);
  const total = sorted.reduce((a, n) => a + n, 0);
  const top = (share: number) => {
    const k = Math.max(1, Math.ceil(sorted.length * share));
    return total > 0 ? sorted.slice(0, k).reduce((a, n) => a + n, 0) / total : 0;
  };
  const curve: [number, number][] = [];
  let last = 0;
  for (let rank = 1; rank <= sorted.length; rank = Math.max(rank + 1, Math.round(rank * 1.04))) {
    curve.push([rank, sorted[rank - 1]!]);
    last = rank;
  }
  if (sorted.length && last !== sorted.length) curve.push([sorted.length, sorted.at(-1)!]);
  return { objects: sorted.length, requests: total, top1: top(0.01), top10: top(0.1), curve };
}

/** Exact percentiles of sizes (bytes). */
export function sizeSummary(sizes: number[]): SizeSummary {
  const s = [...sizes].sort((a, b) => a - b);
  const at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : 0);
  return {
    count: s.length,
    bytes: s.reduce((a, n) => a + n, 0),
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: s.at(-1) ?? 0,
  };
}

function sizeSummaryOfHistogram(encoded: string): SizeSummary {
  if (!encoded) return { count: 0, bytes: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  const h = hdr.decodeFromCompressedBase64(encoded);
  return {
    count: h.totalCount,
    bytes: Math.round(h.mean * h.totalCount),
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    max: h.maxValue,
  };
}

export function buildReplayReport(
  config: BenchConfig,
  trace: LoadedTrace,
  objects: TraceObject[],
  seeding: SeedingReport,
  stats: ReplayWorkerStats | undefined,
  pools: number,
  seconds: number,
): ReplayReport {
  const model = config.model.kind === "replay" ? config.model : { speed: 1, maxRate: false };
  const lateness = stats?.lateness;
  const started = lateness?.count ?? 0;
  const late = lateness?.failed ?? 0;
  const series = {
    started: new Array(seconds).fill(0),
    late: new Array(seconds).fill(0),
    p99: new Array(seconds).fill(null),
    hist: new Array(seconds).fill(""),
  };
  for (const [sec, count, failed, , h] of lateness?.series ?? []) {
    if (sec >= seconds) continue;
    series.started[sec] = count;
    series.late[sec] = failed;
    series.hist[sec] = h;
    if (h) series.p99[sec] = hdr.decodeFromCompressedBase64(h).getValueAtPercentile(99) / 1000;
  }
  const sentPerObject = new Map(stats?.perObject ?? []);
  const latencies = lateness?.hist ? latencySummary(lateness.hist) : undefined;
  const records = trace.records;
  return {
    trace: {
      files: trace.files,
      read: trace.read,
      used: records.length,
      skipped: trace.skipped,
      limited: trace.limited,
      spanSeconds: trace.spanMs / 1000,
      gets: records.filter((r) => r.method === "GET").length,
      puts: records.filter((r) => r.method === "PUT").length,
      clients: new Set(records.map((r) => r.client)).size,
      pools,
      clientsBy: config.replay?.clientsBy ?? "remoteaddr",
      objects: objects.length,
      fingerprint: trace.fingerprint,
    },
    timing: {
      mode: model.maxRate ? "max-rate" : "speed",
      ...(model.maxRate ? {} : { speed: model.speed }),
      scheduledSeconds: model.maxRate ? 0 : trace.spanMs / model.speed / 1000,
      toleranceMs: stats?.toleranceMs ?? 0,
      started,
      onTime: started - late,
      onTimeShare: model.maxRate || started === 0 ? null : (started - late) / started,
      ...(latencies && !model.maxRate ? { lateness: latencies } : {}),
      latenessHistogram: lateness?.hist ?? "",
      series,
    },
    seeding,
    sent: {
      gets: [...sentPerObject.values()].reduce((a, n) => a + n, 0),
      puts: stats?.puts ?? 0,
    },
    distributions: {
      popularity: {
        trace: popularity(objects.map((o) => o.gets)),
        sent: popularity(objects.map((_, i) => sentPerObject.get(i) ?? 0)),
      },
      sizes: {
        trace: sizeSummary(records.map((r) => r.size)),
        sent: sizeSummaryOfHistogram(stats?.sizes ?? ""),
      },
    },
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** The replay lines printed after the common report. */
export function formatReplay(r: ReplayReport): string {
  const t = r.trace;
  const skipped = SKIP_REASONS.filter((k) => t.skipped[k] > 0)
    .map((k) => `${t.skipped[k]} ${SKIP_TEXT[k]}`)
    .join("; ");
  const lines = [
    "",
    `trace: ${t.used} of ${t.read} records replayed (${t.gets} GET, ${t.puts} PUT) from ${t.files.join(", ")} · ` +
      `${t.spanSeconds.toFixed(1)} s recorded · ${t.clients} client(s) → ${t.pools} pool(s) (${t.clientsBy}) · ${t.objects} object(s)`,
    `skipped: ${skipped || "none"}${t.limited ? `; ${t.limited} beyond the limit` : ""}`,
  ];
  const m = r.timing;
  lines.push(
    m.mode === "max-rate"
      ? `timing: --max-rate: each client's requests back to back (no schedule, no lateness); ${m.started} started`
      : `timing: ${m.speed}× the recorded pace, ${m.scheduledSeconds.toFixed(1)} s scheduled (iteration latency from each intended start); ` +
          `${m.onTime} of ${m.started} started on time (${m.onTimeShare === null ? "-" : pct(m.onTimeShare)}, within ${m.toleranceMs} ms); ` +
          `lateness p50 ${formatMs(m.lateness?.p50)} p99 ${formatMs(m.lateness?.p99)} max ${formatMs(m.lateness?.max)}`,
  );
  const s = r.seeding;
  lines.push(
    `seeding (not in the figures above): ${s.objects} object(s): ${s.fromState} from --state, ${s.present} present, ` +
      `${s.pushed} pushed (${formatBytes(s.bytes)}) in ${(s.ms / 1000).toFixed(1)} s` +
      (s.manifestsAsBlobs
        ? `; ${s.manifestsAsBlobs} manifest(s) of a size no manifest can have, seeded as blobs`
        : ""),
  );
  const p = r.distributions.popularity;
  lines.push(
    `popularity: the top 1% of objects drew ${pct(p.trace.top1)} of the trace's GETs, ${pct(p.sent.top1)} of those sent; ` +
      `top 10%: ${pct(p.trace.top10)} / ${pct(p.sent.top10)} (${p.trace.requests} GETs in the trace, ${p.sent.requests} sent and completed)`,
  );
  const z = r.distributions.sizes;
  const line = (x: SizeSummary) =>
    `p50 ${formatBytes(x.p50)}, p90 ${formatBytes(x.p90)}, p99 ${formatBytes(x.p99)}, max ${formatBytes(x.max)}`;
  lines.push(`sizes: trace ${line(z.trace)}; sent ${line(z.sent)}`);
  lines.push(`pushes: ${r.sent.puts} of ${t.puts} PUT records completed (fresh bytes each)`);
  return `${lines.join("\n")}\n`;
}
