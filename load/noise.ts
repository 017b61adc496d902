/**
 * A run's own noise, for `ferry bench compare`: is a difference between two runs more than each run
 * varies within itself?
 *
 * Method (batch means): a run's full seconds are cut into BATCHES consecutive batches; each batch's
 * statistic (a rate, or a latency percentile of the batch's merged per-second histograms) is computed,
 * and the run's estimate is the mean of the batches with standard error sd/√k. A difference between two
 * runs is *beyond noise* when it exceeds Z times the combined standard error (≈ 95 %, normal
 * approximation). Batches absorb the correlation between neighbouring seconds (bursts, a slow stretch),
 * which a test on individual requests would take for independent evidence. With fewer than MIN_BATCHES
 * batches holding data, or too few values per batch for the percentile, there is no estimate ("n/a").
 */
import type { Histogram } from "hdr-histogram-js";
import * as hdr from "hdr-histogram-js";
import { encodeHistogram, newHistogram, SERIES_DIGITS, type SerializedOp } from "./metrics.ts";
import type { WorkerResult } from "./runner.ts";

export const BATCHES = 10;
export const MIN_BATCHES = 3;
/** ≈ 95 % two-sided. */
export const Z = 1.96;

/** Per op, each second's encoded histogram, aligned with the report's seconds. */
export function seriesHistogramsOf(
  result: Pick<WorkerResult, "requests" | "iterations">,
  length: number,
): { requests: Record<string, string[]>; iterations: Record<string, string[]> } {
  const of = (ops: Record<string, SerializedOp>) =>
    Object.fromEntries(
      Object.entries(ops).map(([name, op]) => {
        const out = new Array<string>(length).fill("");
        for (const [sec, , , , h] of op.series) if (sec < length) out[sec] = h;
        return [name, out];
      }),
    );
  return { requests: of(result.requests), iterations: of(result.iterations) };
}

/** The seconds of a run as per-second values: counts, failures, bytes, histograms; coverage 0–1. */
export interface SecondsOf {
  coverage: number[];
  count: number[];
  failed: number[];
  bytes: number[];
  hist?: string[];
}

/** Batches of full seconds (coverage ≥ 0.99): [first, end) index ranges. */
function batches(coverage: number[]): [number, number][] {
  const full = coverage.findLastIndex((c) => c >= 0.99) + 1;
  if (full === 0) return [];
  const k = Math.min(BATCHES, full);
  return Array.from({ length: k }, (_, i) => [Math.floor((i * full) / k), Math.floor(((i + 1) * full) / k)]);
}

export interface Estimate {
  /** Mean of the batches. */
  value: number;
  /** Standard error of that mean. */
  se: number;
  batches: number;
}

function estimate(values: number[]): Estimate | undefined {
  if (values.length < MIN_BATCHES) return undefined;
  const mean = values.reduce((a, v) => a + v, 0) / values.length;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1);
  return { value: mean, se: Math.sqrt(variance / values.length), batches: values.length };
}

/** Per-second rate of `pick` (count, failures or bytes per second) over the batches. */
export function rateEstimate(s: SecondsOf, pick: "count" | "bytes"): Estimate | undefined {
  return estimate(
    batches(s.coverage).map(([a, b]) => {
      let sum = 0;
      for (let i = a; i < b; i++) sum += s[pick][i] ?? 0;
      return sum / (b - a);
    }),
  );
}

/** Share `failed / count` over the batches (batches with no count left out). */
export function shareEstimate(s: SecondsOf, complement = false): Estimate | undefined {
  const values: number[] = [];
  for (const [a, b] of batches(s.coverage)) {
    let n = 0;
    let f = 0;
    for (let i = a; i < b; i++) {
      n += s.count[i] ?? 0;
      f += s.failed[i] ?? 0;
    }
    if (n > 0) values.push(complement ? 1 - f / n : f / n);
  }
  return estimate(values);
}

/**
 * A latency percentile (ms) over the batches. A batch needs at least 10 / (1 − p) values for the p-th
 * percentile to be more than its maximum (p99: 1,000), else the estimate is n/a.
 */
export function percentileEstimate(s: SecondsOf, percentile: number): Estimate | undefined {
  if (!s.hist) return undefined;
  const need = Math.ceil(10 / (1 - percentile / 100));
  const values: number[] = [];
  for (const [a, b] of batches(s.coverage)) {
    const h: Histogram = newHistogram(SERIES_DIGITS);
    for (let i = a; i < b; i++) {
      const e = s.hist[i];
      if (e) h.add(hdr.decodeFromCompressedBase64(e));
    }
    if (h.totalCount === 0) continue;
    if (h.totalCount < need) return undefined;
    values.push(h.getValueAtPercentile(percentile) / 1000);
  }
  return estimate(values);
}

export type Verdict = "beyond noise" | "within noise" | "n/a";

/** Whether b − a exceeds Z combined standard errors. */
export function verdict(a: Estimate | undefined, b: Estimate | undefined): Verdict {
  if (!a || !b) return "n/a";
  const se = Math.sqrt(a.se ** 2 + b.se ** 2);
  const diff = Math.abs(b.value - a.value);
  if (se === 0) return diff === 0 ? "within noise" : "beyond noise";
  return diff > Z * se ? "beyond noise" : "within noise";
}

/** Re-encodes (for tests and fixtures): a histogram of the given values (ms) at series precision. */
export function histogramOf(valuesMs: number[]): string {
  const h = newHistogram(SERIES_DIGITS);
  for (const v of valuesMs) h.recordValue(Math.max(1, Math.round(v * 1000)));
  return encodeHistogram(h);
}
