/**
 * The documentation holds together: every relative link of README.md and docs/*.md points at a file or
 * folder that exists (and, with an anchor into a Markdown file, at a heading that exists), and README stays
 * a front door (≤ 15 KB, the two commands near the top).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const pages = [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];

/** GitHub's anchor for a heading. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

function headings(file: string): Set<string> {
  const text = readFileSync(join(ROOT, file), "utf8").replace(/```[\s\S]*?```/g, "");
  return new Set([...text.matchAll(/^#{1,6}\s+(.*)$/gm)].map((m) => slug(m[1]!)));
}

describe("documentation", () => {
  it("every relative link resolves", () => {
    const broken: string[] = [];
    let links = 0;
    for (const page of pages) {
      const text = readFileSync(join(ROOT, page), "utf8").replace(/```[\s\S]*?```/g, "");
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/i.test(target)) continue; // https:, mailto:
        links++;
        const [path, anchor] = target.split("#") as [string, string | undefined];
        const file = path ? join(dirname(page), path) : page;
        if (path && !existsSync(join(ROOT, file))) broken.push(`${page}: ${target}`);
        else if (anchor && file.endsWith(".md") && !headings(file).has(anchor))
          broken.push(`${page}: ${target} (no such heading)`);
      }
    }
    expect(links).toBeGreaterThan(15);
    expect(broken).toEqual([]);
  });

  it("README is a front door: at most 15 KB, the two commands near the top, a link to every docs page", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    expect(Buffer.byteLength(readme)).toBeLessThanOrEqual(15_000);
    const commands = readme.indexOf("npm ci && npm run demo");
    expect(commands).toBeGreaterThan(0);
    expect(commands).toBeLessThan(3_000);
    expect(readme).toContain("bash .ci/run");
    for (const page of pages.filter((p) => p.startsWith("docs/")))
      expect(readme, page).toContain(`(${page})`);
  });
});
