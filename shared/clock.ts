/**
 * Milliseconds on a monotonic clock, for durations: what `performance.now()` gives, without it. The global
 * `performance` loads Node's perf_hooks — ten internal modules — on first use, and a copy timed its first
 * request with it: ~1-2 ms of start-up for a clock (docs/benchmarks.md, Start-up).
 */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
