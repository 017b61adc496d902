/**
 * npm run bench:cold — how big each Lambda bundle is and how long a fresh Node process takes to import it.
 *
 * It measures the files ImageTransfer deploys: `dist/lambda/<function>/index.mjs`, built by
 * `node scripts/build.js lambda` (the npm script runs it first) with LAMBDA_OPTIONS
 * (infra/bundling/options.ts: minified ESM for node22, dependencies inside, the slim undici entry, no
 * HTTP/2 client). Each is checked byte for byte against a fresh bundle of its source (which also gives
 * the composition by package), then imported `--runs` times, each in a new `node` process, as Lambda's
 * init phase does: the figure is the median time of `await import(bundle)`, plus the whole process's wall
 * time. This machine's CPU is not Lambda's (arm64, CPU share by memory): compare bundles with each
 * other, and treat absolute numbers as a lower bound.
 *
 *   npm run bench:cold -- [--runs 9] [--only resolve,api] [--compare-undici] [--json]
 *
 * --compare-undici also bundles undici's own index.js instead of the slim entry and imports both bundles
 * alternately (A/B/A/B…, so that a busy machine slows both alike): what the alias saves.
 * Results also go to bench/results/cold-start-<time>.json.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { deflateRawSync } from "node:zlib";
import type { Metafile } from "esbuild";
import { bundle } from "../infra/bundling/bundle.ts";
import { LAMBDA_FILE, lambdaCodeDirectory } from "../infra/bundling/layout.ts";
import { FUNCTION_SPECS, type FunctionSpec } from "../infra/constructs/ferry-function.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** The target: every bundle under 1 MB. */
const TARGET_BYTES = 1_000_000;

interface Options {
  runs: number;
  only: string[] | undefined;
  compareUndici: boolean;
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { runs: 9, only: undefined, compareUndici: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--runs") opts.runs = Number(argv[++i]);
    else if (arg === "--only") opts.only = (argv[++i] ?? "").split(",").filter(Boolean);
    else if (arg === "--compare-undici") opts.compareUndici = true;
    else if (arg === "--json") opts.json = true;
    else
      throw new Error(`bench:cold: unknown argument ${arg} (--runs N, --only a,b, --compare-undici, --json)`);
  }
  if (!Number.isInteger(opts.runs) || opts.runs < 1)
    throw new Error("bench:cold: --runs must be a positive integer");
  return opts;
}

export interface BundleResult {
  /** Function names (FUNCTION_SPECS keys) sharing this bundle. */
  functions: string[];
  entry: string;
  exports: string[];
  bytes: number;
  /** Deflated size: about what the deployment zip holds. */
  zipBytes: number;
  /** Largest contributors, by package. */
  top: Array<{ name: string; bytes: number }>;
  importMs: { median: number; min: number; max: number };
  processMs: { median: number; min: number; max: number };
  /** With --compare-undici: the same bundle with undici's full index.js, imported alternately. */
  fullUndici?: { bytes: number; importMs: { median: number; min: number; max: number } };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const stats = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

function topPackages(metafile: Metafile, n: number): Array<{ name: string; bytes: number }> {
  const output = Object.values(metafile.outputs)[0];
  const by = new Map<string, number>();
  for (const [file, input] of Object.entries(output?.inputs ?? {})) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
    const name = m ? m[1]! : file.split("/").slice(0, 2).join("/");
    by.set(name, (by.get(name) ?? 0) + input.bytesInOutput);
  }
  return [...by]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, bytes]) => ({ name, bytes }));
}

/** Imports the bundle in a new node process; returns [import ms, process wall ms]. */
function coldImport(file: string, exportName: string): [number, number] {
  const script =
    `const t0 = performance.now(); const m = await import(${JSON.stringify(pathToFileURL(file).href)});` +
    `const t1 = performance.now();` +
    `if (typeof m[${JSON.stringify(exportName)}] !== "function") throw new Error("no export ${exportName}");` +
    `process.stdout.write(String(t1 - t0));`;
  const start = process.hrtime.bigint();
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
    // What Lambda sets that libraries may read at import time; no credentials.
    env: {
      PATH: process.env.PATH ?? "",
      AWS_REGION: "us-east-1",
      AWS_LAMBDA_FUNCTION_NAME: "bench",
      NODE_ENV: "production",
    },
    encoding: "utf8",
  });
  const wall = Number(process.hrtime.bigint() - start) / 1e6;
  return [Number(out), wall];
}

export async function run(
  opts: Options,
): Promise<{ node: string; baselineMs: number; bundles: BundleResult[] }> {
  const byEntry = new Map<string, { names: string[]; exports: string[]; deployed: string }>();
  for (const [name, spec] of Object.entries(FUNCTION_SPECS) as Array<[string, FunctionSpec]>) {
    if (opts.only && !opts.only.includes(name)) continue;
    // The file the construct deploys for this function (FerryFunction: Code.fromAsset of its directory).
    const deployed = path.join(lambdaCodeDirectory(ROOT, spec.bundle), LAMBDA_FILE);
    if (!fs.existsSync(deployed))
      throw new Error(`bench:cold: ${path.relative(ROOT, deployed)} is missing: run npm run build`);
    const e = byEntry.get(spec.entry) ?? { names: [], exports: [], deployed };
    e.names.push(name);
    e.exports.push(spec.exportName);
    byEntry.set(spec.entry, e);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-cold-"));
  try {
    // Baseline: a process that imports an empty module.
    const empty = path.join(work, "empty.mjs");
    fs.writeFileSync(empty, "export const handler = () => {};\n");
    const baseline: number[] = [];
    for (let i = 0; i < opts.runs; i++) baseline.push(coldImport(empty, "handler")[1]);

    const bundles: BundleResult[] = [];
    let i = 0;
    for (const [entry, { names, exports, deployed }] of byEntry) {
      const fresh = await bundle(entry, path.join(work, String(i++)));
      if (!fs.readFileSync(fresh.file).equals(fs.readFileSync(deployed)))
        throw new Error(
          `bench:cold: ${path.relative(ROOT, deployed)} is not what ${entry} bundles to now: run npm run build`,
        );
      const { metafile } = fresh;
      const file = deployed;
      const full = opts.compareUndici ? await bundle(entry, path.join(work, String(i++)), true) : undefined;
      const bytes = fs.statSync(file).size;
      const zipBytes = deflateRawSync(fs.readFileSync(file), { level: 9 }).length;
      const imports: number[] = [];
      const walls: number[] = [];
      const fullImports: number[] = [];
      const exportName = exports[0]!;
      coldImport(file, exportName); // warm the OS file cache, not Node (each run is a new process)
      if (full) coldImport(full.file, exportName);
      for (let r = 0; r < opts.runs; r++) {
        // Alternate which variant goes first, so neither always follows the other.
        if (full && r % 2 === 1) fullImports.push(coldImport(full.file, exportName)[0]);
        const [ms, wall] = coldImport(file, exportName);
        imports.push(ms);
        walls.push(wall);
        if (full && r % 2 === 0) fullImports.push(coldImport(full.file, exportName)[0]);
      }
      bundles.push({
        functions: names,
        entry,
        exports,
        bytes,
        zipBytes,
        top: topPackages(metafile, 4),
        importMs: stats(imports),
        processMs: stats(walls),
        ...(full ? { fullUndici: { bytes: fs.statSync(full.file).size, importMs: stats(fullImports) } } : {}),
      });
    }
    return { node: process.version, baselineMs: median(baseline), bundles };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function report(result: Awaited<ReturnType<typeof run>>, opts: Options): string {
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  const ms = (n: number) => `${n.toFixed(0)} ms`;
  const rows = result.bundles.map((b) => [
    b.functions.join(", "),
    kib(b.bytes) + (b.bytes >= TARGET_BYTES ? " (over 1 MB)" : ""),
    kib(b.zipBytes),
    `${ms(b.importMs.median)} (${ms(b.importMs.min)}–${ms(b.importMs.max)})`,
    ms(b.processMs.median),
    b.top.map((t) => `${t.name} ${kib(t.bytes)}`).join(", "),
  ]);
  const header = [
    "function(s)",
    "bundle",
    "zipped",
    "cold import, median (min–max)",
    "process",
    "largest parts",
  ];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join("  ")
      .trimEnd();
  return [
    `ferry Lambda bundles, ${opts.runs} cold imports each, node ${result.node} on ${os.arch()} (${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, load ${os.loadavg()[0]?.toFixed(1)})`,
    `a node process importing an empty module: ${ms(result.baselineMs)} (included in "process")`,
    "",
    line(header),
    ...rows.map(line),
    ...(opts.compareUndici
      ? [
          "",
          "undici's full index.js instead of the slim entry (same runs, alternated):",
          ...result.bundles.map(
            (b) =>
              `  ${b.functions.join(", ")}: ${kib(b.fullUndici!.bytes)} → ${kib(b.bytes)}, import median ` +
              `${ms(b.fullUndici!.importMs.median)} → ${ms(b.importMs.median)} (min ${ms(b.fullUndici!.importMs.min)} → ${ms(b.importMs.min)})`,
          ),
        ]
      : []),
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const opts = parseArgs(process.argv.slice(2));
  const result = await run(opts);
  const dir = path.join(ROOT, "bench", "results");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `cold-start-${Date.now()}.json`);
  fs.writeFileSync(file, `${JSON.stringify({ ...result, options: opts }, null, 2)}\n`);
  process.stdout.write(
    opts.json
      ? `${JSON.stringify(result, null, 2)}\n`
      : `${report(result, opts)}\n\n(${path.relative(ROOT, file)})\n`,
  );
  const over = result.bundles.filter((b) => b.bytes >= TARGET_BYTES);
  if (over.length > 0) process.exitCode = 1;
}
