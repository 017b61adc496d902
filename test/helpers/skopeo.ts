/**
 * The one place that finds skopeo for the tests: FERRY_SKOPEO, else /usr/bin/skopeo (.ci/run installs
 * it). A suite that needs it is declared with describeWithSkopeo: under CI (CI set) a missing skopeo
 * fails the suite with the reason; on a developer's machine the suite is skipped, and its name says why.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { describe } from "vitest";
import type { RegistryInfo } from "./context.ts";

const run = promisify(execFile);
export const SKOPEO = process.env.FERRY_SKOPEO || "/usr/bin/skopeo";

/** Why skopeo cannot run here, or undefined when it can. */
export function skopeoMissing(): string | undefined {
  if (existsSync(SKOPEO)) return undefined;
  return `skopeo not found at ${SKOPEO} (apt-get install -y skopeo, or set FERRY_SKOPEO to its path)`;
}

/**
 * describe() for a suite that needs skopeo. Without skopeo: under CI it throws (the file fails, naming
 * the reason); locally the suite is skipped with the reason in its name.
 */
export function describeWithSkopeo(name: string, fn: () => void): void {
  const missing = skopeoMissing();
  if (missing && process.env.CI) throw new Error(`${name}: ${missing}; CI must run the skopeo interop tests`);
  if (missing) describe.skip(`${name} — skipped: ${missing}`, fn);
  else describe(name, fn);
}

/** Runs the real skopeo; fails with its stderr, or with the reason it is missing. */
export async function skopeo(...args: string[]): Promise<string> {
  const missing = skopeoMissing();
  if (missing) throw new Error(missing);
  try {
    const { stdout } = await run(SKOPEO, ["--insecure-policy", ...args], { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`skopeo ${args.join(" ")} failed: ${err.stderr ?? err.message}`);
  }
}

/** `--src-creds`/`--dest-creds`-style flags for a harness registry. */
export function credsFlag(reg: RegistryInfo, which: "src" | "dest" | "plain"): string[] {
  if (!reg.username || !reg.password) return [];
  const name = which === "plain" ? "--creds" : `--${which}-creds`;
  return [`${name}=${reg.username}:${reg.password}`];
}
