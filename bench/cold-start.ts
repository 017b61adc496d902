/**
 * npm run bench:cold — how big each Lambda function's code is and how long a fresh Node process takes to
 * import it, against the targets: code ≤ 600 KiB, cold import ≤ 60 ms (median).
 *
 * It measures what ImageTransfer deploys: the directory `dist/lambda/<function>/` (its size is the
 * function's code, every file in it: today one, `index.mjs`), built by `node scripts/build.js lambda` (the
 * npm script runs it first) with LAMBDA_OPTIONS (infra/bundling/options.ts). Each file is checked byte
 * for byte against a fresh bundle of its source (which also gives the composition by package), then
 * imported `--runs` times, each in a new `node` process, as Lambda's init phase does: the figure is the
 * median time of `await import(bundle)`, plus the whole process's wall time. This machine's CPU is not
 * Lambda's (arm64, CPU share by memory): compare bundles with each other, and treat absolute numbers as
 * a lower bound.
 *
 *   npm run bench:cold -- [--runs 15] [--only resolve,api] [--compare DIR] [--compare-sdk]
 *                         [--compare-undici] [--json]
 *
 * Comparisons, each imported alternately with the deployed bundle in the same run (A/B/A/B…, the order
 * rotating, so that a busy machine slows all alike):
 *   --compare DIR     another build's functions, DIR/<function>/index.mjs (e.g. the dist/lambda of a
 *                     checkout of an earlier commit): before → after;
 *   --compare-sdk     the same code with the AWS SDK (`@aws-sdk/*`, `@smithy/*`) left out of the bundle,
 *                     as if deployed to use the Node 22 runtime's own SDK v3: its import includes loading
 *                     the SDK from node_modules, as Lambda loads it from /var/runtime/node_modules;
 *   --compare-undici  undici's own index.js instead of the slim entry.
 * Results also go to bench/results/cold-start-<time>.json. The exit status is 1 when a function's code
 * is over the size target (not for time: it depends on the machine).
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { deflateRawSync } from "node:zlib";
import type { Metafile } from "esbuild";
import { type BundleVariant, bundle } from "../infra/bundling/bundle.ts";
import { LAMBDA_FILE, lambdaCodeDirectory } from "../infra/bundling/layout.ts";
import { FUNCTION_SPECS, type FunctionSpec } from "../infra/constructs/ferry-function.ts";
import { benchArgs } from "./args.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** The targets (issue #12): each function's code at most 600 KiB, its cold import at most 60 ms. */
export const TARGET_BYTES = 600 * 1024;
export const TARGET_IMPORT_MS = 60;

interface Options {
  runs: number;
  only: string[] | undefined;
  compare: string | undefined;
  compareSdk: boolean;
  compareUndici: boolean;
  json: boolean;
}

/** The command line (bench/args.ts: a mistake ends the run with one line and exit status 2). */
function options(): Options {
  const a = benchArgs(
    "npm run bench:cold --",
    {
      runs: { kind: "count", default: "15" },
      only: { kind: "list", value: "FN,FN" },
      compare: { kind: "path", value: "DIR" },
      "compare-sdk": { kind: "flag" },
      "compare-undici": { kind: "flag" },
      json: { kind: "flag" },
    },
    (o) => {
      const unknown = o.only.filter((n) => !(n in FUNCTION_SPECS));
      return unknown.length
        ? `--only names functions (${Object.keys(FUNCTION_SPECS).join(", ")}), not ${unknown.join(", ")}`
        : undefined;
    },
  );
  return {
    runs: a.runs,
    only: a.only.length ? a.only : undefined,
    compare: a.compare === undefined ? undefined : path.resolve(a.compare),
    compareSdk: a["compare-sdk"],
    compareUndici: a["compare-undici"],
    json: a.json,
  };
}

type Stats = { median: number; min: number; max: number };

/** A variant measured against the deployed bundle in the same run. */
export interface Comparison {
  /** Its code: the bundle's size (for `--compare`, every file of the function's directory). */
  bytes: number;
  importMs: Stats;
}

export interface BundleResult {
  /** Function names (FUNCTION_SPECS keys) sharing this bundle. */
  functions: string[];
  entry: string;
  exports: string[];
  /** The function's code: every file of its directory in dist/lambda. */
  bytes: number;
  /** Deflated size: about what the deployment zip holds. */
  zipBytes: number;
  /** Largest contributors, by package. */
  top: Array<{ name: string; bytes: number }>;
  importMs: Stats;
  processMs: Stats;
  /** --compare: the other build's function. */
  before?: Comparison;
  /** --compare-sdk: the AWS SDK outside the bundle, loaded from node_modules. */
  sdkExternal?: Comparison;
  /** --compare-undici: undici's full index.js. */
  fullUndici?: Comparison;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const stats = (xs: number[]): Stats => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

/** Bytes of every file under `dir`: what Code.fromAsset(dir) deploys. */
function directoryBytes(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? directoryBytes(p) : fs.statSync(p).size;
  }
  return total;
}

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
  const byEntry = new Map<string, { names: string[]; exports: string[]; bundleName: string }>();
  for (const [name, spec] of Object.entries(FUNCTION_SPECS) as Array<[string, FunctionSpec]>) {
    if (opts.only && !opts.only.includes(name)) continue;
    // The file the construct deploys for this function (FerryFunction: Code.fromAsset of its directory).
    const deployed = path.join(lambdaCodeDirectory(ROOT, spec.bundle), LAMBDA_FILE);
    if (!fs.existsSync(deployed))
      throw new Error(`bench:cold: ${path.relative(ROOT, deployed)} is missing: run npm run build`);
    const e = byEntry.get(spec.entry) ?? { names: [], exports: [], bundleName: spec.bundle };
    e.names.push(name);
    e.exports.push(spec.exportName);
    byEntry.set(spec.entry, e);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-cold-"));
  // Bundles that import the SDK at run time must sit where `@aws-sdk/…` resolves: inside the repository
  // (.tmp/ is ignored by git).
  fs.mkdirSync(path.join(ROOT, ".tmp"), { recursive: true });
  const local = fs.mkdtempSync(path.join(ROOT, ".tmp", "cold-"));
  try {
    // Baseline: a process that imports an empty module.
    const empty = path.join(work, "empty.mjs");
    fs.writeFileSync(empty, "export const handler = () => {};\n");
    const baseline: number[] = [];
    for (let i = 0; i < opts.runs; i++) baseline.push(coldImport(empty, "handler")[1]);

    const bundles: BundleResult[] = [];
    let i = 0;
    for (const [entry, { names, exports, bundleName }] of byEntry) {
      const dir = lambdaCodeDirectory(ROOT, bundleName);
      const file = path.join(dir, LAMBDA_FILE);
      const fresh = await bundle(entry, path.join(work, String(i++)));
      if (!fs.readFileSync(fresh.file).equals(fs.readFileSync(file)))
        throw new Error(
          `bench:cold: ${path.relative(ROOT, file)} is not what ${entry} bundles to now: run npm run build`,
        );
      // The variants: [label, file, code bytes].
      const variants: Array<
        [keyof BundleResult & ("before" | "sdkExternal" | "fullUndici"), string, number]
      > = [];
      if (opts.compare) {
        const other = path.join(opts.compare, bundleName);
        if (!fs.existsSync(path.join(other, LAMBDA_FILE)))
          throw new Error(`bench:cold: --compare ${opts.compare} has no ${bundleName}/${LAMBDA_FILE}`);
        variants.push(["before", path.join(other, LAMBDA_FILE), directoryBytes(other)]);
      }
      const built = async (variant: BundleVariant, where: string) => {
        const b = await bundle(entry, path.join(where, String(i++)), variant);
        return [b.file, fs.statSync(b.file).size] as const;
      };
      if (opts.compareSdk) variants.push(["sdkExternal", ...(await built({ sdkExternal: true }, local))]);
      if (opts.compareUndici) variants.push(["fullUndici", ...(await built({ fullUndici: true }, work))]);

      const exportName = exports[0]!;
      const files = [file, ...variants.map((v) => v[1])];
      for (const f of files) coldImport(f, exportName); // warm the OS file cache, not Node (each run is a new process)
      const imports = files.map(() => [] as number[]);
      const walls: number[] = [];
      for (let r = 0; r < opts.runs; r++) {
        // Rotate which variant goes first, so that none always follows another.
        for (let k = 0; k < files.length; k++) {
          const v = (r + k) % files.length;
          const [ms, wall] = coldImport(files[v]!, exportName);
          imports[v]!.push(ms);
          if (v === 0) walls.push(wall);
        }
      }
      const result: BundleResult = {
        functions: names,
        entry,
        exports,
        bytes: directoryBytes(dir),
        zipBytes: deflateRawSync(fs.readFileSync(file), { level: 9 }).length,
        top: topPackages(fresh.metafile, 4),
        importMs: stats(imports[0]!),
        processMs: stats(walls),
      };
      variants.forEach(([label, , bytes], k) => {
        result[label] = { bytes, importMs: stats(imports[k + 1]!) };
      });
      bundles.push(result);
    }
    return { node: process.version, baselineMs: median(baseline), bundles };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(local, { recursive: true, force: true });
  }
}

function report(result: Awaited<ReturnType<typeof run>>, opts: Options): string {
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  const ms = (n: number) => `${n.toFixed(0)} ms`;
  const over = (b: BundleResult) =>
    [b.bytes > TARGET_BYTES ? "size" : "", b.importMs.median > TARGET_IMPORT_MS ? "time" : ""]
      .filter(Boolean)
      .join(", ");
  const rows = result.bundles.map((b) => [
    b.functions.join(", "),
    kib(b.bytes),
    kib(b.zipBytes),
    `${ms(b.importMs.median)} (${ms(b.importMs.min)}–${ms(b.importMs.max)})`,
    ms(b.processMs.median),
    over(b) || "—",
    b.top.map((t) => `${t.name} ${kib(t.bytes)}`).join(", "),
  ]);
  const header = [
    "function(s)",
    "code",
    "zipped",
    "cold import, median (min–max)",
    "process",
    "over target",
    "largest parts",
  ];
  const table = (head: string[], body: string[][]) => {
    const widths = head.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]!.length)));
    const line = (cells: string[]) =>
      cells
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join("  ")
        .trimEnd();
    return [line(head), ...body.map(line)];
  };
  const comparison = (
    title: string,
    key: "before" | "sdkExternal" | "fullUndici",
    from: string,
    to: string,
  ) => {
    const body = result.bundles.map((b) => {
      const c = b[key]!;
      return [
        b.functions.join(", "),
        `${kib(c.bytes)} → ${kib(b.bytes)}`,
        `${ms(c.importMs.median)} → ${ms(b.importMs.median)}`,
        `${ms(c.importMs.min)} → ${ms(b.importMs.min)}`,
      ];
    });
    return [
      "",
      title,
      ...table(["function(s)", `code, ${from} → ${to}`, "import median", "import min"], body),
    ];
  };
  return [
    `ferry Lambda functions, ${opts.runs} cold imports each, node ${result.node} on ${os.arch()} (${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, load ${os.loadavg()[0]?.toFixed(1)})`,
    `targets: code ≤ ${kib(TARGET_BYTES)}, cold import ≤ ${ms(TARGET_IMPORT_MS)} (median); a node process importing an empty module: ${ms(result.baselineMs)} (in "process")`,
    "",
    ...table(header, rows),
    ...(opts.compare
      ? comparison(`--compare ${opts.compare} (same runs, alternated):`, "before", "that build", "this one")
      : []),
    ...(opts.compareSdk
      ? comparison(
          "--compare-sdk: the AWS SDK outside the bundle, loaded from node_modules at import as from the runtime (same runs, alternated):",
          "sdkExternal",
          "SDK outside",
          "SDK inside",
        )
      : []),
    ...(opts.compareUndici
      ? comparison(
          "--compare-undici: undici's full index.js instead of the slim entry (same runs, alternated):",
          "fullUndici",
          "full undici",
          "slim entry",
        )
      : []),
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const opts = options();
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
  if (result.bundles.some((b) => b.bytes > TARGET_BYTES)) process.exitCode = 1;
}
