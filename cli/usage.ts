/**
 * Usage errors (exit 2) for what the user typed. The parsers in shared/ throw typed errors
 * (InvalidReferenceError, an invalid platform, …) whatever the text came from; whether that is a usage
 * error depends on where the text came from, which only the command knows. An invalid reference a
 * registry returned (a catalog entry, a tag) is that registry's failure (exit 1), so the parsers are not
 * changed: each command passes its arguments, flags and files through `usage()`.
 */
import { FerryError } from "../shared/registry/errors.ts";

/**
 * Runs the parse of a command-line argument, flag or file the user gave: a ferry error it throws
 * becomes a usage error with the same message (any other error, a bug, stays as it is).
 */
export function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw asUsage(e);
  }
}

/** `e` as a usage error (same message, the original as its cause), when it is a ferry error. */
export function asUsage(e: unknown): unknown {
  if (!isFerryError(e) || e.code === "USAGE") return e;
  return new FerryError("USAGE", e.message, { cause: e });
}

/**
 * A FerryError, also one of another copy of the class: the workflow's modules are loaded from the
 * sources next to the bundle (commands/workflow.ts `load`), whose error classes are not the bundle's.
 */
function isFerryError(e: unknown): e is FerryError {
  if (e instanceof FerryError) return true;
  const f = e as { code?: unknown; retryable?: unknown } | null;
  return e instanceof Error && typeof f?.code === "string" && typeof f.retryable === "boolean";
}
