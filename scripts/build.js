// Builds what the package ships into dist/ (infra/bundling/build.ts: the CLI, each Lambda function's
// code, the construct as JavaScript and its types, the third-party notices) and links `ferry` into
// node_modules/.bin. Runs at `npm ci` and `npm pack` (prepare), before the tests and the benchmarks;
// `npm run ferry` always runs the sources.
//
//   node scripts/build.js           everything
//   node scripts/build.js lambda    only dist/lambda (cdk.json runs it before every synthesis)
//
// Node ≥ 22.18 (the `node` devDependency that npm scripts put first on PATH) strips the types of the
// TypeScript it imports.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildPackage, TARGETS } from "../infra/bundling/build.ts";
import "./link-bin.js";

const targets = process.argv.slice(2);
const unknown = targets.filter((t) => !TARGETS.includes(t));
if (unknown.length > 0) {
  process.stderr.write(`build: unknown target ${unknown.join(", ")} (targets: ${TARGETS.join(", ")})\n`);
  process.exit(2);
}
await buildPackage(
  join(dirname(fileURLToPath(import.meta.url)), ".."),
  targets.length > 0 ? targets : TARGETS,
);
