// Bundles the CLI into dist/ferry.mjs and links `ferry` into node_modules/.bin. Runs at `npm ci`
// (prepare) and before the tests; `npm run ferry` always runs the sources.
//
// Start-up counts when ferry runs once per image (`npm run bench:cold` has the figures):
// - one bundle instead of the TypeScript module graph;
// - each verb's module is its own chunk, loaded only when that verb runs (cli/main.ts, VERBS);
// - `undici` is the slim entry the Lambda bundles use (infra/bundling/undici-lambda.cjs): undici's
//   CommonJS index loads fetch, WebSocket, the Cache API and more that ferry never calls.
import { rmSync } from "node:fs";
import { build } from "esbuild";
import "./link-bin.js";

rmSync("dist", { recursive: true, force: true });
/** undici's HTTP/2 client is never used (no allowH2) but loads node:http2 and node:tls at start-up. */
const noHttp2 = {
  name: "undici-no-http2",
  setup(b) {
    b.onResolve({ filter: /^\.\/client-h2\.js$/ }, (args) =>
      args.importer.includes("undici")
        ? { path: new URL("../infra/bundling/undici-no-h2.cjs", import.meta.url).pathname }
        : undefined,
    );
  },
};

await build({
  plugins: [noHttp2],
  entryPoints: { ferry: "cli/main.ts" },
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node22",
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  alias: { undici: "./infra/bundling/undici-lambda.cjs" },
  logLevel: "warning",
  legalComments: "none",
  minify: true,
  // CommonJS dependencies bundled into ESM still call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __ferryRequire } from 'node:module'; const require = __ferryRequire(import.meta.url);",
  },
});
