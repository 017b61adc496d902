// Links the `ferry` command into node_modules/.bin so that `npx ferry` works inside this checkout
// right after `npm ci` (npm links the bins of dependencies, not the root package's own).
import { existsSync, lstatSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const binDir = join(root, "node_modules", ".bin");
const link = join(binDir, "ferry");
const target = join(root, "cli", "ferry.js");
mkdirSync(binDir, { recursive: true });
if (existsSync(link) || lstatSync(link, { throwIfNoEntry: false })) rmSync(link);
symlinkSync(relative(binDir, target), link);
