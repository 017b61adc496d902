/**
 * The `ferry` command. One file per verb under commands/; this file wires them and turns every error
 * into one clear line on stderr and a non-zero exit code (no stack trace unless --debug).
 */
import { Command, CommanderError } from "commander";
import { FerryError } from "../shared/registry/errors.ts";
import { registerBench } from "./commands/bench.ts";
import { registerCopy } from "./commands/copy.ts";
import { registerDemo } from "./commands/demo.ts";
import { registerInspect } from "./commands/inspect.ts";
import { registerPullPush } from "./commands/pull-push.ts";
import { registerServe } from "./commands/serve.ts";
import { registerWorkflow } from "./commands/workflow.ts";

export function buildProgram(): Command {
  const program = new Command("ferry")
    .description(
      "Move container images between registries over the OCI Distribution API — no Docker daemon or client.",
    )
    .version("0.1.0")
    .showHelpAfterError("(run ferry <command> --help for usage)")
    .exitOverride();
  registerCopy(program);
  registerPullPush(program);
  registerInspect(program);
  registerServe(program);
  registerDemo(program);
  registerWorkflow(program);
  registerBench(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug");
  try {
    await buildProgram().parseAsync(argv, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    const e = err as Error;
    const usage = err instanceof FerryError && err.code === "USAGE";
    process.stderr.write(`ferry: ${oneLine(e?.message ?? String(err))}\n`);
    if (debug && e?.stack) process.stderr.write(`${e.stack}\n`);
    return usage ? 2 : 1;
  }
}

function oneLine(s: string): string {
  return s.length > 4000 ? `${s.slice(0, 4000)}…` : s;
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
