/**
 * Builds what the package ships (scripts/build.js runs it at `npm ci`, `npm run build` and `npm pack`):
 *
 *   dist/ferry.mjs, dist/chunks/   the CLI that cli/ferry.js runs (CLI_OPTIONS; then rolldown merges the
 *                                  chunks on a copy's path: buildCli)
 *   dist/lambda/<function>/        each function's code, index.mjs (LAMBDA_OPTIONS): what ImageTransfer
 *                                  deploys, inside this repository and from an installed package alike
 *   dist/infra/index.mjs           the construct as JavaScript, for CDK apps (`ferry/infra`), and its
 *   dist/types/                    declarations: Node strips no types under node_modules
 *   dist/THIRD-PARTY-LICENSES.txt  the notices of every package bundled into the above
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { promisify } from "node:util";
import { build, type Metafile } from "esbuild";
import { rolldown } from "rolldown";
import { FUNCTIONS } from "../../shared/workflow/contract.ts";
import { bundleEach } from "./bundle.ts";
import {
  CLI_DIR,
  CONSTRUCT_DIR,
  LAMBDA_DIR,
  LAMBDA_FILE,
  lambdaCodeDirectory,
  NOTICES_FILE,
  TYPES_DIR,
} from "./layout.ts";
import { CLI_OPTIONS, CONSTRUCT_OPTIONS } from "./options.ts";

const require = createRequire(import.meta.url);

/**
 * The CLI: dist/ferry.mjs and its chunks. esbuild bundles and splits it (CLI_OPTIONS): each verb its own
 * chunk, and the code verbs share in chunks by which verbs share it — ~100 files, and `ferry copy` loaded
 * 31 of them before its first request, most a few hundred bytes to 2 KB. Node's ES module loader costs per
 * file (resolve, read, compile-cache lookup, link), so rolldown then rewrites the bundle with the chunks on
 * the copy's path — the entry's static imports and the copy verb's, transitively — merged into one, and
 * the rest of pull and push's path into another (`verbPaths`): a copy loads 4 files, its first request
 * ~8 ms sooner (docs/benchmarks.md, Start-up). Every other verb loads what it loaded before, with those
 * chunks in place of the ones they hold.
 */
export async function buildCli(root: string): Promise<Metafile> {
  const out = path.join(root, CLI_DIR);
  fs.rmSync(path.join(out, "ferry.mjs"), { force: true });
  fs.rmSync(path.join(out, "chunks"), { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const split = fs.mkdtempSync(path.join(out, ".split-"));
  try {
    const result = await build({
      ...CLI_OPTIONS,
      plugins: [...CLI_OPTIONS.plugins],
      absWorkingDir: root,
      entryPoints: { ferry: "cli/main.ts" },
      outdir: split,
      metafile: true,
    });
    const paths = verbPaths(result.metafile, ["cli/commands/copy.ts", "cli/commands/pull-push.ts"]);
    const groups = paths.map((files, i) => {
      const merged = new Set(files.map((f) => path.resolve(root, f)));
      return {
        name: ["copy-path", "pull-push-path"][i]!,
        test: (id: string) => merged.has(path.resolve(id)),
      };
    });
    const bundle = await rolldown({
      input: { ferry: path.join(split, "ferry.mjs") },
      platform: "node",
      external: [/^node:/],
      treeshake: false, // esbuild's output, already shaken
      // a dependency's direct eval (jsonpath-plus, in the workflow runner's chunk) is kept as it is
      onLog: (level, log, handler) => (log.code === "EVAL" ? undefined : handler(level, log)),
    });
    await bundle.write({
      dir: out,
      format: "esm",
      entryFileNames: "[name].mjs",
      chunkFileNames: "chunks/[name]-[hash].mjs",
      minify: true,
      codeSplitting: { groups },
    });
    await bundle.close();
    return result.metafile;
  } finally {
    fs.rmSync(split, { recursive: true, force: true });
  }
}

/**
 * The chunks of an esbuild CLI build (paths as in its metafile) that each verb module of `verbs` loads
 * before its first request: those the entry imports statically, and the verb's chunk and those it imports
 * statically, transitively; the entry and the verb chunks excluded, and each chunk in the first path
 * that has it (so `pull` loads the copy's path and the rest of its own).
 */
export function verbPaths(metafile: Metafile, verbs: readonly string[]): string[][] {
  const outputs = Object.entries(metafile.outputs);
  const of = (entry: string) => {
    const found = outputs.find(([, o]) => o.entryPoint === entry)?.[0];
    if (found === undefined) throw new Error(`build: no chunk of ${entry} in the CLI build`);
    return found;
  };
  const entry = of("cli/main.ts");
  const starts = verbs.map(of);
  const taken = new Set<string>([entry, ...starts]);
  return starts.map((start) => {
    const seen = new Set<string>([entry, start]);
    const todo = [...seen];
    while (todo.length > 0) {
      for (const i of metafile.outputs[todo.pop()!]?.imports ?? [])
        if (i.kind === "import-statement" && !i.external && !seen.has(i.path)) {
          seen.add(i.path);
          todo.push(i.path);
        }
    }
    const own = [...seen].filter((f) => !taken.has(f));
    for (const f of own) taken.add(f);
    return own;
  });
}

/**
 * Every function's code, `dist/lambda/<function>/index.mjs`, in one esbuild run (each file is what a run
 * of its own gives: bundleEach). The two load-test functions share an entry, so their files are equal
 * and CDK makes them one asset.
 */
export async function buildLambdas(root: string): Promise<Metafile> {
  fs.rmSync(path.join(root, LAMBDA_DIR), { recursive: true, force: true });
  const entries = Object.fromEntries(
    Object.entries(FUNCTIONS).map(([name, fn]) => [`${name}/index`, fn.entry]),
  );
  const { files, metafile } = await bundleEach(entries, path.join(root, LAMBDA_DIR));
  for (const name of Object.keys(FUNCTIONS)) {
    const expected = path.join(lambdaCodeDirectory(root, name), LAMBDA_FILE);
    if (files[`${name}/index`] !== expected) throw new Error(`build: ${name} was not written to ${expected}`);
  }
  return metafile;
}

/** The construct (infra/index.ts) as dist/infra/index.mjs. */
export async function buildConstruct(root: string): Promise<Metafile> {
  const outdir = path.join(root, CONSTRUCT_DIR);
  fs.rmSync(outdir, { recursive: true, force: true });
  // The construct finds the package root from its own URL, two directories up (REPOSITORY_ROOT in
  // infra/constructs/props.ts): dist/infra/index.mjs is as deep as infra/constructs/props.ts.
  if (path.relative(root, outdir).split(path.sep).length !== 2)
    throw new Error(`build: the construct must be two directories below the root, not in ${outdir}`);
  const result = await build({
    ...CONSTRUCT_OPTIONS,
    external: [...CONSTRUCT_OPTIONS.external],
    absWorkingDir: root,
    entryPoints: { index: "infra/index.ts" },
    outdir,
    metafile: true,
  });
  const packages = Object.keys(result.metafile.inputs).filter((f) => f.includes("node_modules/"));
  if (packages.length > 0)
    throw new Error(`build: the construct bundles packages it should import: ${packages.join(", ")}`);
  return result.metafile;
}

/** The construct's declarations (tsc, infra/bundling/tsconfig.types.json) in dist/types/. */
export async function emitTypes(root: string): Promise<void> {
  fs.rmSync(path.join(root, TYPES_DIR), { recursive: true, force: true });
  const tsc = require.resolve("typescript/bin/tsc");
  try {
    await promisify(execFile)(
      process.execPath,
      [tsc, "-p", path.join(root, "infra", "bundling", "tsconfig.types.json")],
      { cwd: root },
    );
  } catch (e) {
    const { stdout, stderr } = e as { stdout?: string; stderr?: string };
    throw new Error(
      `build: tsc could not emit the construct's declarations:\n${stdout ?? ""}${stderr ?? ""}`,
    );
  }
}

/**
 * dist/THIRD-PARTY-LICENSES.txt: each package bundled into the outputs (from esbuild's metafiles), with
 * its version, license and license file. The bundles drop license comments (legalComments: none), so
 * the package carries the notices here instead.
 */
export function writeNotices(root: string, metafiles: readonly Metafile[]): string[] {
  const dirs = new Set<string>();
  for (const metafile of metafiles) {
    for (const input of Object.keys(metafile.inputs)) {
      const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
      if (m) dirs.add(m[1]!);
    }
  }
  const entries = [...dirs].map((dir) => {
    const abs = path.join(root, dir);
    const pkg = JSON.parse(fs.readFileSync(path.join(abs, "package.json"), "utf8")) as {
      name: string;
      version: string;
      license?: string;
    };
    const file = fs.readdirSync(abs).find((f) => /^(licen[cs]e|copying|notice)/i.test(f));
    const text = file
      ? fs.readFileSync(path.join(abs, file), "utf8").trim()
      : "(no license file in the package)";
    return { id: `${pkg.name}@${pkg.version}`, license: pkg.license ?? "UNKNOWN", text };
  });
  const unique = [...new Map(entries.map((e) => [e.id, e])).values()].sort((a, b) =>
    a.id.localeCompare(b.id),
  );
  const body = unique.map((e) => `${"=".repeat(78)}\n${e.id} (${e.license})\n\n${e.text}\n`).join("\n");
  fs.writeFileSync(
    path.join(root, NOTICES_FILE),
    `ferry's bundles (dist/) include code of the following packages, under these licenses.\n\n${body}`,
  );
  return unique.map((e) => e.id);
}

export type Target = "cli" | "lambda" | "infra";
export const TARGETS: readonly Target[] = ["cli", "lambda", "infra"];

/**
 * Builds the targets (all by default). The notices are written when the CLI and the Lambda code are
 * both built, as `npm pack` does; `lambda` alone (cdk.json, bench:cold) rebuilds only the code deployed.
 */
export async function buildPackage(root: string, targets: readonly Target[] = TARGETS): Promise<void> {
  fs.mkdirSync(path.join(root, "dist"), { recursive: true });
  const types = targets.includes("infra") ? emitTypes(root) : undefined;
  const metafiles: Metafile[] = [];
  if (targets.includes("cli")) metafiles.push(await buildCli(root));
  if (targets.includes("lambda")) metafiles.push(await buildLambdas(root));
  if (targets.includes("infra")) metafiles.push(await buildConstruct(root));
  await types;
  if (targets.includes("cli") && targets.includes("lambda")) writeNotices(root, metafiles);
}
