/**
 * The client's own load: measured on this process (real CPU, real event loop), merged once per process,
 * and reported with a warning when the event loop was saturated.
 */
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import {
  type ClientLoad,
  type LoadSources,
  measureClient,
  mergeClientLoads,
  SATURATED,
  summariseClients,
} from "../../../load/client-load.ts";
import { formatClient } from "../../../load/report.ts";

/** Fixed readings that a test moves forward by hand: no clock, no scheduler involved. */
function fakeSources() {
  const state = { user: 0, system: 0, idle: 0, active: 0, now: 0 };
  const sources: LoadSources = {
    cpuUsage: () => ({ user: state.user, system: state.system }),
    eventLoop: () => ({ idle: state.idle, active: state.active }),
    now: () => state.now,
  };
  return { state, sources };
}

describe("client load", () => {
  it("reports the CPU, wall time and event loop share used between start and stop", () => {
    const { state, sources } = fakeSources();
    Object.assign(state, { user: 5_000_000, system: 1_000_000, idle: 700, active: 300, now: 10_000 });
    const m = measureClient(sources);
    // 1.5 s of wall time: 0.9 s user + 0.3 s system CPU; the loop 1200 ms active, 300 ms idle
    Object.assign(state, { user: 5_900_000, system: 1_300_000, idle: 1_000, active: 1_500, now: 11_500 });
    const l = m.stop();
    expect(l.cpuSeconds).toBeCloseTo(1.2, 9);
    expect(l.wallSeconds).toBeCloseTo(1.5, 9);
    expect(l.eventLoopBusy).toBeCloseTo(0.8, 9);
    // nothing elapsed: no division by zero
    expect(measureClient(sources).stop()).toMatchObject({ cpuSeconds: 0, wallSeconds: 0, eventLoopBusy: 0 });
  });

  it("measures this process: figures in range, and a synchronous stretch is a busy event loop", async () => {
    // Only relations that hold however busy the machine is: CPU time can't be predicted, but a
    // synchronous stretch never lets the event loop idle. (Whether a timer wait shows as idle depends
    // on when Node records the loop's idle time — on leaving the poll phase, which a loaded machine or a
    // test worker may not have done yet — so a wait is only checked to stay within range.)
    const busy = measureClient();
    createHash("sha256")
      .update(Buffer.alloc(4 << 20))
      .digest();
    const b = busy.stop();
    expect(b.cpuSeconds).toBeGreaterThan(0);
    expect(b.wallSeconds).toBeGreaterThan(0);
    expect(b.eventLoopBusy).toBeGreaterThanOrEqual(SATURATED);
    expect(b.eventLoopBusy).toBeLessThanOrEqual(1);

    const idle = measureClient();
    await sleep(20);
    const i = idle.stop();
    expect(i.cpuSeconds).toBeGreaterThanOrEqual(0);
    expect(i.wallSeconds).toBeGreaterThan(0);
    expect(i.eventLoopBusy).toBeGreaterThanOrEqual(0);
    expect(i.eventLoopBusy).toBeLessThanOrEqual(1);
    expect(i.process).toBe(b.process);
  });

  it("merges one entry per process (the widest window), sums CPU over processes", () => {
    const l = (
      process: string,
      cpuSeconds: number,
      wallSeconds: number,
      eventLoopBusy: number,
    ): ClientLoad => ({
      process,
      cpuSeconds,
      wallSeconds,
      eventLoopBusy,
    });
    // two workers in process a (overlapping windows of the same process), one in b
    const merged = mergeClientLoads([l("a", 1.0, 5, 0.4), l("a", 1.1, 5.2, 0.42), l("b", 2.0, 5, 0.95)]);
    expect(merged).toEqual([l("a", 1.1, 5.2, 0.42), l("b", 2.0, 5, 0.95)]);
    const s = summariseClients(merged, 3100)!;
    expect(s.processes).toBe(2);
    expect(s.cpuSeconds).toBeCloseTo(3.1, 9);
    expect(s.cpuPerRequestUs).toBeCloseTo(1000, 6);
    expect(s.busiestEventLoop).toBe(0.95);
    expect(s.busiestCores).toBeCloseTo(0.4, 9);
    expect(s.saturated).toBe(true);
    expect(summariseClients([], 10)).toBeUndefined();
    expect(summariseClients([l("a", 1, 2, 0.5)], 0)!.cpuPerRequestUs).toBeUndefined();
  });

  it("the report line warns only when an event loop was saturated", () => {
    const calm = summariseClients(
      [{ process: "a", cpuSeconds: 0.84, wallSeconds: 5, eventLoopBusy: 0.72 }],
      3000,
    )!;
    expect(formatClient(calm)).toBe(
      "client: 0.84 CPU-s in 1 process (280 µs per request); busiest event loop 72% busy, 0.17 cores",
    );
    const hot = summariseClients(
      [{ process: "a", cpuSeconds: 4.9, wallSeconds: 5, eventLoopBusy: 0.97 }],
      3000,
    )!;
    expect(formatClient(hot)).toMatch(
      /97% busy, 0\.98 cores\nwarning: an event loop was busy over 90% of the run/,
    );
  });
});
