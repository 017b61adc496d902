import { type ChildProcess, execFile } from "node:child_process";
import { join } from "node:path";
import { expect } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");

/**
 * Runs the real `ferry` executable (cli/ferry.js) with this Node; never throws: returns code and output.
 * `signal` is the signal that killed it (then `code` is 1), null when it exited by itself. `onSpawn`
 * gets the child process (to signal it).
 */
export function ferry(
  args: string[],
  env: Record<string, string> = {},
  opts: { onSpawn?: (child: ChildProcess) => void } = {},
): Promise<{ code: number; stdout: string; stderr: string; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [join(ROOT, "cli", "ferry.js"), ...args],
      { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === "number"
            ? (err as { code: number }).code
            : 1
          : 0;
        const signal = (err as { signal?: NodeJS.Signals | null } | null)?.signal ?? null;
        resolve({ code, stdout, stderr, signal });
      },
    );
    opts.onSpawn?.(child);
  });
}

/**
 * `ferry bench` options for the smallest real load: two pushes of one 4 KiB layer, one client, capped at
 * 60 s (a cap reached only if something hangs). For tests that check what a bench run sends, not how fast.
 */
export const SMALL_PUSH_BENCH = [
  "-s",
  "push",
  "--iterations",
  "2",
  "-c",
  "1",
  "--layers",
  "1",
  "--layer-size",
  "4KiB",
  "-d",
  "60s",
] as const;

/** Runs `ferry` (see `ferry`) expecting success and a JSON answer: exit 0, nothing on stderr, stdout parsed. */
export async function ferryJson<T>(args: string[], env: Record<string, string> = {}): Promise<T> {
  const out = await ferry(args, env);
  expect(out.stderr).toBe("");
  expect(out.code).toBe(0);
  return JSON.parse(out.stdout) as T;
}
