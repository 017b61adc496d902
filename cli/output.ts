/**
 * Human-readable output. Everything ferry prints for people may hold text a registry chose (tags,
 * repository names, labels, error messages), so it goes through `printable`: escape sequences are shown,
 * not executed. JSON output needs no such step (JSON.stringify escapes control characters).
 */
import { printable } from "../shared/registry/errors.ts";

/** Writes human-readable text to stdout, control characters escaped (newlines kept). */
export function writeText(text: string): void {
  process.stdout.write(printable(text, true));
}
