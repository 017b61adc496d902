/**
 * PACKAGING TEST — ferry as a platform team installs it: the tarball of `npm run package`
 * (infra/bundling/pack.ts), installed with one `npm install` into a fresh directory beside aws-cdk-lib,
 * constructs and cdk-nag (from the npm cache that `npm ci` filled: --prefer-offline). Then, from that
 * install only:
 * - a CDK app in plain JavaScript (`node app.mjs`, as `cdk.json` would run it) synthesises
 *   `new ImageTransfer(...)` with cdk-nag's AwsSolutions checks, and every function's code is an asset
 *   holding the package's prebuilt bundle;
 * - a TypeScript app type-checks against the shipped declarations, and a wrong prop does not;
 * - `ferry --version` and a copy between the test registries run through `node_modules/.bin/ferry`.
 *
 * It packs dist/ as `npm run build` left it (`npm test` builds first) rather than building here: other
 * test files read dist/ while this one runs. A dist/ that is missing or older than the sources fails
 * with the command to run (stagePackage; test/infra/bundles.test.ts compares dist/lambda with the sources).
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LAMBDA_FILE, lambdaCodeDirectory } from "../../infra/bundling/layout.ts";
import { packTarball } from "../../infra/bundling/pack.ts";
import { parseReference } from "../../shared/registry/reference.ts";
import { sampleMultiPlatform } from "../../shared/sample/image.ts";
import { FUNCTIONS } from "../../shared/workflow/contract.ts";
import { clientFor, pushSample, registries, uniqueRepo } from "../helpers/registry-client.ts";
import { removeTmpDir, tmpDir } from "../helpers/tmp.ts";

const run = promisify(execFile);
const ROOT = path.join(import.meta.dirname, "..", "..");
const repoManifest = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  version: string;
  devDependencies: Record<string, string>;
};
/** The versions this repository tests with, so that the install finds them in the npm cache. */
const pinned = (name: string) => `${name}@${repoManifest.devDependencies[name]}`;
/** This Node first on PATH: the installed `ferry` starts with `#!/usr/bin/env … node`. */
const PATH = `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}`;

const work = tmpDir("ferry-package-");
const app = path.join(work, "app");
let packed: Awaited<ReturnType<typeof packTarball>>;

beforeAll(async () => {
  packed = await packTarball(ROOT, work);
  fs.mkdirSync(app);
  fs.writeFileSync(
    path.join(app, "package.json"),
    JSON.stringify({ name: "platform-app", private: true, type: "module" }),
  );
  await run(
    "npm",
    [
      "install",
      packed.file,
      pinned("aws-cdk-lib"),
      pinned("constructs"),
      pinned("cdk-nag"),
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
    ],
    { cwd: app, env: { ...process.env, PATH }, maxBuffer: 16 * 1024 * 1024 },
  );
}, 120_000);

afterAll(() => removeTmpDir(work));

describe("the package tarball", () => {
  it("holds the CLI, the construct as JavaScript with its declarations, each function's code, the definitions and the notices; no sources", () => {
    const files = new Set(packed.files);
    for (const f of [
      "package.json",
      "cli/ferry.js",
      "dist/ferry.mjs",
      "dist/infra/index.mjs",
      "dist/types/infra/index.d.ts",
      "LICENSE",
      "dist/THIRD-PARTY-LICENSES.txt",
      "shared/workflow/copy-image.asl.json",
      "shared/workflow/bulk-migrate.asl.json",
      "load/fanout.asl.json",
      ...Object.keys(FUNCTIONS).map((fn) => path.join(lambdaCodeDirectory("", fn), LAMBDA_FILE)),
    ])
      expect(files, f).toContain(f);
    const sources = packed.files.filter((f) => /\.ts$/.test(f) && !f.endsWith(".d.ts"));
    expect(sources).toEqual([]);
    expect(packed.files.filter((f) => /^(test|functions|infra|cli\/commands)\//.test(f))).toEqual([]);
  });

  it("its package.json has no lifecycle scripts and no development fields; the CDK libraries are optional peers", () => {
    const installed = JSON.parse(
      fs.readFileSync(path.join(app, "node_modules", "ferry", "package.json"), "utf8"),
    ) as Record<string, unknown>;
    expect(installed.scripts).toBeUndefined();
    expect(installed.devDependencies).toBeUndefined();
    expect(installed.version).toBe(repoManifest.version);
    expect(installed.peerDependencies).toHaveProperty("aws-cdk-lib");
    expect(installed.peerDependencies).toHaveProperty("constructs");
    // The app's own aws-cdk-lib and constructs are the only copies: a second one breaks the construct tree.
    expect(fs.existsSync(path.join(app, "node_modules", "ferry", "node_modules"))).toBe(false);
  });

  it("the bundles load from node_modules nothing but the package's dependencies and Node's built-ins", async () => {
    const { builtinModules } = await import("node:module");
    const installed = path.join(app, "node_modules", "ferry");
    const manifest = JSON.parse(fs.readFileSync(path.join(installed, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
      peerDependencies: Record<string, string>;
    };
    const declared = new Set([
      ...Object.keys(manifest.dependencies),
      ...Object.keys(manifest.peerDependencies),
    ]);
    const loaded = new Set<string>();
    for (const file of packed.files.filter((f) => f.endsWith(".mjs"))) {
      const text = fs.readFileSync(path.join(installed, file), "utf8");
      // static and dynamic imports, require() (CommonJS bundled into ESM) and createRequire(...).resolve();
      // not a require() inside a string: ajv (the workflow engine's validator) keeps `require("ajv/…")` as
      // text of the code it could generate
      for (const m of text.matchAll(
        /(?:\bfrom\s*|\bimport\s*\(\s*|(?<![`'])\brequire\s*\(\s*|import\.meta\.url\)\.resolve\(\s*)"([^"]+)"/g,
      ))
        loaded.add(m[1]!);
    }
    /** A bare specifier (a package, or a file of one); minified code also has `from"` in strings. */
    const bare = /^(?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*(?:\/[\w./-]*)?$/;
    const packages = [...loaded]
      .filter((s) => bare.test(s) && !s.startsWith("node:") && !builtinModules.includes(s))
      .map((s) =>
        s
          .split("/")
          .slice(0, s.startsWith("@") ? 2 : 1)
          .join("/"),
      );
    expect(packages).toContain("aws-cdk-lib"); // the scan sees imports at all
    // The AWS SDK's optional CRT signer: required inside a try, absent everywhere ferry runs.
    const undeclared = packages.filter((p) => !declared.has(p) && p !== "@aws-sdk/signature-v4-crt");
    expect([...new Set(undeclared)]).toEqual([]);
  });
});

describe("the construct, installed in a CDK app", () => {
  it("a JavaScript app synthesises ImageTransfer, cdk-nag clean, each function's code an asset of the package's bundle", async () => {
    fs.writeFileSync(
      path.join(app, "app.mjs"),
      [
        'import { App, Stack, Validations } from "aws-cdk-lib";',
        'import nag from "cdk-nag";',
        'import { ImageTransfer } from "ferry/infra";',
        "",
        "const app = new App();",
        'const stack = new Stack(app, "Platform");',
        'const transfer = new ImageTransfer(stack, "Ferry", {',
        '  registries: { "ghcr.io": {} },',
        '  ecr: { pushRepositories: ["mirror/*"] },',
        '  promotion: { destination: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/prod", repositories: ["app"] },',
        "});",
        "// cdk-nag's AwsSolutions pack as a policy-validation plugin: a finding fails synthesis. Wrapped",
        "// to report that it ran, and over what.",
        "const checks = new nag.AwsSolutionsChecks(app);",
        "Validations.of(app).addPlugins({",
        "  name: checks.name,",
        "  validate(context) {",
        "    const report = checks.validate(context);",
        "    console.log(JSON.stringify({ nag: { templates: context.templatePaths.length, success: report.success } }));",
        "    return report;",
        "  },",
        "});",
        "app.synth();",
        "console.log(JSON.stringify({ functions: Object.keys(transfer.functions) }));",
        "",
      ].join("\n"),
    );
    const out = path.join(work, "cdk.out");
    const { stdout } = await run(process.execPath, ["app.mjs"], {
      cwd: app,
      env: { PATH, HOME: work, CDK_OUTDIR: out },
    });
    const lines = stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { nag?: { templates: number; success: boolean }; functions?: string[] });
    expect(lines.find((l) => l.nag)?.nag).toEqual({ templates: 1, success: true });
    const functions = lines.find((l) => l.functions)?.functions ?? [];
    expect(functions).toContain("event"); // promotion on

    const template = JSON.parse(fs.readFileSync(path.join(out, "Platform.template.json"), "utf8")) as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    const assets = JSON.parse(fs.readFileSync(path.join(out, "Platform.assets.json"), "utf8")) as {
      files: Record<string, { source: { path: string; packaging: string } }>;
    };
    const lambdas = Object.values(template.Resources).filter((r) => r.Type === "AWS::Lambda::Function");
    expect(lambdas.length).toBe(functions.length);
    const installed = path.join(app, "node_modules", "ferry");
    const bundles = new Map(
      functions.map((fn) => [
        fn,
        fs.readFileSync(path.join(lambdaCodeDirectory(installed, fn), LAMBDA_FILE)),
      ]),
    );
    for (const fn of lambdas) {
      expect(fn.Properties).toMatchObject({ Runtime: "nodejs22.x", Handler: "index.handler" });
      const key = (fn.Properties.Code as { S3Key: string }).S3Key;
      const asset = assets.files[key.replace(/\.zip$/, "")];
      expect(asset?.source.packaging, key).toBe("zip");
      // The staged asset is a directory holding exactly the package's bundle of one of the functions.
      const dir = path.join(out, asset!.source.path);
      expect(fs.readdirSync(dir)).toEqual([LAMBDA_FILE]);
      const code = fs.readFileSync(path.join(dir, LAMBDA_FILE));
      expect(
        [...bundles.values()].some((b) => b.equals(code)),
        key,
      ).toBe(true);
    }
  });

  it("a TypeScript app type-checks against the shipped declarations; a wrong prop does not", async () => {
    fs.writeFileSync(
      path.join(app, "types.ts"),
      [
        'import { App, Stack } from "aws-cdk-lib";',
        'import { ImageTransfer, type ImageTransferProps } from "ferry/infra";',
        "",
        'const props: ImageTransferProps = { registries: { "ghcr.io": {} }, stepThroughputMiBps: 10 };',
        'const transfer = new ImageTransfer(new Stack(new App(), "S"), "Ferry", props);',
        "export const arn: string = transfer.copyImage.stateMachineArn;",
        "// @ts-expect-error stepThroughputMiBps is a number",
        'export const wrong: ImageTransferProps = { stepThroughputMiBps: "fast" };',
        "",
      ].join("\n"),
    );
    fs.writeFileSync(
      path.join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "NodeNext",
          moduleResolution: "NodeNext",
          target: "ES2022",
          strict: true,
          noEmit: true,
          types: ["node"],
          skipLibCheck: true, // as CDK apps usually do: aws-cdk-lib's own declarations are not in question
          typeRoots: [path.join(ROOT, "node_modules", "@types")],
        },
        files: ["types.ts"],
      }),
    );
    const tsc = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
    const result = await run(process.execPath, [tsc, "-p", app], { cwd: app }).then(
      () => ({ code: 0, out: "" }),
      (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
    );
    expect(result).toEqual({ code: 0, out: "" });
  });
});

describe("the CLI, installed", () => {
  const ferry = (args: string[]) =>
    run(path.join(app, "node_modules", ".bin", "ferry"), args, {
      cwd: app,
      env: { PATH, HOME: work, DOCKER_CONFIG: work },
    });

  it("ferry --version prints the package's version", async () => {
    const { stdout } = await ferry(["--version"]);
    expect(stdout.trim()).toBe(repoManifest.version);
  });

  it("runs the copy-image workflow locally from its bundle: no sources in the package", async () => {
    const regs = registries();
    const sample = await sampleMultiPlatform("package-workflow");
    const source = await pushSample(regs.anon, uniqueRepo("package-wf"), sample.images, sample.index);
    const destination = `${regs.anon.host}/${uniqueRepo("package-wf")}:v1`;
    const { stderr } = await ferry(["workflow", "copy", source, destination, "--quiet"]);
    expect(stderr).toBe("");
    const dst = clientFor(regs.anon);
    try {
      expect((await dst.getManifest(parseReference(destination))).digest).toBe(sample.index.digest);
    } finally {
      await dst.close();
    }
  });

  it("copies a multi-platform image between the test registries, digest intact", async () => {
    const regs = registries();
    const sample = await sampleMultiPlatform("package");
    const source = await pushSample(regs.anon, uniqueRepo("package"), sample.images, sample.index);
    const destination = `${regs.basic.host}/${uniqueRepo("package")}:v1`;
    const { stderr } = await ferry([
      "copy",
      source,
      destination,
      "--dest-creds",
      `${regs.basic.username}:${regs.basic.password}`,
      "--quiet",
    ]);
    expect(stderr).toBe("");
    const dst = clientFor(regs.basic);
    try {
      const copied = await dst.getManifest(parseReference(destination));
      expect(copied.digest).toBe(sample.index.digest);
    } finally {
      await dst.close();
    }
  });
});
