/** Pieces every HTML page of ferry bench uses: uPlot inlined, HTML escaping, JSON safe inside <script>. */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { FerryError } from "../shared/registry/errors.ts";

export function uplotAssets(): { js: string; css: string } {
  try {
    const dir = dirname(createRequire(import.meta.url).resolve("uplot/package.json"));
    return {
      js: readFileSync(join(dir, "dist", "uPlot.iife.min.js"), "utf8"),
      css: readFileSync(join(dir, "dist", "uPlot.min.css"), "utf8"),
    };
  } catch (e) {
    throw new FerryError(
      "HTML_REPORT",
      `cannot read uPlot from node_modules for --html: ${(e as Error).message}`,
    );
  }
}

export const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** JSON safe inside <script>: no `</script>`, no HTML comment openers, no U+2028/9 surprises. */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}
