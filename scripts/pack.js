// npm run package [-- DESTINATION]: builds everything (scripts/build.js) and writes ferry-<version>.tgz into
// DESTINATION (default: the current directory) from a staged copy of the package (infra/bundling/pack.ts).
// Install it with `npm install -g ./ferry-<version>.tgz` (the CLI) or `npm install ./ferry-<version>.tgz`
// in a CDK app (the construct: `import { ImageTransfer } from "ferry/infra"`).
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildPackage } from "../infra/bundling/build.ts";
import { packTarball } from "../infra/bundling/pack.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const destination = resolve(process.argv[2] ?? ".");
await buildPackage(root);
const { file, files } = await packTarball(root, destination);
process.stdout.write(`${file} (${files.length} files)\n`);
