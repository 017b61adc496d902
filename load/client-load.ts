/**
 * Is the load generator the bottleneck? Each worker measures the process it runs in over its load phase:
 * CPU time (user + system, every thread) and the share of wall time its event loop was busy (Node's
 * event loop utilisation). An event loop busy nearly all the time means iterations waited for the client,
 * not for the registry: the load delivered is then the tool's limit, and the report says so.
 *
 * Workers of a local run share one process; distributed workers have one each. A merge keeps one entry
 * per process (the widest window of the workers in it), so CPU is never counted twice.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";

/** One load-generating process over the load phase of the workers it ran. */
export interface ClientLoad {
  /** Unique per process (a Lambda sandbox, the local CLI). */
  process: string;
  /** User + system CPU of the whole process, seconds. */
  cpuSeconds: number;
  /** Wall time measured, seconds. */
  wallSeconds: number;
  /** Event loop utilisation over that time, 0–1. */
  eventLoopBusy: number;
}

/** At or above this event loop utilisation, the client may have limited the load. */
export const SATURATED = 0.9;

const PROCESS_ID = randomUUID();

/** Where the figures come from: this process by default; tests give fixed readings. */
export interface LoadSources {
  /** CPU used so far (µs), as process.cpuUsage(). */
  cpuUsage(): { user: number; system: number };
  /** Event loop idle and active time so far (ms), as performance.eventLoopUtilization(). */
  eventLoop(): { idle: number; active: number };
  /** A monotonic clock (ms). */
  now(): number;
}

const THIS_PROCESS: LoadSources = {
  cpuUsage: () => process.cpuUsage(),
  eventLoop: () => performance.eventLoopUtilization(),
  now: () => performance.now(),
};

/** Starts measuring this process; `stop()` returns what it used since. */
export function measureClient(sources: LoadSources = THIS_PROCESS): { stop(): ClientLoad } {
  const cpu0 = sources.cpuUsage();
  const elu0 = sources.eventLoop();
  const t0 = sources.now();
  return {
    stop() {
      const cpu = sources.cpuUsage();
      const elu = sources.eventLoop();
      const idle = elu.idle - elu0.idle;
      const active = elu.active - elu0.active;
      return {
        process: PROCESS_ID,
        cpuSeconds: (cpu.user - cpu0.user + cpu.system - cpu0.system) / 1e6,
        wallSeconds: (sources.now() - t0) / 1000,
        eventLoopBusy: idle + active > 0 ? active / (idle + active) : 0,
      };
    },
  };
}

/** One entry per process: for workers that shared one, the entry with the widest window. */
export function mergeClientLoads(loads: ClientLoad[]): ClientLoad[] {
  const byProcess = new Map<string, ClientLoad>();
  for (const l of loads) {
    const seen = byProcess.get(l.process);
    if (!seen || l.wallSeconds > seen.wallSeconds) byProcess.set(l.process, l);
  }
  return [...byProcess.values()];
}

export interface ClientSummary {
  processes: number;
  /** Summed over the processes. */
  cpuSeconds: number;
  /** CPU per HTTP request, µs (undefined without requests). */
  cpuPerRequestUs?: number;
  /** The busiest process: its event loop utilisation and the CPU cores it used on average. */
  busiestEventLoop: number;
  busiestCores: number;
  /** The busiest event loop reached SATURATED: the client may have limited the load. */
  saturated: boolean;
}

export function summariseClients(loads: ClientLoad[], requests: number): ClientSummary | undefined {
  if (loads.length === 0) return undefined;
  const cpuSeconds = loads.reduce((a, l) => a + l.cpuSeconds, 0);
  const busiest = loads.reduce((a, l) => (l.eventLoopBusy > a.eventLoopBusy ? l : a));
  return {
    processes: loads.length,
    cpuSeconds,
    ...(requests > 0 ? { cpuPerRequestUs: (cpuSeconds / requests) * 1e6 } : {}),
    busiestEventLoop: busiest.eventLoopBusy,
    busiestCores: busiest.wallSeconds > 0 ? busiest.cpuSeconds / busiest.wallSeconds : 0,
    saturated: busiest.eventLoopBusy >= SATURATED,
  };
}
