/**
 * The replay's timing with an injected clock (no wall-clock time anywhere): every request's intended start
 * is its record's offset divided by the speed, and the on-time share and lateness come from intended vs
 * actual starts. Also the trace's partitioning, the replay options, the noise estimate and `compare`'s
 * refusals.
 */
import { describe, expect, it } from "vitest";
import { compareReports } from "../../../load/compare.ts";
import { type BenchFlags, parseBenchConfig } from "../../../load/config.ts";
import { latencySummary } from "../../../load/metrics.ts";
import {
  histogramOf,
  percentileEstimate,
  rateEstimate,
  type SecondsOf,
  verdict,
} from "../../../load/noise.ts";
import { type ReplayClock, runSchedule } from "../../../load/replay.ts";
import { MIN_SEED_MANIFEST, partitionTrace, seedManifest } from "../../../load/replay-plan.ts";
import { popularity } from "../../../load/replay-report.ts";
import { mergeReplayStats, ON_TIME_TOLERANCE_MS, ReplayRecorder } from "../../../load/replay-stats.ts";
import type { BenchReport } from "../../../load/report.ts";
import { assembleTrace, type TraceRecord } from "../../../load/trace.ts";
import { FerryError } from "../../../shared/registry/errors.ts";

/** A clock that jumps to each wake-up time, `lag(t)` ms late (a busy machine), and never really waits. */
function fakeClock(lag: (t: number) => number = () => 0): ReplayClock & { sleeps: number } {
  let now = 1000;
  const c = {
    sleeps: 0,
    now: () => now,
    sleepUntil: async (t: number) => {
      c.sleeps++;
      now = Math.max(now, t + lag(t));
    },
  };
  return c;
}

const requests = [0, 0, 250, 1000, 1000.5, 4000].map((at, i) => ({ at, pool: i % 2 }));

describe("the replay schedule (injected clock)", () => {
  it("starts each request at t0 + offset / speed: the intended start is the schedule, whatever the clock does", async () => {
    for (const speed of [1, 2.5]) {
      const clock = fakeClock((t) => (t > 2000 ? 40 : 0)); // late wake-ups in the second half
      const starts: { i: number; intended: number; actual: number }[] = [];
      await runSchedule(requests, { speed, maxRate: false }, clock, 1000, async (i, intended, actual) => {
        starts.push({ i, intended, actual });
      });
      expect(starts.map((s) => s.i)).toEqual([0, 1, 2, 3, 4, 5]);
      for (const [k, s] of starts.entries())
        expect(s.intended - 1000).toBeCloseTo(requests[k]!.at / speed, 9);
      // never early; late exactly by the clock's lag
      for (const s of starts) expect(s.actual).toBeGreaterThanOrEqual(s.intended);
      expect(starts.at(-1)!.actual - starts.at(-1)!.intended).toBe(40);
    }
  });

  it("on-time share and lateness come from intended vs actual starts", async () => {
    const clock = fakeClock((t) => (t >= 2000 ? ON_TIME_TOLERANCE_MS + 5 : 1)); // the last three start late
    const rec = new ReplayRecorder();
    await runSchedule(requests, { speed: 1, maxRate: false }, clock, 1000, async (_i, intended, actual) => {
      rec.started(0, actual - intended);
    });
    const s = rec.result();
    expect(s.lateness.count).toBe(6);
    // late: 1000 and 1000.5 (started together when the 2000 wake-up came 15 ms late) and 4000
    expect(s.lateness.failed).toBe(3);
    const summary = latencySummary(s.lateness.hist)!;
    expect(summary.max).toBeCloseTo(ON_TIME_TOLERANCE_MS + 5, 1);
    // merging two workers' records adds them exactly
    const merged = mergeReplayStats([s, s])!;
    expect(merged.lateness.count).toBe(12);
    expect(merged.lateness.failed).toBe(6);
  });

  it("--max-rate: each pool's requests back to back in trace order, intended = actual", async () => {
    const clock = fakeClock();
    const order: number[] = [];
    await runSchedule(requests, { speed: 1, maxRate: true }, clock, 1000, async (i, intended, actual) => {
      expect(intended).toBe(actual);
      order.push(i);
    });
    expect(order.filter((i) => i % 2 === 0)).toEqual([0, 2, 4]);
    expect(order.filter((i) => i % 2 === 1)).toEqual([1, 3, 5]);
    expect(clock.sleeps).toBe(0);
  });
});

function trace(records: Partial<TraceRecord>[]) {
  const full = records.map((r, i) => ({
    at: i * 100,
    method: "GET" as const,
    kind: "blob" as const,
    uri: `v2/a/blobs/${i % 3}`,
    size: 10,
    client: "c0",
    durationMs: 1,
    ...r,
  }));
  return assembleTrace(
    ["t"],
    [{ read: full.length, records: full, skipped: { method: 0, path: 0, status: 0, size: 0 } }],
  );
}

describe("partitioning and seeding shapes", () => {
  const t = trace([
    { client: "a" },
    { client: "b" },
    { client: "a" },
    { client: "c", method: "PUT", uri: "v2/a/blobs/uploads/x", size: 5 },
    { client: "a" },
    { client: "b" },
  ]);
  const mapping = new Map(
    ["v2/a/blobs/0", "v2/a/blobs/1", "v2/a/blobs/2"].map((u, i) => [
      u,
      { digest: `sha256:${i}`, size: 10, served: "blob" as const },
    ]),
  );
  const index = new Map([...mapping.keys()].map((u, i) => [u, i]));

  it("remoteaddr: a client's requests all in one pool and one worker; pools balanced over workers", () => {
    const { parts, pools } = partitionTrace(t, mapping, index, {
      clientsBy: "remoteaddr",
      workers: 2,
      repository: "r",
    });
    expect(pools).toBe(3);
    expect(parts.map((p) => p.requests.length).sort()).toEqual([3, 3]); // a (3) | b (2) + c (1)
    for (const p of parts) for (const r of p.requests) expect(p.pools).toContain(r.pool);
    const all = parts.flatMap((p) => p.requests.map((r) => r.index)).sort();
    expect(all).toEqual([0, 1, 2, 3, 4, 5]);
    const put = parts.flatMap((p) => p.requests).find((r) => r.method === "PUT")!;
    expect(put.size).toBe(5);
  });

  it("round-robin: records dealt in turn over as many pools as clients", () => {
    const { parts } = partitionTrace(t, mapping, index, {
      clientsBy: "round-robin",
      workers: 1,
      repository: "r",
    });
    expect(parts[0]!.requests.map((r) => r.pool)).toEqual([0, 1, 2, 0, 1, 2]);
  });

  it("a seeded manifest has exactly the recorded size, or none can", () => {
    for (const size of [MIN_SEED_MANIFEST, 527, 4096, 100_000])
      expect(seedManifest("v2/a/manifests/x", size)!.bytes.length).toBe(size);
    expect(seedManifest("v2/a/manifests/x", MIN_SEED_MANIFEST - 1)).toBeUndefined();
    expect(seedManifest("v2/a/manifests/x", 5 * 1024 * 1024)).toBeUndefined();
  });

  it("popularity: the share of the most requested objects", () => {
    const p = popularity([50, 10, 10, 10, 5, 5, 5, 3, 1, 1]);
    expect(p.top10).toBe(0.5);
    expect(p.top1).toBe(0.5); // at least one object
    expect(p.curve[0]).toEqual([1, 50]);
    expect(p.curve.at(-1)).toEqual([10, 1]);
  });
});

describe("replay options", () => {
  const parse = (flags: BenchFlags) =>
    parseBenchConfig("localhost:5000/app", { scenario: "replay", ...flags });
  const usage = (flags: BenchFlags) => {
    try {
      parse(flags);
    } catch (e) {
      expect(e).toBeInstanceOf(FerryError);
      expect((e as FerryError).code).toBe("USAGE");
      return (e as Error).message;
    }
    throw new Error("expected a usage error");
  };
  it("defaults: speed 1, clients by remoteaddr, a long grace for the last downloads", () => {
    const c = parse({ trace: ["t.json"] });
    expect(c.model).toEqual({ kind: "replay", speed: 1, maxRate: false });
    expect(c.replay).toEqual({ traces: ["t.json"], clientsBy: "remoteaddr" });
    expect(c.graceMs).toBe(60_000);
    expect(parse({ trace: ["t"], maxRate: true, limitSeconds: "90s" }).replay!.limitSeconds).toBe(90);
  });
  it("refuses what does not fit a replay, one clear line each", () => {
    expect(usage({})).toMatch(/needs --trace FILE/);
    expect(usage({ trace: ["t"], speed: "2", maxRate: true })).toBe("give --speed or --max-rate, not both");
    expect(usage({ trace: ["t"], speed: "0" })).toMatch(/--speed must be more than zero/);
    expect(usage({ trace: ["t"], limitSeconds: "5", limitRequests: "9" })).toMatch(/not both/);
    expect(usage({ trace: ["t"], clientsBy: "ip" })).toMatch(
      /--clients-by must be remoteaddr or round-robin/,
    );
    expect(usage({ trace: ["t"], duration: "10s" })).toMatch(
      /^--duration .* does not apply to --scenario replay$/,
    );
    expect(usage({ trace: ["t"], cleanup: true })).toMatch(/--cleanup does not apply/);
    expect(
      usage({
        trace: ["t"],
        workers: "2",
        stateMachine: "arn:aws:states:eu-west-1:123456789012:stateMachine:f",
      }),
    ).toMatch(/needs --staging-bucket/);
    expect(() => parseBenchConfig("localhost:5000", { trace: ["t"] })).toThrow(
      /--trace applies to --scenario replay/,
    );
  });
});

describe("noise: batch means over each run's seconds", () => {
  const run = (perSecond: number[], latency: (s: number) => number[]): SecondsOf => ({
    coverage: perSecond.map(() => 1),
    count: perSecond,
    failed: perSecond.map(() => 0),
    bytes: perSecond.map((n) => n * 1000),
    hist: perSecond.map((_, s) => histogramOf(latency(s))),
  });
  const steady = (ms: number) => (s: number) => Array.from({ length: 40 }, (_, i) => ms + ((i + s) % 5));
  it("a run against itself is within noise; a clear shift is beyond it; too little data is n/a", () => {
    const a = run([100, 104, 98, 101, 99, 103, 97, 100, 102, 98], steady(10));
    const b = run([150, 148, 152, 151, 149, 150, 147, 153, 150, 149], steady(30));
    expect(verdict(rateEstimate(a, "count"), rateEstimate(a, "count"))).toBe("within noise");
    expect(verdict(rateEstimate(a, "count"), rateEstimate(b, "count"))).toBe("beyond noise");
    expect(verdict(percentileEstimate(a, 50), percentileEstimate(b, 50))).toBe("beyond noise");
    expect(percentileEstimate(a, 99)).toBeUndefined(); // 40 values a batch cannot say what p99 is
    const short = run([100, 100], steady(10));
    expect(verdict(rateEstimate(short, "count"), rateEstimate(a, "count"))).toBe("n/a");
  });
});

describe("compare: refuses what it cannot compare, saying why", () => {
  const report = (scenario: string, fingerprint?: string) =>
    ({
      tool: "ferry bench",
      scenario,
      target: { registry: "r", repository: "x" },
      modelText: "m",
      startedAt: "t",
      workers: 1,
      config: { mix: [] },
      requests: [],
      iterations: { byKind: [] },
      series: { seconds: [], coverage: [], requests: {}, iterations: {} },
      ...(fingerprint
        ? { replay: { trace: { fingerprint: `sha256:${fingerprint}`, used: 5, files: ["t.json"] } } }
        : {}),
    }) as unknown as BenchReport;
  it("different scenarios, different traces", () => {
    expect(() => compareReports("a.json", report("pull"), "b.json", report("push"))).toThrow(
      /not comparable: a\.json is a pull run and b\.json a push run/,
    );
    expect(() =>
      compareReports("a.json", report("replay", "1".repeat(64)), "b.json", report("replay", "2".repeat(64))),
    ).toThrow(/not comparable: a\.json and b\.json replayed different traces/);
    expect(
      compareReports("a.json", report("replay", "1".repeat(64)), "b.json", report("replay", "1".repeat(64)))
        .ops,
    ).toEqual([]);
  });
});
