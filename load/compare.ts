/**
 * `ferry bench compare a.json b.json`: two runs side by side — "did the change help?". Per operation
 * (iterations, then HTTP requests): count, throughput, p50/p90/p99/p99.9/max, error share, MB/s, and for
 * replays the on-time share; each with b − a and whether that difference is beyond the runs' own noise
 * (noise.ts: batch means over each run's per-second series and histograms).
 *
 * Runs of different scenarios, or replays of different traces (the trace fingerprint: files, limits and
 * records), are refused with the reason: their figures do not answer the question. Other differences
 * (target, speed, workers, load model) are listed above the table, since they are usually the point.
 */

import { FerryError } from "../shared/registry/errors.ts";
import { readUserFile } from "./input.ts";
import {
  type Estimate,
  percentileEstimate,
  rateEstimate,
  type SecondsOf,
  shareEstimate,
  type Verdict,
  verdict,
} from "./noise.ts";
import { type BenchReport, formatMBps, formatMs, formatRate, type OpSummary } from "./report.ts";

export interface ComparedValue {
  metric: string;
  a: number | null;
  b: number | null;
  /** b − a */
  diff: number | null;
  /** (b − a) / a */
  relative: number | null;
  verdict: Verdict;
  /** Lower is better (latency, errors), higher is better (throughput, on-time), or neither (count). */
  better: "lower" | "higher" | "none";
}

export interface ComparedOp {
  group: "iterations" | "requests" | "replay";
  name: string;
  values: ComparedValue[];
}

export interface Comparison {
  a: { file: string; scenario: string; target: string; startedAt: string; modelText: string };
  b: { file: string; scenario: string; target: string; startedAt: string; modelText: string };
  differences: string[];
  ops: ComparedOp[];
}

/** Reads a `--json` report; a clear usage error naming the file otherwise. */
export async function readReport(file: string): Promise<BenchReport> {
  const text = await readUserFile(file);
  let r: BenchReport;
  try {
    r = JSON.parse(text) as BenchReport;
  } catch (e) {
    throw new FerryError(
      "USAGE",
      `${file} is not JSON (${(e as Error).message}): give reports of ferry bench --json`,
    );
  }
  if (r?.tool !== "ferry bench" || !Array.isArray(r.requests) || !r.series || !r.iterations)
    throw new FerryError(
      "USAGE",
      `${file} is not a ferry bench report (write one with ferry bench … --json)`,
    );
  return r;
}

function secondsOf(r: BenchReport, group: "requests" | "iterations", name: string): SecondsOf | undefined {
  const s = r.series[group][name];
  if (!s) return undefined;
  const hist = r.seriesHistograms?.[group][name];
  return {
    coverage: r.series.coverage,
    count: s.count,
    failed: s.failed,
    bytes: s.bytes,
    ...(hist ? { hist } : {}),
  };
}

function value(
  metric: string,
  a: number | null | undefined,
  b: number | null | undefined,
  ea: Estimate | undefined,
  eb: Estimate | undefined,
  better: ComparedValue["better"],
): ComparedValue {
  const x = a ?? null;
  const y = b ?? null;
  const diff = x !== null && y !== null ? y - x : null;
  return {
    metric,
    a: x,
    b: y,
    diff,
    relative: diff !== null && x ? diff / x : null,
    verdict: verdict(ea, eb),
    better,
  };
}

function compareOp(
  ra: BenchReport,
  rb: BenchReport,
  group: "requests" | "iterations",
  name: string,
): ComparedOp {
  const find = (r: BenchReport): OpSummary | undefined =>
    (group === "requests" ? r.requests : r.iterations.byKind).find((o) => o.name === name);
  const oa = find(ra);
  const ob = find(rb);
  const sa = secondsOf(ra, group, name);
  const sb = secondsOf(rb, group, name);
  const est = (s: SecondsOf | undefined, f: (s: SecondsOf) => Estimate | undefined) => (s ? f(s) : undefined);
  const pct = (p: number) => (s: SecondsOf) => percentileEstimate(s, p);
  const errShare = (o: OpSummary | undefined) => (o && o.count > 0 ? o.failed / o.count : o ? 0 : null);
  return {
    group,
    name,
    values: [
      value("count", oa?.count, ob?.count, undefined, undefined, "none"),
      value(
        "ops/s",
        oa?.opsPerSec,
        ob?.opsPerSec,
        est(sa, (s) => rateEstimate(s, "count")),
        est(sb, (s) => rateEstimate(s, "count")),
        "higher",
      ),
      value("p50", oa?.latency?.p50, ob?.latency?.p50, est(sa, pct(50)), est(sb, pct(50)), "lower"),
      value("p90", oa?.latency?.p90, ob?.latency?.p90, est(sa, pct(90)), est(sb, pct(90)), "lower"),
      value("p99", oa?.latency?.p99, ob?.latency?.p99, est(sa, pct(99)), est(sb, pct(99)), "lower"),
      value("p99.9", oa?.latency?.p999, ob?.latency?.p999, est(sa, pct(99.9)), est(sb, pct(99.9)), "lower"),
      value("max", oa?.latency?.max, ob?.latency?.max, undefined, undefined, "lower"),
      value(
        "errors",
        errShare(oa),
        errShare(ob),
        est(sa, (s) => shareEstimate(s)),
        est(sb, (s) => shareEstimate(s)),
        "lower",
      ),
      value(
        "MB/s",
        oa ? oa.bytesPerSec / 1e6 : null,
        ob ? ob.bytesPerSec / 1e6 : null,
        est(sa, (s) => rateEstimate(s, "bytes")),
        est(sb, (s) => rateEstimate(s, "bytes")),
        "higher",
      ),
    ],
  };
}

function onTime(r: BenchReport): SecondsOf | undefined {
  const s = r.replay?.timing.series;
  if (!s) return undefined;
  return { coverage: r.series.coverage, count: s.started, failed: s.late, bytes: [], hist: s.hist };
}

const describe = (file: string, r: BenchReport) => ({
  file,
  scenario: r.scenario,
  target: `${r.target.registry}/${r.target.repository}`,
  startedAt: r.startedAt,
  modelText: r.modelText,
});

/** Compares two reports; throws a usage error naming why when they are not comparable. */
export function compareReports(fa: string, ra: BenchReport, fb: string, rb: BenchReport): Comparison {
  if (ra.scenario !== rb.scenario)
    throw new FerryError(
      "USAGE",
      `not comparable: ${fa} is a ${ra.scenario} run and ${fb} a ${rb.scenario} run (compare runs of one scenario)`,
    );
  if (ra.scenario === "replay") {
    const ta = ra.replay?.trace;
    const tb = rb.replay?.trace;
    if (!ta || !tb)
      throw new FerryError("USAGE", `not comparable: a replay report without its trace section`);
    if (ta.fingerprint !== tb.fingerprint)
      throw new FerryError(
        "USAGE",
        `not comparable: ${fa} and ${fb} replayed different traces (${ta.used} records of ${ta.files.join(", ")} vs ` +
          `${tb.used} of ${tb.files.join(", ")}; fingerprints ${ta.fingerprint.slice(7, 19)} vs ${tb.fingerprint.slice(7, 19)}): ` +
          "replay the same files with the same --limit-* on both sides",
      );
  }
  const differences: string[] = [];
  const diff = (what: string, x: unknown, y: unknown) => {
    if (JSON.stringify(x) !== JSON.stringify(y)) differences.push(`${what}: ${String(x)} → ${String(y)}`);
  };
  diff(
    "target",
    `${ra.target.registry}/${ra.target.repository}`,
    `${rb.target.registry}/${rb.target.repository}`,
  );
  diff("load", ra.modelText, rb.modelText);
  diff("workers", ra.workers, rb.workers);
  if (ra.scenario === "mixed")
    diff(
      "mix",
      ra.config.mix.map((m) => `${m.kind}=${m.weight}`).join(","),
      rb.config.mix.map((m) => `${m.kind}=${m.weight}`).join(","),
    );
  if (!ra.seriesHistograms || !rb.seriesHistograms)
    differences.push("a report without per-second histograms (an older ferry): latency noise is n/a");

  const names = (r: BenchReport, group: "requests" | "iterations") =>
    (group === "requests" ? r.requests : r.iterations.byKind).map((o) => o.name);
  const union = (group: "requests" | "iterations") => {
    const seen = [...names(ra, group)];
    for (const n of names(rb, group)) if (!seen.includes(n)) seen.push(n);
    return seen;
  };
  const ops: ComparedOp[] = [
    ...union("iterations").map((n) => compareOp(ra, rb, "iterations", n)),
    ...union("requests").map((n) => compareOp(ra, rb, "requests", n)),
  ];
  if (ra.replay?.timing && rb.replay?.timing) {
    const oa = onTime(ra);
    const ob = onTime(rb);
    ops.unshift({
      group: "replay",
      name: "schedule",
      values: [
        value(
          "on time",
          ra.replay.timing.onTimeShare,
          rb.replay.timing.onTimeShare,
          oa ? shareEstimate(oa, true) : undefined,
          ob ? shareEstimate(ob, true) : undefined,
          "higher",
        ),
        value(
          "lateness p99",
          ra.replay.timing.lateness?.p99,
          rb.replay.timing.lateness?.p99,
          oa ? percentileEstimate(oa, 99) : undefined,
          ob ? percentileEstimate(ob, 99) : undefined,
          "lower",
        ),
      ],
    });
  }
  return { a: describe(fa, ra), b: describe(fb, rb), differences, ops };
}

function show(metric: string, v: number | null): string {
  if (v === null) return "-";
  if (metric === "count") return String(v);
  if (metric === "ops/s") return formatRate(v);
  if (metric === "MB/s") return formatMBps(v * 1e6);
  if (metric === "errors" || metric === "on time") return `${(v * 100).toFixed(2)}%`;
  return formatMs(v);
}

function change(v: ComparedValue): string {
  if (v.diff === null) return "-";
  if (v.metric === "errors" || v.metric === "on time")
    return `${v.diff >= 0 ? "+" : ""}${(v.diff * 100).toFixed(2)} pt`;
  if (v.relative === null) return v.diff === 0 ? "0" : `${v.diff > 0 ? "+" : ""}${show(v.metric, v.diff)}`;
  return `${v.relative >= 0 ? "+" : ""}${(v.relative * 100).toFixed(1)}%`;
}

/** Which way a difference beyond noise went. */
export function direction(v: ComparedValue): "better" | "worse" | "" {
  if (v.verdict !== "beyond noise" || v.diff === null || v.diff === 0 || v.better === "none") return "";
  return v.diff < 0 === (v.better === "lower") ? "better" : "worse";
}

export function formatComparison(c: Comparison): string {
  const lines = [
    `ferry bench compare: ${c.a.scenario}`,
    `  a: ${c.a.file} — ${c.a.target}, ${c.a.modelText}, started ${c.a.startedAt}`,
    `  b: ${c.b.file} — ${c.b.target}, ${c.b.modelText}, started ${c.b.startedAt}`,
  ];
  if (c.differences.length) lines.push(`differences: ${c.differences.join("; ")}`);
  lines.push("");
  const rows: string[][] = [["", "a", "b", "change", "noise"]];
  for (const op of c.ops) {
    rows.push([
      `${op.group === "requests" ? "request" : op.group === "iterations" ? "iteration" : "replay"} ${op.name}`,
      "",
      "",
      "",
      "",
    ]);
    for (const v of op.values) {
      const d = direction(v);
      rows.push([
        `  ${v.metric}`,
        show(v.metric, v.a),
        show(v.metric, v.b),
        change(v),
        v.verdict === "beyond noise" ? `beyond noise${d ? ` (${d})` : ""}` : v.verdict,
      ]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    lines.push(
      r
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
        .join("  ")
        .trimEnd(),
    );
  lines.push(
    "",
    "noise: a difference is beyond noise when it exceeds 1.96 standard errors of the two runs' batch means " +
      "(each run cut into up to 10 stretches of whole seconds); n/a: too few stretches or values to tell",
  );
  return `${lines.join("\n")}\n`;
}
