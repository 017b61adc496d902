/**
 * The list format of bulk copies, read by `ferry copy --from-file` and written as failure lists (by
 * `--failures FILE` and by the bulk-migrate workflow's Summarize step), so that a failed run's list is
 * the input of its re-run:
 *
 *   # ferry: 1 of 3 image(s) failed …            comments start with `#` (anywhere on a line)
 *   # RegistryError: PUT … answered 500 …        the error of the line below
 *   src.example.com/app:v1 dst.example.com/app:v1
 *
 * One `SRC DST` pair per line, separated by blanks; blank lines are ignored.
 */
import { FerryError } from "../registry/errors.ts";

export interface CopyListLine {
  /** 1-based line number in the text. */
  line: number;
  source: string;
  destination: string;
}

/** The pairs of a list; a malformed line is a usage error naming `file:line`. */
export function parseCopyList(text: string, file: string): CopyListLine[] {
  const out: CopyListLine[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) return;
    const parts = line.split(/\s+/);
    if (parts.length !== 2)
      throw new FerryError("USAGE", `${file}:${i + 1}: expected "SRC DST", got "${line.slice(0, 200)}"`);
    out.push({ line: i + 1, source: parts[0]!, destination: parts[1]! });
  });
  return out;
}

export interface FailedCopy {
  /** As the input named it (`--from-file` text, or the bulk item's reference). */
  source?: string;
  destination?: string;
  /** What went wrong: becomes the comment above the line. */
  error: string;
}

/** Longest error comment kept per line: enough for ferry's one-line messages. */
const MAX_COMMENT = 1000;

/**
 * A failure list in the `--from-file` format: `header` lines as comments, then per failure its error as
 * a `# ` comment and its `SRC DST` line. A failure without source or destination (its input was not
 * recorded) stays a comment: it cannot be re-run from the list. Comments are one line each, without
 * control characters, and keep no upload session or query string: ferry's messages never hold
 * credentials, and an upload Location (a write capability for some registries) never reaches the file.
 */
export function formatFailureList(failures: readonly FailedCopy[], header: readonly string[]): string {
  const lines = header.map((h) => `# ${comment(h)}`);
  for (const f of failures) {
    lines.push(`# ${comment(f.error)}`);
    if (f.source && f.destination && !/\s/.test(f.source + f.destination))
      lines.push(`${f.source} ${f.destination}`);
    else lines.push(`#   (not re-runnable: ${comment(`${f.source ?? "?"} → ${f.destination ?? "?"}`)})`);
  }
  return `${lines.join("\n")}\n`;
}

/** One printable line: whitespace collapsed, control characters dropped, URLs stripped of secrets. */
export function comment(text: string): string {
  const one = scrubUrls(text)
    .replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  return one.length > MAX_COMMENT ? `${one.slice(0, MAX_COMMENT)}…` : one;
}

/** Upload session paths (`…/blobs/uploads/<session>`) and every URL's query string, left out. */
function scrubUrls(text: string): string {
  // query strings first: the session placeholder's brackets would end a URL early
  return text
    .replace(/(https?:\/\/[^\s?#"'<>]+)\?[^\s"'<>]*/g, "$1?…")
    .replace(/(\/blobs\/uploads\/)[^\s?#"'<>]+/g, "$1<session>");
}
