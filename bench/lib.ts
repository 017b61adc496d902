/** Shared pieces of the benchmarks: timing child processes with peak RSS and CPU, medians, tables. */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface RunStats {
  wall: number;
  /** Peak resident set, MiB. */
  rssMiB: number;
  /** User + system CPU seconds. */
  cpu: number;
  /** CPU seconds the registries spent serving the run (user + system). */
  registryCpu?: number;
}

/**
 * What the `ferry` executable's shebang line (`#!/usr/bin/env -S NAME=VALUE … node --flag …`) gives Node:
 * its flags and its environment settings. A control run with these differs from ferry by its code only.
 */
export function ferryShebang(file = join(import.meta.dirname, "..", "cli", "ferry.js")): {
  nodeFlags: string[];
  env: Record<string, string>;
} {
  const words = readFileSync(file, "utf8").split("\n", 1)[0]!.split(/\s+/);
  return {
    nodeFlags: words.filter((w) => w.startsWith("--")),
    env: Object.fromEntries(
      words.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => w.split("=") as [string, string]),
    ),
  };
}

/** User + system CPU seconds of a running process so far (Linux /proc; clock ticks of 1/100 s). */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // fields after the parenthesised command name: state is field 3, utime 14, stime 15
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Where the benchmark registries keep their storage: RAM (/dev/shm, tmpfs) unless `disk` is asked.
 * On a small VM the disk's writeback adds seconds of noise to runs that write thousands of small files;
 * in RAM the registries' own CPU is what bounds them, the same for every tool.
 */
export function useRamStorage(disk: boolean): string {
  if (disk || !existsSync("/dev/shm")) return "disk (os.tmpdir())";
  process.env.TMPDIR = "/dev/shm";
  return "RAM (/dev/shm)";
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

/**
 * bench/floor.ts bundled into `dir` as the CLI is bundled (the same esbuild options: minified, undici's
 * slim entry, one file), so that the floor starts as ferry does. Returns the file to run with node.
 */
export async function bundleFloor(dir: string): Promise<string> {
  const [{ build }, { CLI_OPTIONS }] = await Promise.all([
    import("esbuild"),
    import("../infra/bundling/options.ts"),
  ]);
  const outfile = join(dir, "floor.mjs");
  await build({
    ...CLI_OPTIONS,
    splitting: false,
    plugins: [...CLI_OPTIONS.plugins],
    absWorkingDir: join(import.meta.dirname, ".."),
    entryPoints: ["bench/floor.ts"],
    outfile,
  });
  return outfile;
}
