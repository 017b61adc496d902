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
 * What bench:cold measures against the deployed code (never deployed):
 * - `fullUndici`: undici's own index.js instead of the slim entry (`--compare-undici`);
 * - `sdkExternal`: `@aws-sdk/*` and `@smithy/*` left out, to be imported at run time — in Lambda from the
 *   runtime's own SDK v3 (/var/runtime/node_modules), here from the repository's node_modules
 *   (`--compare-sdk`).
 */
export interface BundleVariant {
  fullUndici?: boolean;
  sdkExternal?: boolean;
}

/**
 * Bundles `entry` (relative to the repository root, or absolute) into `outdir/index.mjs` — the file the
 * function deploys, whose `handler` export is the function's handler (`index.handler`).
 */
export async function bundle(
  entry: string,
  outdir: string,
  variant: BundleVariant = {},
): Promise<{ file: string; metafile: Metafile }> {
  const { files, metafile } = await bundleEach({ index: entry }, outdir, variant);
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
  variant: BundleVariant = {},
): Promise<{ files: Record<string, string>; metafile: Metafile }> {
  const alias: Record<string, string> = { ...LAMBDA_OPTIONS.alias };
  if (variant.fullUndici) delete alias.undici;
  if (variant.sdkExternal) delete alias["@aws-sdk/credential-provider-node"];
  const result = await build({
    ...LAMBDA_OPTIONS,
    entryPoints: Object.fromEntries(
      Object.entries(entries).map(([name, e]) => [name, path.resolve(ROOT, e)]),
    ),
    mainFields: [...LAMBDA_OPTIONS.mainFields],
    external: [...LAMBDA_OPTIONS.external, ...(variant.sdkExternal ? ["@aws-sdk/*", "@smithy/*"] : [])],
    plugins: [...LAMBDA_OPTIONS.plugins],
    alias,
    outdir,
    metafile: true,
    logLevel: "error",
  });
  const files = Object.fromEntries(
    Object.keys(entries).map((name) => [name, path.join(outdir, `${name}.mjs`)]),
  );
  return { files, metafile: result.metafile };
}
