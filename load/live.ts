/**
 * The live terminal view (stderr, TTY only): redrawn every second with the last complete second's
 * throughput, latency and errors per operation, read straight from the workers' recorders.
 */
import type { Metrics, OpRecorder } from "./metrics.ts";
import { formatMBps, formatMs, formatRate } from "./report.ts";

export interface LiveView {
  add(m: Metrics): void;
  stop(): void;
}

const NONE: LiveView = { add() {}, stop() {} };

export function createLiveView(
  enabled: boolean,
  title: string,
  /** The run's length (a function: a replay's is known once its trace is read). */
  durationMs: number | (() => number),
  stream: NodeJS.WriteStream = process.stderr,
): LiveView {
  if (!enabled || !stream.isTTY) return NONE;
  const workers: Metrics[] = [];
  let drawn = 0;
  const draw = () => {
    if (!workers.length) return;
    const sec = workers[0]!.sec() - 1; // the last complete second
    const lines: string[] = [];
    const elapsed = (performance.now() - workers[0]!.t0) / 1000;
    const collect = (pick: (m: Metrics) => Map<string, OpRecorder>) => {
      const names = new Set(workers.flatMap((w) => [...pick(w).keys()]));
      return [...names].sort().map((name) => {
        let total = 0;
        let failed = 0;
        let count = 0;
        let bytes = 0;
        let worst = 0;
        let p99: number | undefined;
        for (const w of workers) {
          const r = pick(w).get(name);
          if (!r) continue;
          total += r.count;
          failed += r.failed;
          const s = r.seconds.get(sec);
          if (s) {
            count += s.count;
            bytes += s.bytes;
            if (s.hist && s.hist.totalCount > 0) {
              const v = s.hist.getValueAtPercentile(99) / 1000;
              p99 = Math.max(p99 ?? 0, v);
              worst = Math.max(worst, v, s.hist.maxValue / 1000);
            }
          }
        }
        return { name, total, failed, count, bytes, p99, worst };
      });
    };
    const rows = [
      ...collect((m) => m.iterations).map((r) => ({ ...r, name: `iteration ${r.name}` })),
      ...collect((m) => m.requests),
    ];
    lines.push(
      `ferry bench ${title}  ${Math.max(0, elapsed).toFixed(0)}s / ${((typeof durationMs === "function" ? durationMs() : durationMs) / 1000).toFixed(0)}s` +
        (workers.length > 1 ? `  ${workers.length} workers` : ""),
    );
    lines.push(
      `${"".padEnd(22)}${"total".padStart(9)}${"errors".padStart(8)}${"ops/s".padStart(9)}${"MB/s".padStart(8)}${"p99".padStart(10)}${"max".padStart(10)}`,
    );
    for (const r of rows)
      lines.push(
        `${r.name.padEnd(22)}${String(r.total).padStart(9)}${String(r.failed).padStart(8)}${formatRate(r.count).padStart(9)}` +
          `${formatMBps(r.bytes).padStart(8)}${formatMs(r.p99).padStart(10)}${formatMs(r.worst || undefined).padStart(10)}`,
      );
    const clear = drawn ? `\x1b[${drawn}A\x1b[J` : "";
    stream.write(`${clear}${lines.join("\n")}\n`);
    drawn = lines.length;
  };
  const timer = setInterval(draw, 1000);
  timer.unref();
  return {
    add(m) {
      workers.push(m);
    },
    stop() {
      clearInterval(timer);
      if (drawn) stream.write(`\x1b[${drawn}A\x1b[J`);
      drawn = 0;
    },
  };
}
