/**
 * The `ferry` command. One file per verb under commands/; this file wires them and turns every error
 * into one clear line on stderr and a non-zero exit code (no stack trace unless --debug).
 */
import { Command, CommanderError } from "commander";
import pkg from "../package.json" with { type: "json" };
import { printable } from "../shared/registry/errors.ts";
import { authHint } from "./auth-hint.ts";

type Register = (program: Command) => void;

/**
 * Each verb's module, loaded only when that verb runs (the bundle splits them into chunks): start-up
 * counts when ferry runs once per image. In help order; `ferry --help` loads them all.
 */
const VERBS: [string[], () => Promise<Register>][] = [
  [["copy"], async () => (await import("./commands/copy.ts")).registerCopy],
  [["pull", "push"], async () => (await import("./commands/pull-push.ts")).registerPullPush],
  [["inspect", "tags", "catalog"], async () => (await import("./commands/inspect.ts")).registerInspect],
  [["serve"], async () => (await import("./commands/serve.ts")).registerServe],
  [["demo"], async () => (await import("./commands/demo.ts")).registerDemo],
  [["workflow", "sync"], async () => (await import("./commands/workflow.ts")).registerWorkflow],
  [["bench"], async () => (await import("./commands/bench.ts")).registerBench],
];

/** The program with the verb named in `argv` registered (all of them when none is recognised). */
export async function buildProgram(argv: string[] = []): Promise<Command> {
  const program = new Command("ferry")
    .description(
      "Move container images between registries over the OCI Distribution API — no Docker daemon or client.",
    )
    .version(pkg.version)
    .showHelpAfterError("(run ferry <command> --help for usage)")
    .exitOverride();
  const verb = argv.find((a) => !a.startsWith("-"));
  const one = VERBS.find(([names]) => verb !== undefined && names.includes(verb));
  // `ferry --version` needs no verb at all (loading them all is what `ferry --help` needs).
  const versionOnly = verb === undefined && argv.some((a) => a === "--version" || a === "-V");
  const wanted = one ? [one] : versionOnly ? [] : VERBS;
  const registers = await Promise.all(wanted.map(([, load]) => load()));
  for (const register of registers) register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug");
  try {
    await (await buildProgram(argv)).parseAsync(argv, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    const e = err as Error;
    // by code, not class: the workflow's run is loaded from the sources (commands/workflow.ts `load`),
    // whose FerryError is another copy of the class than this bundle's
    const usage = (err as { code?: unknown } | null)?.code === "USAGE";
    // a 401/403 says whether credentials were sent and how to give them (cli/auth-hint.ts)
    const hint = authHint(err);
    process.stderr.write(`ferry: ${oneLine(`${e?.message ?? String(err)}${hint ? ` — ${hint}` : ""}`)}\n`);
    if (debug && e?.stack) process.stderr.write(`${e.stack}\n`);
    return usage ? 2 : 1;
  }
}

/** An error message as one printable line (see cli/output.ts); bulk failures list one image per line. */
function oneLine(s: string): string {
  return printable(s.length > 4000 ? `${s.slice(0, 4000)}…` : s, true);
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
