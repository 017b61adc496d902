/**
 * The package tarball (`npm run package`: scripts/pack.js builds, then calls `packTarball`). It is packed
 * from a staged copy: the files package.json lists under `files`, README.md, LICENSE, and a package.json without
 * the fields only this repository uses (scripts, devDependencies, overrides, allowScripts). So an app
 * that installs the tarball sees no lifecycle script — npm flags a dependency's `prepare` as an install
 * script even where it never runs — and no development dependency list. `npm pack` in the repository
 * refuses (package.json `prepack`), so the tarball has one recipe.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { FUNCTIONS } from "../../shared/workflow/contract.ts";
import { LAMBDA_FILE, lambdaCodeDirectory, NOTICES_FILE } from "./layout.ts";

/** package.json fields that serve the repository only; the staged manifest leaves them out. */
export const DEVELOPMENT_FIELDS = ["scripts", "devDependencies", "overrides", "allowScripts"] as const;

interface Manifest {
  name: string;
  version: string;
  files: string[];
  bin: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
  [field: string]: unknown;
}

/** Copies what the package ships into `dir` with the consumer's package.json; returns that manifest. */
export function stagePackage(root: string, dir: string): Manifest {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as Manifest;
  for (const field of DEVELOPMENT_FIELDS) delete manifest[field];
  // What the manifest points at, and what the construct reads at synth time, must be built.
  const needed = [
    ...Object.values(manifest.bin),
    ...Object.values(manifest.exports).flatMap((e) => (typeof e === "string" ? [e] : Object.values(e))),
    ...Object.keys(FUNCTIONS).map((fn) => path.join(lambdaCodeDirectory("", fn), LAMBDA_FILE)),
    NOTICES_FILE,
  ];
  const missing = needed.filter((f) => !fs.existsSync(path.join(root, f)));
  if (missing.length > 0)
    throw new Error(`pack: ${missing.join(", ")} missing: run npm run build (npm run package does)`);
  for (const entry of [...manifest.files, "README.md", "LICENSE"]) {
    const from = path.join(root, entry);
    if (!fs.existsSync(from)) throw new Error(`pack: ${entry} (package.json files) does not exist`);
    fs.cpSync(from, path.join(dir, entry), { recursive: true });
  }
  fs.writeFileSync(path.join(dir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** Stages the package and packs it into `destination`; returns the tarball's path and its file list. */
export async function packTarball(
  root: string,
  destination: string,
): Promise<{ file: string; files: string[]; manifest: Manifest }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-pack-"));
  try {
    const manifest = stagePackage(root, dir);
    const { stdout } = await promisify(execFile)(
      "npm",
      ["pack", dir, "--json", "--pack-destination", destination],
      { cwd: destination, maxBuffer: 16 * 1024 * 1024 },
    );
    const [report] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    if (!report) throw new Error("pack: npm pack reported no tarball");
    return {
      file: path.join(destination, report.filename),
      files: report.files.map((f) => f.path),
      manifest,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
