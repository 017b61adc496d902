/**
 * How ferry's code is bundled, written once: the Lambda handlers (dist/lambda/<function>/index.mjs, the
 * code ImageTransfer deploys), the CLI (dist/ferry.mjs) and the construct itself (dist/infra/index.mjs,
 * what a CDK app imports from the installed package). scripts/build.js writes them through
 * infra/bundling/build.ts; bench/cold-start.ts and the tests bundle with the same options
 * (infra/bundling/bundle.ts). esbuild's JS API, so that plugins apply.
 */
import * as fs from "node:fs";
import { createRequire, isBuiltin } from "node:module";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants as zlib } from "node:zlib";
import type { BuildOptions, Plugin } from "esbuild";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const nodeRequire = createRequire(import.meta.url);

/** The slim undici entry every bundle uses instead of undici's index.js (see the file's header). */
export const UNDICI_LAMBDA_ENTRY = path.join(HERE, "undici-lambda.cjs");

/** The AWS SDK clients' default credentials in the Lambda code (see the file's header). */
export const LAMBDA_CREDENTIALS = path.join(HERE, "aws-credentials-lambda.mjs");

/** A module of ferry's dependencies replaced by a file of infra/bundling: `specifier` imported by `dependency`. */
interface StandIn {
  specifier: string;
  dependency: string;
  file: string;
}

/** A plugin putting each stand-in in place of what it replaces (each file says what it keeps). */
function standIns(name: string, table: readonly StandIn[]): Plugin {
  return {
    name,
    setup(b) {
      for (const s of table) {
        const filter = new RegExp(`^${s.specifier.replace(/[.]/g, "\\.")}$`);
        b.onResolve({ filter }, (args) =>
          args.importer.includes(`${path.sep}${s.dependency}${path.sep}`)
            ? { path: path.join(HERE, s.file) }
            : undefined,
        );
      }
    },
  };
}

/**
 * Every bundle's stand-ins, for what dependencies load at start-up for what ferry never uses:
 * - undici's HTTP/2 client (ferry never sets allowH2), which loads node:http2 and node:tls;
 * - node:http and node:assert in undici, and node:child_process in commander — together ~20 of Node's
 *   internal modules off the way to the first request (`npm run bench:startup`);
 * - hdr-histogram-js's formatters, which set up ICU number formatting at import.
 */
export const standInsEverywhere = standIns("stand-ins", [
  { specifier: "./client-h2.js", dependency: "undici", file: "undici-no-h2.cjs" },
  { specifier: "node:http", dependency: "undici", file: "undici-node-http.cjs" },
  { specifier: "node:assert", dependency: "undici", file: "undici-assert.cjs" },
  { specifier: "node:child_process", dependency: "commander", file: "lazy-child-process.cjs" },
  { specifier: "./formatters", dependency: "hdr-histogram-js", file: "hdr-lazy-formatters.cjs" },
]);

/**
 * The AWS SDK clients' schemas (`dist-es/schemas/schemas_0.js` of each `@aws-sdk/client-…` package), with what each
 * operation sends and receives, as tree-shakable as they were meant to be. Each schema is an array
 * literal whose traits are objects with computed keys (`{ [_hE]: 403 }`, `_hE` a string constant of the
 * same file), and esbuild keeps any object literal with a computed key, for the key's `toString` could
 * have side effects: every schema of every operation stayed in the code (the S3 client's 65 KiB of them
 * for the ten operations ferry calls). The keys written as the strings they name (`{ "httpError": 403 }`)
 * are the same objects, and esbuild leaves out the schemas no imported command reaches: 47-49 KiB less
 * per Lambda function. test/infra/bundles.test.ts checks every client's schemas are equal either way.
 */
export const sdkSchemaKeys: Plugin = {
  name: "sdk-schema-keys",
  setup(b) {
    b.onLoad(
      { filter: /[\\/]@aws-sdk[\\/]client-[a-z0-9-]+[\\/]dist-es[\\/]schemas[\\/]schemas_\d+\.js$/ },
      async (args) => ({
        contents: inlineSchemaKeys(await fs.promises.readFile(args.path, "utf8")),
        loader: "js",
        resolveDir: path.dirname(args.path),
      }),
    );
  },
};

/** A schemas file with each computed key that names one of its top-level string constants written as that string. */
export function inlineSchemaKeys(source: string): string {
  const strings = new Map<string, string>();
  for (const m of source.matchAll(/^const (_\w+) = ("(?:[^"\\\n]|\\.)*");$/gm)) strings.set(m[1]!, m[2]!);
  return source.replace(/([{,]\s*)\[(_\w+)\]:/g, (key, before: string, name: string) => {
    const literal = strings.get(name);
    // ({ ["__proto__"]: x } defines a property, { "__proto__": x } sets the prototype: left computed)
    return literal === undefined || literal === '"__proto__"' ? key : `${before}${literal}:`;
  });
}

/**
 * Node built-ins that an ES module `import`s come through require() (the banner's), each when one of its
 * exports is first read:
 * - Node builds the ES module facade of a built-in by reading every one of its exports, and node:http's
 *   include the lazy `WebSocket`, `CloseEvent` and `MessageEvent`: an `import … from "node:http"` (the
 *   AWS SDK's HTTP handler has one) loaded Node's own copy of undici — fetch, WebSocket and node:http2
 *   with it — at every cold start, for nothing (~10 ms);
 * - the import of a built-in a function may never use (node:child_process for a credential helper,
 *   node:stream/web, node:zlib…) costs its loading at every cold start; here it loads on first use.
 *   What the first invocation needs anyway (node:tls, node:https, node:dns for the first request) then
 *   loads there: ~2 ms of what the import saves moves into it (docs/benchmarks.md).
 * - in the CLI the same: its `import`s of node:fs, node:crypto and node:os built their facades before the
 *   first request, and node:fs's lazy `ReadStream` and `promises` loaded file streams, fs/promises and
 *   readline with them (a copy failing at its first manifest loaded 86 internal modules beyond
 *   `node -e 0`'s, now 59; its first request 3-9 ms sooner, `npm run bench:startup -- --vs-ferry`).
 * The export names are the build's Node's: a name read at run time that the running Node lacks reads as
 * undefined, as it would through the import. Named and namespace imports only: a default import of a
 * built-in whose module is itself a function (`import assert from "node:assert"`, `import Stream from
 * "node:stream"`) would get the object of getters here, not the function (none in the bundles today; write
 * `import { strict } from …` or `import { Stream } from …`).
 */
const PRELOADED_BUILTINS = ["node:process", "node:events", "node:buffer", "node:console", "node:timers"];
export const builtinsThroughRequire: Plugin = {
  name: "node-builtins-through-require",
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z][a-z0-9_/]*$/ }, (args) =>
      args.kind === "import-statement" && isBuiltin(args.path)
        ? { path: args.path.startsWith("node:") ? args.path : `node:${args.path}`, namespace: "builtin" }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "builtin" }, (args) => {
      // Loaded by every Node process before any code, and objects whose methods need their `this`
      // (`process.on`): the module itself.
      if (PRELOADED_BUILTINS.includes(args.path))
        return { contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: "js" };
      // CommonJS whose exports are getters: esbuild reads `import { x }` as `ns.x` where x is used
      const names = Object.keys(nodeRequire(args.path) as object).filter((n) => n !== "default");
      return {
        contents:
          `let m; const load = () => (m ??= require(${JSON.stringify(args.path)}));\n` +
          `for (const k of ${JSON.stringify(names)}) Object.defineProperty(exports, k, { enumerable: true, get: () => load()[k] });`,
        loader: "js",
      };
    });
  },
};

/**
 * What the Lambda code leaves out of its dependencies, none of which ferry uses (each stub says so if
 * ever called, in one clear error):
 * - undici's FormData request bodies: `undici-no-formdata.cjs` for its `web/fetch/body.js`;
 * - hdr-histogram-js's WebAssembly histograms and pako (the load tester's functions): `hdr-no-wasm.cjs`,
 *   `hdr-no-pako.cjs`;
 * - the AWS SDK's event streams, which @smithy/core imports dynamically for the operations that have
 *   one: `sdk-no-event-streams.mjs` for that import only (lambdaStubs);
 * - of each AWS SDK client's package.json (imported whole for its version, in the user agent), all but
 *   the version (lambdaStubs).
 * And undici's llhttp WebAssembly (the SIMD build, the one the functions use: LAMBDA_OPTIONS) goes in
 * brotli-compressed: base64 of the module, 71 KiB, was a ninth of each function's code; compressed it is
 * 20 KiB, and it is decompressed (~0.2 ms) where undici first reads it, at the first connection.
 */
export const lambdaStandIns = standIns("lambda-stand-ins", [
  { specifier: "../web/fetch/body.js", dependency: "undici", file: "undici-no-formdata.cjs" },
  { specifier: "./wasm", dependency: "hdr-histogram-js", file: "hdr-no-wasm.cjs" },
  { specifier: "../wasm", dependency: "hdr-histogram-js", file: "hdr-no-wasm.cjs" },
  { specifier: "pako", dependency: "hdr-histogram-js", file: "hdr-no-pako.cjs" },
]);
export const lambdaStubs: Plugin = {
  name: "lambda-stubs",
  setup(b) {
    b.onResolve({ filter: /^@smithy\/core\/event-streams$/ }, (args) =>
      args.kind === "dynamic-import" ? { path: path.join(HERE, "sdk-no-event-streams.mjs") } : undefined,
    );
    b.onLoad({ filter: /[\\/]node_modules[\\/]@aws-sdk[\\/][^\\/]+[\\/]package\.json$/ }, async (args) => {
      const { version } = JSON.parse(await fs.promises.readFile(args.path, "utf8")) as { version: string };
      return { contents: JSON.stringify({ version }), loader: "json" };
    });
    b.onLoad({ filter: /[\\/]undici[\\/]lib[\\/]llhttp[\\/]llhttp_simd-wasm\.js$/ }, (args) => ({
      contents: compressedWasmModule(nodeRequire(args.path) as Buffer),
      loader: "js",
    }));
  },
};

/**
 * A CommonJS module exporting `wasm` (a WebAssembly module's bytes) as undici's llhttp files do, from a
 * getter, but brotli-compressed in the code and decompressed on first read.
 */
export function compressedWasmModule(wasm: Buffer): string {
  const packed = brotliCompressSync(wasm, {
    params: {
      [zlib.BROTLI_PARAM_QUALITY]: zlib.BROTLI_MAX_QUALITY,
      [zlib.BROTLI_PARAM_SIZE_HINT]: wasm.length,
    },
  });
  return [
    '"use strict";',
    `const packed = ${JSON.stringify(packed.toString("base64"))};`,
    "let wasm;",
    'Object.defineProperty(module, "exports", {',
    '  get: () => (wasm ??= require("node:zlib").brotliDecompressSync(Buffer.from(packed, "base64"))),',
    "});",
  ].join("\n");
}

/** Where ferry's own code for the Lambda functions lives. */
const PRODUCT_DIRS = ["shared", "functions", "load"].map((d) => path.join(HERE, "..", "..", d) + path.sep);

/**
 * ferry's own modules have no import-time side effects: marked so, a module none of whose exports a
 * function uses is left out whole. Without it, an import kept whatever that module imports — the
 * triggers (api, event, schedule) carried undici and the registry client through an error class.
 */
export const ferrySideEffectFree: Plugin = {
  name: "ferry-side-effect-free",
  setup(b) {
    b.onResolve({ filter: /^\.\.?\/.*\.ts$/ }, (args) => {
      if (!PRODUCT_DIRS.some((d) => args.importer.startsWith(d))) return undefined;
      return { path: path.resolve(args.resolveDir, args.path), sideEffects: false };
    });
  },
};

/** CommonJS dependencies bundled into ESM still call require() for Node built-ins. */
const ESM_REQUIRE_BANNER =
  "import { createRequire as __ferryRequire } from 'node:module'; const require = __ferryRequire(import.meta.url);";

/**
 * What every bundle of ferry's own code shares: minified ESM for Node 22 with every dependency inside,
 * `undici` aliased to the slim entry, the stand-ins above (`standInsEverywhere`), the SDK schemas' keys
 * written as literals (`sdkSchemaKeys`), and built-ins required on first use (`builtinsThroughRequire`).
 * No keepNames: Step Functions
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
  plugins: [standInsEverywhere, sdkSchemaKeys, builtinsThroughRequire],
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
  alias: { ...COMMON.alias, "@aws-sdk/credential-provider-node": LAMBDA_CREDENTIALS },
  plugins: [...COMMON.plugins, lambdaStandIns, lambdaStubs, ferrySideEffectFree],
  sourcemap: false,
} as const satisfies BuildOptions;

/**
 * The CLI: each verb's module is its own chunk, loaded only when that verb runs (cli/main.ts, VERBS), so
 * a command pays for its own code only; start-up counts when ferry runs once per image. (buildCli in
 * build.ts then merges the shared chunks on the copy's path into one.)
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
