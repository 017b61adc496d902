/** Shared pieces of the benchmarks: timing child processes with peak RSS and CPU, medians, tables. */
import { spawn } from "node:child_process";

export interface RunStats {
  wall: number;
  /** Peak resident set, MiB. */
  rssMiB: number;
  /** User + system CPU seconds. */
  cpu: number;
}

/** Runs a command under GNU time (`/usr/bin/time`), returning wall seconds, peak RSS and CPU. */
export async function timed(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunStats> {
  const marker = "FERRYBENCH";
  return new Promise((resolve, reject) => {
    const child = spawn("/usr/bin/time", ["-f", `${marker} %e %M %U %S`, cmd, ...args], {
      env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const line = err.split("\n").find((l) => l.startsWith(marker));
      if (code !== 0 || !line) {
        reject(new Error(`${cmd} ${args.join(" ")} failed (${code}): ${err.slice(-2000)}`));
        return;
      }
      const [, wall, rss, user, sys] = line.split(" ").map(Number) as number[];
      resolve({ wall: wall!, rssMiB: rss! / 1024, cpu: user! + sys! });
    });
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function table(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === "number" ? fmt(c) : c)));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "))
    .join("\n");
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return "-";
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}
