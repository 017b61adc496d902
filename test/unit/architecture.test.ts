/**
 * The dependency rules, as a test (docs/architecture.md explains them): the import graph of every
 * TypeScript file of the product is read and each arrow the rules forbid fails, naming file and import.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const PRODUCT = ["shared", "cli", "functions", "infra", "serve", "load", "bench", "scripts"];

function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) out.push(...files(rel));
    else if (/\.(ts|js|cjs|mjs)$/.test(e.name)) out.push(rel);
  }
  return out;
}

interface Arrow {
  from: string;
  /** A repository path (`shared/registry/client.ts`) or a package name (`@aws-sdk/client-s3`). */
  to: string;
  local: boolean;
}

/** Every import, export-from, dynamic import() and require() of a file; type-only imports included. */
function arrows(file: string): Arrow[] {
  const text = readFileSync(join(ROOT, file), "utf8").replace(/\/\*[\s\S]*?\*\/|^\s*\/\/.*$/gm, "");
  const specs = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*["']([^"']+)["']/g),
    ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
    ...text.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g),
  ].map((m) => m[1]!);
  return specs.map((s) =>
    s.startsWith(".")
      ? { from: file, to: normalize(join(dirname(file), s)), local: true }
      : { from: file, to: s.replace(/^node:/, "node:"), local: false },
  );
}

const graph = PRODUCT.flatMap(files).flatMap(arrows);
const under = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);
const AWS_PACKAGES = /^(@aws-sdk\/|@smithy\/|@middy\/|@aws-lambda-powertools\/|aws-cdk-lib|constructs)/;

/** Files that import nothing but Node built-ins: data and pure functions infra/ may use. */
function dependencyFree(file: string): boolean {
  return arrows(file).every((a) => !a.local && a.to.startsWith("node:"));
}

/**
 * shared/'s leaves, which every part of shared/ may use: the base error, the clock and the bounded map;
 * they import nothing.
 */
const SHARED_LEAVES = ["shared/errors.ts", "shared/clock.ts", "shared/concurrency.ts"];

describe("dependency rules", () => {
  it("read the graph: hundreds of arrows, each rule below has arrows to judge", () => {
    expect(graph.length).toBeGreaterThan(500);
    for (const dir of ["shared/registry", "shared/transfer", "cli", "functions", "infra", "load", "serve"])
      expect(
        graph.some((a) => under(a.from, dir)),
        dir,
      ).toBe(true);
  });

  it("shared/'s leaves (the base error, the clock, the bounded map) import nothing", () => {
    for (const leaf of SHARED_LEAVES) expect(arrows(leaf), leaf).toEqual([]);
  });

  it("shared/registry imports no other shared module but the leaves, no AWS, no middy, nothing outside shared", () => {
    const bad = graph.filter(
      (a) =>
        under(a.from, "shared/registry") &&
        (a.local
          ? !under(a.to, "shared/registry") && !SHARED_LEAVES.includes(a.to)
          : AWS_PACKAGES.test(a.to)),
    );
    expect(bad).toEqual([]);
  });

  it("shared/transfer imports registry, staging, the leaves and its own files only; no AWS", () => {
    const ok = ["shared/transfer", "shared/registry", "shared/staging", ...SHARED_LEAVES];
    const bad = graph.filter(
      (a) =>
        under(a.from, "shared/transfer") &&
        (a.local ? !ok.some((d) => under(a.to, d)) : AWS_PACKAGES.test(a.to)),
    );
    expect(bad).toEqual([]);
  });

  it("shared/* imports no cli/, functions/, infra/, load/, serve/, bench/ or test/", () => {
    const outside = ["cli", "functions", "infra", "load", "serve", "bench", "test"];
    const bad = graph.filter(
      (a) => under(a.from, "shared") && a.local && outside.some((d) => under(a.to, d)),
    );
    expect(bad).toEqual([]);
  });

  it("nothing imports functions/ but infra/ (bundling) and the tests", () => {
    const bad = graph.filter(
      (a) => a.local && under(a.to, "functions") && !under(a.from, "functions") && !under(a.from, "infra"),
    );
    expect(bad).toEqual([]);
  });

  it("product code (cli, shared, functions, load, serve) imports nothing from bench/, the project's benchmarks", () => {
    const bad = graph.filter((a) => a.local && under(a.to, "bench") && !under(a.from, "bench"));
    expect(bad).toEqual([]);
  });

  it("infra/ imports from shared/ only dependency-free modules (the workflow contract, data, pure rules)", () => {
    const used = graph.filter((a) => under(a.from, "infra") && a.local && under(a.to, "shared"));
    expect(used.length).toBeGreaterThan(0);
    const bad = used.filter((a) => !dependencyFree(a.to));
    expect(bad).toEqual([]);
  });

  it("no import cycles between the product's top-level modules", () => {
    const module = (p: string) =>
      under(p, "shared") ? p.split("/").slice(0, 2).join("/").replace(/\.ts$/, "") : p.split("/")[0]!;
    const edges = new Map<string, Set<string>>();
    for (const a of graph.filter((x) => x.local)) {
      const [f, t] = [module(a.from), module(relative(ROOT, join(ROOT, a.to)))];
      if (f !== t) edges.set(f, (edges.get(f) ?? new Set()).add(t));
    }
    const cycles: string[] = [];
    const visit = (n: string, path: string[]) => {
      if (path.includes(n)) {
        cycles.push([...path.slice(path.indexOf(n)), n].join(" → "));
        return;
      }
      for (const m of edges.get(n) ?? []) visit(m, [...path, n]);
    };
    for (const n of edges.keys()) visit(n, []);
    expect([...new Set(cycles)]).toEqual([]);
  });
});
