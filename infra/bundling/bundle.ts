/**
 * Bundles Lambda handlers with LAMBDA_OPTIONS (infra/bundling/options.ts), the options of the code
 * ImageTransfer deploys (dist/lambda/<function>/index.mjs, written by infra/bundling/build.ts through
 * `bundleEach`). Used where what is deployed must be what runs: the build, bench/cold-start.ts (sizes,
 * start-up times), the bundle tests (test/infra/bundles.test.ts) and the tests that run the bundled
 * handlers as Lambda would (test/helpers/lambda.ts).
 */
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Metafile } from "esbuild";
import { LAMBDA_OPTIONS } from "./options.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * Bundles `entry` (relative to the repository root, or absolute) into `outdir/index.mjs` — the file the
 * function deploys, whose `handler` export is the function's handler (`index.handler`).
 * `fullUndici`: undici's own index.js instead of the slim entry (bench:cold --compare-undici).
 */
export async function bundle(
  entry: string,
  outdir: string,
  fullUndici = false,
): Promise<{ file: string; metafile: Metafile }> {
  const { files, metafile } = await bundleEach({ index: entry }, outdir, fullUndici);
  return { file: files.index!, metafile };
}

/**
 * Bundles several entries in one esbuild run: `outdir/<name>.mjs` for each `name → entry`. Without code
 * splitting esbuild bundles every entry on its own, so each file is byte for byte what `bundle` gives for
 * that entry alone (test/infra/bundles.test.ts), in a fraction of the time of separate runs.
 */
export async function bundleEach(
  entries: Readonly<Record<string, string>>,
  outdir: string,
  fullUndici = false,
): Promise<{ files: Record<string, string>; metafile: Metafile }> {
  const result = await build({
    ...LAMBDA_OPTIONS,
    entryPoints: Object.fromEntries(
      Object.entries(entries).map(([name, e]) => [name, path.resolve(ROOT, e)]),
    ),
    mainFields: [...LAMBDA_OPTIONS.mainFields],
    external: [...LAMBDA_OPTIONS.external],
    plugins: [...LAMBDA_OPTIONS.plugins],
    alias: fullUndici ? {} : { ...LAMBDA_OPTIONS.alias },
    outdir,
    metafile: true,
    logLevel: "error",
  });
  const files = Object.fromEntries(
    Object.keys(entries).map((name) => [name, path.join(outdir, `${name}.mjs`)]),
  );
  return { files, metafile: result.metafile };
}
