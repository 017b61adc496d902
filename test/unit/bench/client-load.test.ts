/**
 * The client's own load: measured on this process (real CPU, real event loop), merged once per process,
 * and reported with a warning when the event loop was saturated.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import {
  type ClientLoad,
  measureClient,
  mergeClientLoads,
  summariseClients,
} from "../../../bench/load/client-load.ts";
import { formatClient } from "../../../bench/load/report.ts";

function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

describe("client load", () => {
  it("measures this process: a busy loop shows as CPU and a busy event loop, a sleep as neither", async () => {
    const busy = measureClient();
    spin(150);
    const b = busy.stop();
    expect(b.cpuSeconds).toBeGreaterThan(0.1);
    expect(b.wallSeconds).toBeGreaterThanOrEqual(0.15);
    expect(b.eventLoopBusy).toBeGreaterThan(0.9);

    const idle = measureClient();
    await sleep(150);
    const i = idle.stop();
    expect(i.cpuSeconds).toBeLessThan(0.1);
    expect(i.eventLoopBusy).toBeLessThan(0.5);
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
