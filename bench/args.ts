/**
 * The benchmarks' command lines, read one way: each script declares its options, and a mistake — an
 * unknown option, a missing or malformed value — ends the script before any work with one line naming
 * it and the script's usage, exit status 2 (a typo such as `--run 5` used to run the defaults silently).
 */
import { type ParseArgsConfig, parseArgs } from "node:util";

/**
 * count: a positive integer; number: a number ≥ 0; list: comma-separated; counts: a comma-separated
 * list of positive integers; path: a non-empty string.
 */
type Kind = "count" | "number" | "list" | "counts" | "path" | "flag";
/**
 * One option: `default` is its value when not given — required for counts and numbers; a list without
 * one is empty, a path undefined, a flag false. `value` is how usage shows the value (`--runs N`).
 */
type OptionSpec =
  | { kind: "count" | "number"; default: string; value?: string }
  | { kind: "list" | "counts" | "path"; default?: string; value?: string }
  | { kind: "flag" };
type Value<K extends Kind> = K extends "flag"
  ? boolean
  : K extends "count" | "number"
    ? number
    : K extends "list"
      ? string[]
      : K extends "counts"
        ? number[]
        : string | undefined;
export type BenchArgs<S extends Record<string, OptionSpec>> = { [K in keyof S]: Value<S[K]["kind"]> };

export class BenchUsageError extends Error {}

/** `usage: npm run <script> -- [--runs N] [--only a,b] …` */
export function usage(script: string, spec: Record<string, OptionSpec>): string {
  const shown = Object.entries(spec).map(([name, s]) =>
    s.kind === "flag"
      ? `[--${name}]`
      : `[--${name} ${s.value ?? (s.kind === "list" || s.kind === "counts" ? "A,B" : "N")}]`,
  );
  return `usage: ${script} ${shown.join(" ")}`;
}

/** The options of `argv` by `spec`; throws BenchUsageError naming the first mistake. */
export function parseBenchArgs<const S extends Record<string, OptionSpec>>(
  spec: S,
  argv: readonly string[],
): BenchArgs<S> {
  let parsed: ReturnType<typeof parseArgs>["values"];
  try {
    ({ values: parsed } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: Object.fromEntries(
        Object.entries(spec).map(([name, s]) => [name, { type: s.kind === "flag" ? "boolean" : "string" }]),
      ) as ParseArgsConfig["options"],
    }));
  } catch (err) {
    throw new BenchUsageError((err as Error).message.split("\n")[0]!.replace(/\. To specify .*$/, ""));
  }
  const out: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(spec)) {
    const given = parsed[name];
    if (s.kind === "flag") {
      out[name] = given === true;
      continue;
    }
    const text = typeof given === "string" ? given : s.default;
    if (s.kind === "path") {
      if (text === "") throw new BenchUsageError(`--${name} needs a value`);
      out[name] = text;
    } else if (s.kind === "list") {
      out[name] = (text ?? "").split(",").filter(Boolean);
    } else if (s.kind === "counts") {
      const items = (text ?? "").split(",").filter(Boolean);
      if (items.some((c) => !/^[1-9]\d*$/.test(c)))
        throw new BenchUsageError(
          `--${name} takes positive whole numbers, not ${JSON.stringify(text ?? "")}`,
        );
      out[name] = items.map(Number);
    } else {
      const n = Number(text);
      const ok = text !== undefined && text.trim() !== "" && Number.isFinite(n) && n >= 0;
      if (!ok || (s.kind === "count" && (!Number.isInteger(n) || n < 1)))
        throw new BenchUsageError(
          `--${name} takes ${s.kind === "count" ? "a positive whole number" : "a number ≥ 0"}, not ${JSON.stringify(text ?? "")}`,
        );
      out[name] = n;
    }
  }
  return out as BenchArgs<S>;
}

/**
 * parseBenchArgs on this process's arguments, then `check` (a message for what the options cannot be
 * together, or undefined); a mistake ends the process: one line, usage, exit 2.
 */
export function benchArgs<const S extends Record<string, OptionSpec>>(
  script: string,
  spec: S,
  check: (args: BenchArgs<S>) => string | undefined = () => undefined,
): BenchArgs<S> {
  try {
    const args = parseBenchArgs(spec, process.argv.slice(2));
    const wrong = check(args);
    if (wrong) throw new BenchUsageError(wrong);
    return args;
  } catch (err) {
    if (!(err instanceof BenchUsageError)) throw err;
    process.stderr.write(`${script}: ${err.message}\n${usage(script, spec)}\n`);
    process.exit(2);
  }
}
