/**
 * The merge path is exact: histograms of equal precision add bucket by bucket, so merging the serialised
 * results of two workers gives the same histogram — every percentile, count, min, max and mean — as one
 * recorder that saw the union of their values; counters and per-second series add.
 */
import * as hdr from "hdr-histogram-js";
import { describe, expect, it } from "vitest";
import {
  decodeHistogram,
  latencySummary,
  Metrics,
  type MetricsResult,
  mergeOps,
  mergeResults,
  OpRecorder,
} from "../../../load/metrics.ts";
import { mixPicker } from "../../../load/runner.ts";
import { RegistryError, TransportError } from "../../../shared/registry/errors.ts";

/** A deterministic pseudo-random generator (mulberry32). */
function rng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Long-tailed latencies in µs: mostly ~1–20 ms, a few up to seconds. */
function latencies(seed: number, n: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () =>
    Math.max(1, Math.round(1000 * Math.exp(r() * 4) * (r() < 0.01 ? 200 : 1))),
  );
}

function percentiles(encoded: string): number[] {
  const h = decodeHistogram(encoded);
  const ps = [0, 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100];
  return [...ps.map((p) => h.getValueAtPercentile(p)), h.totalCount, h.minNonZeroValue, h.maxValue, h.mean];
}

describe("metric merge", () => {
  it("merging two workers' histograms equals one histogram over the union of their values", () => {
    const a = latencies(1, 5000);
    const b = latencies(2, 7000).map((v) => v * 3); // a different distribution
    const ra = new OpRecorder();
    const rb = new OpRecorder();
    const union = new OpRecorder();
    a.forEach((v, i) => {
      ra.record(i % 3, v, false, "200");
      union.record(i % 3, v, false, "200");
    });
    b.forEach((v, i) => {
      const failed = i % 100 === 0;
      rb.record(i % 5, v, failed, failed ? "503" : "200", failed ? "UNAVAILABLE" : undefined);
      union.record(i % 5, v, failed, failed ? "503" : "200", failed ? "UNAVAILABLE" : undefined);
    });
    ra.addBytes(0, 1000);
    rb.addBytes(4, 234);
    union.addBytes(0, 1000);
    union.addBytes(4, 234);

    // serialised as they would travel (JSON), then merged
    const wire = (r: OpRecorder) => JSON.parse(JSON.stringify(r.serialise()));
    const merged = mergeOps([wire(ra), wire(rb)]);
    const single = union.serialise();

    expect(merged.count).toBe(12_000);
    expect(merged.count).toBe(single.count);
    expect(merged.failed).toBe(70);
    expect(merged.bytes).toBe(single.bytes);
    expect(merged.statuses).toEqual(single.statuses);
    expect(merged.failedStatuses).toEqual({ "503": 70 });
    expect(merged.codes).toEqual({ UNAVAILABLE: 70 });
    expect(percentiles(merged.hist)).toEqual(percentiles(single.hist));
    // bucket by bucket: the full percentile distributions print identically
    const dist = (e: string) => hdr.decodeFromCompressedBase64(e).outputPercentileDistribution();
    expect(dist(merged.hist)).toBe(dist(single.hist));
    // the per-second series add up too, histograms included
    expect(merged.series.map((p) => p.slice(0, 4))).toEqual(single.series.map((p) => p.slice(0, 4)));
    for (let i = 0; i < single.series.length; i++)
      expect(percentiles(merged.series[i]![4])).toEqual(percentiles(single.series[i]![4]));
    // merging is associative: a merge of merges is the same
    const again = mergeOps([mergeOps([wire(ra)]), mergeOps([wire(rb)])]);
    expect(dist(again.hist)).toBe(dist(single.hist));
  });

  it("merges whole worker results: counters add, durations take the longest, samples keep the first", () => {
    const w = (i: number, durationMs: number): MetricsResult => {
      const m = new Metrics();
      m.observe({ op: "blob.get", method: "GET", url: "u", status: 200, ms: 5 + i, attempt: 0 });
      m.iteration("pull", 20 + i);
      m.count("blobsVerified", 3);
      m.sample("HTTP_500", `boom ${i}`);
      return { ...m.result(), durationMs, startedAt: 1000 + i };
    };
    const merged = mergeResults([w(1, 1000), w(2, 1500), w(3, 1200)]);
    expect(merged.workers).toBe(3);
    expect(merged.durationMs).toBe(1500);
    expect(merged.startedAt).toBe(1001);
    expect(merged.counters).toEqual({ blobsVerified: 9 });
    expect(merged.errorSamples).toEqual({ HTTP_500: "boom 1" });
    expect(merged.requests["blob.get"]!.count).toBe(3);
    expect(merged.iterations.pull!.count).toBe(3);
    expect(latencySummary(merged.iterations.pull!.hist)!.max).toBeCloseTo(23, 1);
  });

  it("classifies exchanges: failures by status and code, challenges and 404 answers are not failures", () => {
    const m = new Metrics();
    m.observe({ op: "blob.head", method: "HEAD", url: "u", status: 404, ms: 1, attempt: 0 });
    m.observe({ op: "manifest.get", method: "GET", url: "u", status: 401, ms: 1, attempt: 0 });
    m.observe({
      op: "manifest.get",
      method: "GET",
      url: "u",
      status: 429,
      ms: 2,
      attempt: 0,
      failed: true,
      code: "TOOMANYREQUESTS",
    });
    m.observe({ op: "manifest.get", method: "GET", url: "u", status: 500, ms: 2, attempt: 0, failed: true });
    m.observe({
      op: "ping",
      method: "GET",
      url: "u",
      status: 0,
      ms: 0.3,
      attempt: 0,
      failed: true,
      error: "connect ECONNREFUSED 127.0.0.1:1",
    });
    const r = m.result();
    expect(r.requests["blob.head"]).toMatchObject({ count: 1, failed: 0, statuses: { "404": 1 } });
    expect(r.requests["manifest.get"]).toMatchObject({
      count: 3,
      failed: 2,
      statuses: { "401": 1, "429": 1, "500": 1 },
      failedStatuses: { "429": 1, "500": 1 },
      codes: { TOOMANYREQUESTS: 1, HTTP_500: 1 },
    });
    expect(r.requests.ping).toMatchObject({
      count: 1,
      failed: 1,
      statuses: { connection: 1 },
      codes: { ECONNREFUSED: 1 },
    });
    expect(r.requests.ping!.hist).toBe(""); // no latency for a connection that never answered

    m.iteration(
      "pull",
      10,
      new RegistryError({ status: 429, method: "GET", url: "u", errors: [{ code: "TOOMANYREQUESTS" }] }),
    );
    m.iteration(
      "pull",
      10,
      new TransportError("x failed", { cause: Object.assign(new Error("y"), { code: "ECONNRESET" }) }),
    );
    m.iteration("pull", 12);
    const it = m.result().iterations.pull!;
    expect(it).toMatchObject({
      count: 3,
      failed: 2,
      codes: { TOOMANYREQUESTS: 1, ECONNRESET: 1 },
      failedStatuses: { "429": 1 },
    });
    expect(decodeHistogram(it.hist).totalCount).toBe(1); // failures are counted, not timed
  });

  it("picks a mix deterministically in proportion to its weights", () => {
    const pick = mixPicker([
      { kind: "pull", weight: 3 },
      { kind: "push", weight: 1 },
      { kind: "manifest", weight: 2 },
    ]);
    const seen = Array.from({ length: 60 }, () => pick());
    expect(seen.filter((k) => k === "pull")).toHaveLength(30);
    expect(seen.filter((k) => k === "push")).toHaveLength(10);
    expect(seen.filter((k) => k === "manifest")).toHaveLength(20);
  });
});
