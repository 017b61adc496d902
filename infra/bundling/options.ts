/**
 * How ferry's code is bundled, written once: the Lambda handlers (dist/lambda/<function>/index.mjs, the
 * code ImageTransfer deploys), the CLI (dist/ferry.mjs) and the construct itself (dist/infra/index.mjs,
 * what a CDK app imports from the installed package). scripts/build.js writes them through
 * infra/bundling/build.ts; bench/cold-start.ts and the tests bundle with the same options
 * (infra/bundling/bundle.ts). esbuild's JS API, so that plugins apply.
 */
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { BuildOptions, Plugin } from "esbuild";

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The slim undici entry every bundle uses instead of undici's index.js (see the file's header). */
export const UNDICI_LAMBDA_ENTRY = path.join(HERE, "undici-lambda.cjs");

/**
 * undici's HTTP/2 client is never used (ferry never sets allowH2) but loads node:http2 and node:tls at
 * start-up: a stub takes its place (infra/bundling/undici-no-h2.cjs).
 */
export const noHttp2: Plugin = {
  name: "undici-no-http2",
  setup(b) {
    b.onResolve({ filter: /^\.\/client-h2\.js$/ }, (args) =>
      args.importer.includes(`${path.sep}undici${path.sep}`)
        ? { path: path.join(HERE, "undici-no-h2.cjs") }
        : undefined,
    );
  },
};

/**
 * Node built-ins that dependencies load at start-up for what ferry never uses, each replaced inside that
 * dependency by a stand-in (the files say what they keep): node:http and node:assert in undici, and
 * node:child_process in commander. Together ~20 of Node's internal modules off the way to the first
 * request (`npm run bench:startup`).
 */
const STAND_INS: readonly { builtin: string; dependency: string; file: string }[] = [
  { builtin: "node:http", dependency: "undici", file: "undici-node-http.cjs" },
  { builtin: "node:assert", dependency: "undici", file: "undici-assert.cjs" },
  { builtin: "node:child_process", dependency: "commander", file: "lazy-child-process.cjs" },
];
export const builtinStandIns: Plugin = {
  name: "builtin-stand-ins",
  setup(b) {
    for (const s of STAND_INS) {
      const filter = new RegExp(`^${s.builtin}$`);
      b.onResolve({ filter }, (args) =>
        args.importer.includes(`${path.sep}${s.dependency}${path.sep}`)
          ? { path: path.join(HERE, s.file) }
          : undefined,
      );
    }
  },
};

/** CommonJS dependencies bundled into ESM still call require() for Node built-ins. */
const ESM_REQUIRE_BANNER =
  "import { createRequire as __ferryRequire } from 'node:module'; const require = __ferryRequire(import.meta.url);";

/**
 * What every bundle of ferry's own code shares: minified ESM for Node 22 with every dependency inside,
 * `undici` aliased to the slim entry, its HTTP/2 client stubbed out, and the built-in stand-ins above. No keepNames: Step Functions
 * Retry/Catch match error names, and ferry's errors (and the AWS SDK's) assign `this.name` explicitly
 * rather than relying on class names; keeping names costs ~26 KiB per handler.
 */
const COMMON = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  minify: true,
  keepNames: false,
  legalComments: "none", // the notices go to dist/THIRD-PARTY-LICENSES.txt (infra/bundling/build.ts)
  banner: { js: ESM_REQUIRE_BANNER },
  alias: { undici: UNDICI_LAMBDA_ENTRY },
  plugins: [noHttp2, builtinStandIns],
  outExtension: { ".js": ".mjs" },
  logLevel: "warning",
} as const satisfies BuildOptions;

/**
 * A Lambda handler: one self-contained file per function (no code splitting), the AWS SDK inside (the
 * versions ferry pins and tests, and a faster cold start than resolving the runtime's own copy).
 * - `module` before `main`: a dependency's ESM build where it ships both (NodejsFunction's choice for
 *   ESM, which built this code before it was prebuilt).
 * - undici carries llhttp twice, as WebAssembly with and without SIMD, and loads the plain one only when
 *   the SIMD one cannot be compiled. Node 22 on Lambda's x86_64 and arm64 always compiles it (V8's Wasm
 *   SIMD is on by default on both), so the plain copy is left out: ~70 KiB less per handler. Should a
 *   runtime ever lack SIMD, the first request fails with "Cannot find module …/llhttp-wasm.js".
 */
export const LAMBDA_OPTIONS = {
  ...COMMON,
  mainFields: ["module", "main"],
  external: ["../llhttp/llhttp-wasm.js"],
  sourcemap: false,
} as const satisfies BuildOptions;

/**
 * The CLI: each verb's module is its own chunk, loaded only when that verb runs (cli/main.ts, VERBS), so
 * a command pays for its own code only; start-up counts when ferry runs once per image.
 */
export const CLI_OPTIONS = {
  ...COMMON,
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
} as const satisfies BuildOptions;

/**
 * The construct, for CDK apps that install the package: aws-cdk-lib and constructs stay imports (the
 * app's own copies: a second copy of either breaks `instanceof` and the construct tree), the rest of
 * infra/ and the workflow contract inside. Not minified: it runs once per synthesis, and a stack trace
 * into it should read like the sources.
 */
export const CONSTRUCT_OPTIONS = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  external: ["aws-cdk-lib", "aws-cdk-lib/*", "constructs"],
  legalComments: "none",
  outExtension: { ".js": ".mjs" },
  logLevel: "warning",
} as const satisfies BuildOptions;
