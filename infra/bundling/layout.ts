/**
 * Where the package keeps what it builds (scripts/build.js, infra/bundling/build.ts), relative to its
 * root: the repository, or node_modules/ferry once installed. The construct reads the Lambda code from
 * here at synth time, so this module imports nothing but Node built-ins (it is bundled into the construct).
 */
import * as path from "node:path";

/** The Lambda code: one directory per function (the contract's names), each the function's asset. */
export const LAMBDA_DIR = path.join("dist", "lambda");
/** The file of each function's directory: its export `handler` is the Handler `index.handler`. */
export const LAMBDA_FILE = "index.mjs";
/** The CLI bundle that cli/ferry.js runs, and the directory of its chunks. */
export const CLI_DIR = "dist";
/** The construct as JavaScript (`ferry/infra`), and its declarations. */
export const CONSTRUCT_DIR = path.join("dist", "infra");
export const TYPES_DIR = path.join("dist", "types");
/** The notices of the third-party code inside the bundles. */
export const NOTICES_FILE = path.join("dist", "THIRD-PARTY-LICENSES.txt");

/** The directory a function's code is deployed from: `<root>/dist/lambda/<function>`. */
export function lambdaCodeDirectory(root: string, fn: string): string {
  return path.join(root, LAMBDA_DIR, fn);
}
