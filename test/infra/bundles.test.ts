import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { build, type Metafile } from "esbuild";
import { afterAll, describe, expect, it } from "vitest";
import { bundle, bundleEach } from "../../infra/bundling/bundle.ts";
import { LAMBDA_FILE, lambdaCodeDirectory } from "../../infra/bundling/layout.ts";
import {
  compressedWasmModule,
  inlineSchemaKeys,
  LAMBDA_CREDENTIALS,
  sdkSchemaKeys,
  UNDICI_LAMBDA_ENTRY,
} from "../../infra/bundling/options.ts";
import { FUNCTION_SPECS } from "../../infra/constructs/ferry-function.ts";
import { REPOSITORY_ROOT } from "../../infra/constructs/props.ts";
import { FUNCTIONS } from "../../shared/workflow/contract.ts";
import { synth } from "./helpers.ts";

const require = createRequire(import.meta.url);
const slim = require(UNDICI_LAMBDA_ENTRY) as typeof import("undici");

/** Every `.ts` file under the bundled trees (the handlers' import graph lives there). */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(REPOSITORY_ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(rel));
    else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) out.push(rel);
  }
  return out;
}

/**
 * A value as plain data for comparison: the AWS SDK's schemas are arrays that reach each other through
 * functions (`() => PutObjectRequest$`) and cycles; each function is called (classes named), each object
 * seen before written as the path where it was first met.
 */
function described(value: unknown, seen = new Map<object, string>(), at = "$"): unknown {
  if (typeof value === "function") {
    if (/^class\b/.test(Function.prototype.toString.call(value))) return `class ${value.name}`;
    return { called: described((value as () => unknown)(), seen, `${at}()`) };
  }
  if (value === null || typeof value !== "object") return value;
  const first = seen.get(value);
  if (first) return { seenAt: first };
  seen.set(value, at);
  if (Array.isArray(value)) return value.map((v, i) => described(v, seen, `${at}[${i}]`));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, described(v, seen, `${at}.${k}`)]));
}

describe("Lambda bundles", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it("the slim undici entry exports every value ferry imports from undici", () => {
    const named = new Set<string>();
    for (const file of [
      ...sources("shared"),
      ...sources("functions"),
      ...sources("load"),
      ...sources("cli"),
      ...sources("serve"),
    ]) {
      const text = fs.readFileSync(path.join(REPOSITORY_ROOT, file), "utf8");
      for (const m of text.matchAll(/import\s+(type\s+)?\{([^}]*)\}\s+from\s+"undici"/g)) {
        if (m[1]) continue; // import type { ... }: erased
        for (const spec of (m[2] ?? "").split(",")) {
          const s = spec.trim();
          if (!s || s.startsWith("type ")) continue;
          named.add(s.split(/\s+as\s+/)[0]!.trim());
        }
      }
      expect(text, `${file}: use named imports from undici (checked here)`).not.toMatch(
        /import\s+\*\s+as\s+\w+\s+from\s+"undici"|from\s+"undici\//,
      );
    }
    expect(named.size).toBeGreaterThan(0);
    for (const name of named) expect((slim as Record<string, unknown>)[name], name).toBeDefined();
  });

  it("the slim undici entry makes real requests, through the global and a given dispatcher", async () => {
    const server = http.createServer((req, res) => res.end(`${req.method} ${req.url}`));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/`;
    const agent = new slim.Agent({ connections: 2 });
    try {
      const a = await slim.request(url);
      expect(await a.body.text()).toBe("GET /v2/");
      const b = await slim.request(url, { method: "HEAD", dispatcher: agent });
      expect(b.statusCode).toBe(200);
      await b.body.dump();
    } finally {
      await agent.close();
      server.close();
    }
  });

  it("the largest handler bundles without fetch/WebSocket/FormData and imports in a fresh process", async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-bundle-"));
    dirs.push(out);
    const { file, metafile } = await bundle(FUNCTION_SPECS.resolve.entry, out);
    const inputs = Object.keys(metafile.inputs);
    expect(inputs.some((f) => f.includes("undici/lib/web/websocket/"))).toBe(false);
    expect(inputs.some((f) => f.endsWith("undici/index.js"))).toBe(false);
    // FormData request bodies: the stub stands in for fetch's body.js and all it brings
    expect(inputs.filter((f) => f.endsWith("infra/bundling/undici-no-formdata.cjs"))).toHaveLength(1);
    expect(inputs.filter((f) => f.includes("undici/lib/web/"))).toEqual([]);
    const script = `const m = await import(${JSON.stringify(`file://${file}`)}); process.stdout.write(typeof m.handler);`;
    const kind = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      env: { PATH: process.env.PATH ?? "", AWS_REGION: "us-east-1" },
      encoding: "utf8",
    });
    expect(kind).toBe("function");
  });

  it("each function's code is within 600 KiB (issue #12, npm run bench:cold)", () => {
    for (const name of Object.keys(FUNCTIONS)) {
      const dir = lambdaCodeDirectory(REPOSITORY_ROOT, name);
      const bytes = fs.readdirSync(dir).reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0);
      expect(bytes, name).toBeLessThanOrEqual(600 * 1024);
    }
  });

  it("the AWS SDK clients' schemas with their keys inlined are the schemas as published", async () => {
    // Every client ferry bundles: each schema, and each schema it reaches, equal with and without sdkSchemaKeys.
    const clients = ["s3", "ecr", "sts", "secrets-manager", "sfn", "lambda"];
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-schemas-"));
    dirs.push(out);
    for (const client of clients) {
      const schemas = require.resolve(`@aws-sdk/client-${client}/dist-es/schemas/schemas_0.js`, {
        paths: [REPOSITORY_ROOT],
      });
      const source = fs.readFileSync(schemas, "utf8");
      const inlined = inlineSchemaKeys(source);
      expect(
        inlined,
        `${client}: no computed keys to inline — the SDK writes literal keys now (smithy-typescript#1889), sdkSchemaKeys can go`,
      ).not.toBe(source);
      expect(inlined, client).not.toMatch(/[{,]\s*\[_\w+\]:/); // every computed key was a constant's
      const loaded = [];
      for (const [variant, plugins] of [
        ["published", []],
        ["inlined", [sdkSchemaKeys]],
      ] as const) {
        const outfile = path.join(out, `${client}-${variant}.mjs`);
        await build({
          entryPoints: [schemas],
          bundle: true,
          platform: "node",
          format: "esm",
          mainFields: ["module", "main"],
          plugins: [...plugins],
          outfile,
          logLevel: "error",
        });
        loaded.push(described(await import(outfile)));
      }
      expect(loaded[1], client).toEqual(loaded[0]);
    }
  });

  it("undici's llhttp WebAssembly, brotli-compressed in the Lambda code, reads back byte for byte, once", () => {
    const wasm = require("undici/lib/llhttp/llhttp_simd-wasm.js") as Buffer;
    const source = compressedWasmModule(wasm);
    expect(source.length).toBeLessThan(wasm.length / 2);
    const module = { exports: undefined as unknown };
    new Function("module", "require", "Buffer", source)(module, require, Buffer);
    const first = module.exports as Buffer;
    expect(Buffer.isBuffer(first) && first.equals(wasm)).toBe(true);
    expect(module.exports).toBe(first); // decompressed on the first read only
  });

  it("the AWS SDK inside carries only the clients' named commands and Lambda's credentials (no SSO, profiles, STS web identity)", async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-bundle-sdk-"));
    dirs.push(out);
    // What the output holds (the metafile's inputs also list modules read but shaken out entirely).
    const carried = (m: Metafile) =>
      Object.entries(Object.values(m.outputs)[0]!.inputs)
        .filter(([, i]) => i.bytesInOutput > 0)
        .map(([f]) => f);
    const { metafile } = await bundle(FUNCTION_SPECS.resolve.entry, out);
    const inputs = carried(metafile);
    for (const left of [
      "@aws-sdk/nested-clients/",
      "@aws-sdk/credential-provider-ini/",
      "@aws-sdk/credential-provider-sso/",
      "@aws-sdk/credential-provider-process/",
      "@aws-sdk/credential-provider-web-identity/",
      "@aws-sdk/credential-provider-login/",
      "@aws-sdk/token-providers/",
      "@aws-sdk/client-ecr/dist-es/ECR.js", // the aggregated client: every command
      "@smithy/core/dist-es/submodules/event-streams/EventStreamSerde.js",
    ])
      expect(
        inputs.filter((f) => f.includes(left)),
        left,
      ).toEqual([]);
    expect(inputs.filter((f) => f.endsWith("infra/bundling/aws-credentials-lambda.mjs"))).toHaveLength(1);
    // the triggers and Summarize make no registry client: no undici
    for (const fn of ["event", "summarize"] as const) {
      const { metafile: m } = await bundle(FUNCTION_SPECS[fn].entry, path.join(out, fn));
      expect(
        carried(m).filter((f) => f.includes("undici")),
        fn,
      ).toEqual([]);
    }
  });

  it("the Lambda credentials: the environment's, else the container or instance endpoint, else a clear error", async () => {
    const { defaultProvider } = (await import(LAMBDA_CREDENTIALS)) as {
      defaultProvider: (init?: object) => () => Promise<{ accessKeyId: string; sessionToken?: string }>;
    };
    const saved = { ...process.env };
    try {
      process.env.AWS_ACCESS_KEY_ID = "AKIDLAMBDA";
      process.env.AWS_SECRET_ACCESS_KEY = "secret";
      process.env.AWS_SESSION_TOKEN = "token";
      process.env.AWS_PROFILE = "not-read"; // the SDK's chain would go to ~/.aws for this profile
      await expect(defaultProvider()()).resolves.toMatchObject({
        accessKeyId: "AKIDLAMBDA",
        sessionToken: "token",
      });
      for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"])
        delete process.env[k];
      delete process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI;
      delete process.env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI;
      process.env.AWS_EC2_METADATA_DISABLED = "true";
      await expect(defaultProvider()()).rejects.toThrow(/Could not load credentials from the environment/);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  it("a bundled handler's import loads neither Node's own undici (fetch, WebSocket) nor node:http2", () => {
    // An ES module import of node:http reads its lazy WebSocket export, which loads both: the Lambda code
    // requires built-ins instead (builtinsThroughRequire, infra/bundling/options.ts).
    const file = path.join(lambdaCodeDirectory(REPOSITORY_ROOT, "resolve"), LAMBDA_FILE);
    const script =
      `await import(${JSON.stringify(`file://${file}`)});` +
      "process.stdout.write(JSON.stringify(process.moduleLoadList));";
    const loaded = JSON.parse(
      execFileSync(process.execPath, ["--input-type=module", "-e", script], {
        env: { PATH: process.env.PATH ?? "", AWS_REGION: "us-east-1" },
        encoding: "utf8",
      }),
    ) as string[];
    expect(loaded).toContain("NativeModule net"); // the probe saw the import: ferry's undici loads node:net
    // node:http itself no longer loads at import either: undici's stand-in, the SDK's handler on first use
    expect(loaded.filter((m) => /deps\/undici|^NativeModule http2?$/.test(m))).toEqual([]);
  });

  it("the load tester's functions build JavaScript histograms (node:zlib) without hdr-histogram-js's WebAssembly and pako", async () => {
    const probeDir = path.join(REPOSITORY_ROOT, ".tmp");
    fs.mkdirSync(probeDir, { recursive: true });
    const probe = path.join(probeDir, `hdr-probe-${process.pid}.ts`);
    fs.writeFileSync(
      probe,
      'import { decodeHistogram, encodeHistogram, newHistogram } from "../load/metrics.ts";\n' +
        "const h = newHistogram();\nfor (let i = 1; i < 1000; i++) h.recordValue(i * 7);\n" +
        "const d = decodeHistogram(encodeHistogram(h));\n" +
        "process.stdout.write(String(d.totalCount) + ' ' + String(d.getValueAtPercentile(50)));\n",
    );
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-hdr-"));
    dirs.push(out);
    try {
      const { file, metafile } = await bundle(path.relative(REPOSITORY_ROOT, probe), out);
      const inputs = Object.keys(metafile.inputs);
      expect(inputs.filter((f) => /hdr-histogram-js\/dist\/wasm\/|\/pako\//.test(f))).toEqual([]);
      expect(execFileSync(process.execPath, [file], { encoding: "utf8" })).toBe("999 3501");
    } finally {
      fs.rmSync(probe, { force: true });
    }
  });

  it("undici's HTTP/2 client is left out of the Lambda code and the CLI alike: the stub is in its place", async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-bundle-h2-"));
    dirs.push(out);
    const { metafile } = await bundle(FUNCTION_SPECS.cleanup.entry, out);
    const inputs = Object.keys(metafile.inputs);
    expect(inputs.filter((f) => f.endsWith("infra/bundling/undici-no-h2.cjs"))).toHaveLength(1);
    expect(inputs.filter((f) => f.includes("undici/lib/dispatcher/client-h2"))).toEqual([]);
    // The built CLI (dist/ferry.mjs and its chunks) carries the same stub: its message is in one chunk.
    const stub = "built without HTTP/2";
    const chunks = fs.readdirSync(path.join(REPOSITORY_ROOT, "dist", "chunks"));
    const withStub = chunks.filter((c) =>
      fs.readFileSync(path.join(REPOSITORY_ROOT, "dist", "chunks", c), "utf8").includes(stub),
    );
    expect(withStub).toHaveLength(1);
  });

  it("what ImageTransfer deploys is dist/lambda/<function>/index.mjs, byte for byte the bundle of its source today", async () => {
    const { stack, json } = synth();
    const deployed = Object.entries(stack.transfer.functions);
    expect(deployed.length).toBeGreaterThan(5);
    for (const [name, fn] of deployed) {
      expect(fn!.codeDirectory, name).toBe(lambdaCodeDirectory(REPOSITORY_ROOT, name));
      const resource = json.Resources[stack.getLogicalId(fn!.function.node.defaultChild as never)];
      expect(resource?.Properties?.Code, name).toMatchObject({ S3Key: expect.stringMatching(/\.zip$/) });
    }
    // Every function's file in dist/ against a fresh bundle of its entry: a stale dist/ (sources changed
    // since the last build) fails here with the command that fixes it.
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-bundle-fresh-"));
    dirs.push(out);
    const { files } = await bundleEach(
      Object.fromEntries(Object.entries(FUNCTIONS).map(([name, f]) => [name, f.entry])),
      out,
    );
    const stale = Object.keys(FUNCTIONS).filter(
      (name) =>
        !fs
          .readFileSync(files[name]!)
          .equals(fs.readFileSync(path.join(lambdaCodeDirectory(REPOSITORY_ROOT, name), LAMBDA_FILE))),
    );
    expect(stale, "dist/lambda differs from the sources: run npm run build").toEqual([]);
  });

  it("bundling several handlers in one run gives each the bytes of its own run", async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-bundle-each-"));
    dirs.push(out);
    const alone = await bundle(FUNCTION_SPECS.cleanup.entry, path.join(out, "alone"));
    const { files } = await bundleEach(
      { "cleanup/index": FUNCTION_SPECS.cleanup.entry, "stage/index": FUNCTION_SPECS.stageBlob.entry },
      path.join(out, "each"),
    );
    expect(files["cleanup/index"]).toBe(path.join(out, "each", "cleanup", "index.mjs"));
    const bytes = fs.readFileSync(files["cleanup/index"]!);
    expect(bytes.length).toBeGreaterThan(100_000);
    expect(bytes.equals(fs.readFileSync(alone.file))).toBe(true);
    expect(bytes.equals(fs.readFileSync(files["stage/index"]!))).toBe(false);
  });

  it("a bundled request parses HTTP in a fresh process without the plain llhttp copy (left out of the bundles)", async () => {
    const server = http.createServer((req, res) => res.end(`${req.method} ${req.url}`));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/`;
    const probeDir = path.join(REPOSITORY_ROOT, ".tmp");
    fs.mkdirSync(probeDir, { recursive: true });
    const probe = path.join(probeDir, `undici-probe-${process.pid}.ts`);
    fs.writeFileSync(
      probe,
      'import { request } from "undici";\nconst r = await request(process.argv[2]!);\nprocess.stdout.write(await r.body.text());\n',
    );
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-probe-"));
    dirs.push(out);
    try {
      const { file } = await bundle(path.relative(REPOSITORY_ROOT, probe), out);
      expect(fs.readFileSync(file, "utf8")).toContain("llhttp/llhttp-wasm.js"); // left out, required lazily
      const text = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [file, url], { encoding: "utf8" }, (err, stdout) =>
          err ? reject(err) : resolve(stdout),
        ),
      );
      expect(text).toBe("GET /v2/");
    } finally {
      fs.rmSync(probe, { force: true });
      server.close();
    }
  });

  it("a copy's start-up loads 4 files of the bundle, and neither node:http, node:assert, node:child_process, node:tls, fs/promises, perf_hooks nor BlockList", async () => {
    const server = http.createServer((_req, res) => res.writeHead(404).end("{}"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-startup-"));
    dirs.push(out);
    const probe = path.join(out, "modules.mjs");
    const list = path.join(out, "modules.json");
    fs.writeFileSync(
      probe,
      // (not `import … from "node:fs"`: its ES module facade would load fs/promises itself). With the
      // files of the bundle the copy loads, as Node's module loader sees them.
      [
        'const { writeFileSync } = process.getBuiltinModule("node:fs");',
        "const files = [];",
        'process.getBuiltinModule("node:module").registerHooks({',
        "  load(url, context, next) { files.push(url); return next(url, context); },",
        "});",
        `process.on("exit", () => writeFileSync(${JSON.stringify(list)}, JSON.stringify({ modules: process.moduleLoadList, files })));`,
      ].join("\n"),
    );
    try {
      await new Promise<void>((resolve) =>
        execFile(
          path.join(REPOSITORY_ROOT, "cli", "ferry.js"),
          ["copy", `${host}/a:1`, `${host}/b:1`, "-q"],
          { env: { ...process.env, NODE_OPTIONS: `--import ${probe}` } },
          () => resolve(), // the registry has no such image: exit 1 after its first requests
        ),
      );
    } finally {
      server.close();
    }
    const { modules: loaded, files } = JSON.parse(fs.readFileSync(list, "utf8")) as {
      modules: string[];
      files: string[];
    };
    expect(loaded).toContain("NativeModule net"); // the probe saw the copy connect
    // The bundle's files: the entry, rolldown's runtime, the chunks on the copy's path merged into one,
    // and the copy verb (infra/bundling/build.ts, buildCli) — esbuild's split alone gave 31.
    const bundled = files.filter((f) => f.includes("/dist/")).map((f) => path.basename(new URL(f).pathname));
    expect(bundled).toHaveLength(4);
    expect(bundled.filter((f) => f.startsWith("copy-path-"))).toHaveLength(1);
    // fs/promises (with readline) came with the ES module facade of node:fs, built by an `import`
    // (cli/ferry.js, and the bundle's own before builtinsThroughRequire)
    for (const m of [
      "http",
      "assert",
      "child_process",
      "tls",
      "internal/fs/promises",
      "internal/readline/interface",
      "perf_hooks", // loaded by the global `performance`, which shared/clock.ts replaces
      "internal/blocklist", // the network policy's address ranges, built on first use (none in the CLI)
    ])
      expect(loaded).not.toContain(`NativeModule ${m}`);
  });

  it("the stand-ins behave as what they replace for what undici, commander and hdr-histogram-js use", () => {
    const dir = path.join(REPOSITORY_ROOT, "infra", "bundling");
    const nodeHttp = require(path.join(dir, "undici-node-http.cjs")) as typeof http;
    expect(nodeHttp.maxHeaderSize).toBe(http.maxHeaderSize);
    expect(new http.IncomingMessage(null as never)).not.toBeInstanceOf(nodeHttp.IncomingMessage);
    const assert = require(path.join(dir, "undici-assert.cjs")) as (v: unknown, m?: string) => void;
    expect(() => assert(1)).not.toThrow();
    expect(() => assert(0, "broken")).toThrow(
      expect.objectContaining({ code: "ERR_ASSERTION", message: "broken" }),
    );
    type Formatters = {
      floatFormatter: (size: number, digits: number) => (n: number) => string;
      integerFormatter: (size: number) => (n: number) => string;
      keepSignificantDigits: (digits: number) => (n: number) => number;
    };
    const lazy = require(path.join(dir, "hdr-lazy-formatters.cjs")) as Formatters;
    const original = require("hdr-histogram-js/dist/formatters.js") as Formatters;
    for (const [size, digits] of [
      [0, 0],
      [5, 3],
      [12, 12],
      [14, 2],
    ] as const)
      for (const n of [0, 1.5, 2.0005, 123456.789, 1e-7])
        expect(lazy.floatFormatter(size, digits)(n)).toBe(original.floatFormatter(size, digits)(n));
    for (const n of [0, 7, 123456789])
      expect(lazy.integerFormatter(10)(n)).toBe(original.integerFormatter(10)(n));
    for (const n of [1, 999, 123456, 98765432])
      expect(lazy.keepSignificantDigits(3)(n)).toBe(original.keepSignificantDigits(3)(n));
    const cp = require(path.join(dir, "lazy-child-process.cjs")) as typeof import("node:child_process");
    expect(cp.spawnSync).toBeUndefined(); // commander uses spawn only
    const child = cp.spawn(process.execPath, ["-e", "0"]);
    return new Promise<void>((resolve) =>
      child.on("exit", (code) => {
        expect(code).toBe(0);
        resolve();
      }),
    );
  });
});
