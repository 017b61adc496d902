import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import type { RegistryInfo } from "./context.ts";

const run = promisify(execFile);
export const SKOPEO = process.env.FERRY_SKOPEO ?? "/usr/bin/skopeo";

/** Runs the real skopeo; fails with its stderr. Install: apt-get install -y skopeo. */
export async function skopeo(...args: string[]): Promise<string> {
  if (!existsSync(SKOPEO)) throw new Error(`skopeo not found at ${SKOPEO}: apt-get install -y skopeo`);
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
