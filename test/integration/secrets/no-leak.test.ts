/**
 * Credentials never appear in output: every failing path of the CLI is run with a recognisable
 * secret (flags, environment, Docker config file, token auth), with --debug and --json, and all that
 * it printed is searched for the secret and its base64 forms. The same for push, pull, workflow copy,
 * sync and bench, failing (a wrong password) and succeeding (the registry's real password, which is
 * then the secret): their output, every file they wrote (archives, layouts, HTML reports), every
 * record the workflow staged, and what the API's GET /transfers/{id} serves from those records.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createApiHandler } from "../../../functions/api/handler.ts";
import { sampleMultiPlatform } from "../../../shared/sample/image.ts";
import { FsStagingStore } from "../../../shared/staging/fs.ts";
import { parseCopyList } from "../../../shared/transfer/copy-list.ts";
import { ALLOW_ANY } from "../../../shared/workflow/policy.ts";
import { executionArnFor } from "../../../shared/workflow/triggers.ts";
import { ferry, SMALL_PUSH_BENCH } from "../../helpers/ferry-cli.ts";
import { pushSample, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { COPY_ARN, context, fakeExecutions } from "../../unit/functions/fakes.ts";

const regs = registries();
/** Environment credentials apply only to the registries FERRY_REGISTRY names: the test registries here. */
const FERRY_REGISTRY = [regs.basic.host, regs.token.host].join(",");
const SECRET = "Zq7-SECRET-do-not-print-9";
const dir = mkdtempSync(join(tmpdir(), "ferry-secrets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function forms(user: string, secret: string): string[] {
  return [
    secret,
    Buffer.from(`${user}:${secret}`).toString("base64"),
    Buffer.from(secret).toString("base64"),
    encodeURIComponent(secret),
  ];
}

function assertClean(out: { stdout: string; stderr: string }, secrets: string[]) {
  const all = `${out.stdout}\n${out.stderr}`;
  for (const s of secrets) expect(all).not.toContain(s);
}

describe("secrets never appear in output", async () => {
  const { images, index } = await sampleMultiPlatform("secret");
  const src = await pushSample(regs.anon, uniqueRepo("secret-src"), images, index, "v1");

  const authfile = join(dir, "config.json");
  writeFileSync(
    authfile,
    JSON.stringify({
      auths: {
        [regs.basic.host]: { auth: Buffer.from(`ferry:${SECRET}`).toString("base64") },
        [regs.token.host]: { auth: Buffer.from(`ferry:${SECRET}`).toString("base64") },
      },
    }),
  );

  const cases: [string, string[], Record<string, string>][] = [
    [
      "wrong password in --dest-creds (basic)",
      ["copy", src, `${regs.basic.host}/x/y:v1`, "--dest-creds", `ferry:${SECRET}`],
      {},
    ],
    [
      "wrong password in --dest-creds (token)",
      ["copy", src, `${regs.token.host}/x/y:v1`, "--dest-creds", `ferry:${SECRET}`],
      {},
    ],
    [
      "wrong password with --debug and --json",
      ["copy", src, `${regs.token.host}/x/y:v1`, "--dest-creds", `ferry:${SECRET}`, "--debug", "--json"],
      {},
    ],
    [
      "wrong password from the auth file",
      ["copy", src, `${regs.basic.host}/x/y:v1`, "--authfile", authfile, "--debug"],
      {},
    ],
    [
      "wrong password from the environment",
      ["inspect", `${regs.token.host}/x/y:v1`, "--debug"],
      { FERRY_USERNAME: "ferry", FERRY_PASSWORD: SECRET, FERRY_REGISTRY },
    ],
    [
      "missing image with good credentials and --debug",
      ["inspect", `${regs.basic.host}/no/such:v1`, "--creds", `ferry:${regs.basic.password}`, "--debug"],
      {},
    ],
    [
      "registry not listening",
      ["copy", src, "127.0.0.1:1/x:v1", "--dest-creds", `ferry:${SECRET}`, "--debug"],
      {},
    ],
    ["malformed credentials flag", ["copy", src, `${regs.basic.host}/x:v1`, "--dest-creds", SECRET], {}],
  ];

  it.each(cases)("%s", async (_name, args, env) => {
    const out = await ferry(args, env);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(/^ferry: /m);
    assertClean(out, [
      ...forms("ferry", SECRET),
      ...(regs.basic.password ? forms("ferry", regs.basic.password) : []),
    ]);
  });

  it("a successful copy with --debug --json prints no credential either", async () => {
    const out = await ferry([
      "copy",
      src,
      `${regs.token.host}/${uniqueRepo("ok")}:v1`,
      "--dest-creds",
      `ferry:${regs.token.password}`,
      "--debug",
      "--json",
    ]);
    expect(out.code).toBe(0);
    expect(out.stderr).toMatch(/token GET/);
    assertClean(out, forms("ferry", regs.token.password!));
    // bearer tokens are not printed either
    expect(`${out.stdout}${out.stderr}`).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
  });
});

describe("token scopes are the least needed", () => {
  it("pull on the source, pull+push on the destination, never push on the source", async () => {
    const reg = regs.token;
    const from = uniqueRepo("scope-src");
    const to = uniqueRepo("scope-dst");
    const { images, index } = await sampleMultiPlatform("scopes");
    await pushSample(reg, from, images, index, "v1");
    await fetch(reg.token!.requestsUrl, { method: "DELETE" }).catch(() => undefined);
    const out = await ferry([
      "copy",
      `${reg.host}/${from}:v1`,
      `${reg.host}/${to}:v1`,
      "--src-creds",
      `ferry:${reg.password}`,
      "--dest-creds",
      `ferry:${reg.password}`,
    ]);
    expect(out.code).toBe(0);
    const log = (await (await fetch(reg.token!.requestsUrl)).json()) as { scopes: string[] }[];
    const scopes = log.flatMap((r) => r.scopes);
    const forSource = scopes.filter((s) => s.startsWith(`repository:${from}:`));
    const forDest = scopes.filter((s) => s.startsWith(`repository:${to}:`));
    expect(forSource.length).toBeGreaterThan(0);
    expect(forSource.every((s) => s === `repository:${from}:pull`)).toBe(true);
    expect(forDest.length).toBeGreaterThan(0);
    expect(forDest.every((s) => /:pull,push$/.test(s))).toBe(true);
  });
});

describe("secrets never appear in workflow state payloads", () => {
  it("every state input and output, and a failed execution's cause, are free of credentials", async () => {
    const { StaticCredentials } = await import("../../../shared/registry/auth/credentials.ts");
    const { RegistryClient } = await import("../../../shared/registry/client.ts");
    const { FsStagingStore } = await import("../../../shared/staging/fs.ts");
    const { runCopyWorkflow } = await import("../../../shared/workflow/local-runner.ts");
    const { images, index } = await sampleMultiPlatform("wf-secret");
    const from = uniqueRepo("wf-secret-src");
    await pushSample(regs.anon, from, images, index, "v1");
    for (const [password, expectStatus] of [
      [SECRET, "FAILED"],
      [regs.basic.password!, "SUCCEEDED"],
    ] as const) {
      const client = new RegistryClient({
        credentials: new StaticCredentials({ [regs.basic.host]: { username: "ferry", password } }),
        retries: 0,
      });
      const events: string[] = [];
      const staging = join(dir, `staging-${expectStatus}`);
      try {
        const r = await runCopyWorkflow(
          {
            source: `${regs.anon.host}/${from}:v1`,
            destination: `${regs.basic.host}/${uniqueRepo("wf-secret-dst")}:v1`,
          },
          {
            deps: { staging: new FsStagingStore(staging), client },
            retryIntervalMs: 1,
            onEvent: (e) => events.push(JSON.stringify(e)),
          },
        );
        expect(r.status).toBe(expectStatus);
        const all = `${events.join("\n")}\n${JSON.stringify(r)}`;
        for (const s of forms("ferry", password)) expect(all).not.toContain(s);
        if (expectStatus === "FAILED") expect(r.cause ?? "").toMatch(/401|UNAUTHORIZED/);
      } finally {
        await client.close();
      }
    }
  });
});

/** Every file under `dir`, as text (binary bytes as latin1), each prefixed by its path. */
function filesUnder(dir: string): { files: number; text: string } {
  let files = 0;
  let text = "";
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else {
        files++;
        text += `\n== ${p}\n${readFileSync(p).toString("latin1")}`;
      }
    }
  };
  walk(dir);
  return { files, text };
}

/** The CLI is run from the sources (workflow and bench load them), as their own tests do. */
const SRC = { FERRY_FROM_SOURCE: "1" };

describe("secrets never appear in what push, pull, workflow copy, sync and bench print, write or stage", async () => {
  const basic = regs.basic;
  const token = regs.token;
  const user = basic.username!;
  const real = basic.password!;
  const tokenUser = token.username!;
  const tokenReal = token.password!;
  // every password of this describe, and its base64 forms, searched everywhere
  const secrets = [...forms(user, SECRET), ...forms(user, real), ...forms(tokenUser, tokenReal)];
  const clean = (what: string, text: string) => {
    for (const s of secrets) expect(text, `${what} contains a secret form`).not.toContain(s);
  };
  const work = mkdtempSync(join(tmpdir(), "ferry-secrets-cmds-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  // a source on the anonymous registry, one on the basic-auth registry, and an archive of it
  const { images, index } = await sampleMultiPlatform("secret-cmds");
  const fromAnon = await pushSample(regs.anon, uniqueRepo("secret-cmd-src"), images, index, "v1");
  const fromBasic = await pushSample(basic, uniqueRepo("secret-cmd-basic"), images, index, "v1");
  const archive = join(work, "image.tar");
  const made = await ferry(["pull", fromAnon, `docker-archive:${archive}`, "--platform", "linux/amd64"]);
  expect(made.code, made.stderr).toBe(0);
  const authfile = join(work, "config.json");
  writeFileSync(
    authfile,
    JSON.stringify({
      auths: {
        [basic.host]: { auth: Buffer.from(`${user}:${SECRET}`).toString("base64") },
        [token.host]: { auth: Buffer.from(`${tokenUser}:${SECRET}`).toString("base64") },
      },
    }),
  );

  /** Runs ferry, checks its exit, and searches its output and every file under `dirs`. */
  async function run(
    what: string,
    args: string[],
    env: Record<string, string>,
    ok: boolean,
    dirs: string[] = [],
  ): Promise<{ stdout: string; stderr: string }> {
    const out = await ferry(args, { ...SRC, ...env });
    if (ok) expect(out.code, `${what}: ${out.stderr}`).toBe(0);
    else {
      expect(out.code, what).toBe(1);
      expect(out.stderr, what).toMatch(/^ferry: /m);
    }
    clean(`${what}: stdout`, out.stdout);
    clean(`${what}: stderr`, out.stderr);
    for (const d of dirs) {
      const { files, text } = filesUnder(d);
      expect(files, `${what}: files written under ${d}`).toBeGreaterThan(0);
      clean(`${what}: files under ${d}`, text);
    }
    return out;
  }

  it("push: a wrong password in --dest-creds, FERRY_PASSWORD and an auth file; then the real one", async () => {
    const dst = (p: string) => `${basic.host}/${uniqueRepo(p)}:v1`;
    const src = `docker-archive:${archive}`;
    await run(
      "push --dest-creds",
      ["push", src, dst("p1"), "--dest-creds", `${user}:${SECRET}`, "--debug", "--json"],
      {},
      false,
    );
    await run(
      "push FERRY_PASSWORD",
      ["push", src, dst("p2"), "--debug"],
      { FERRY_USERNAME: user, FERRY_PASSWORD: SECRET, FERRY_REGISTRY },
      false,
    );
    await run(
      "push --authfile",
      ["push", src, dst("p3"), "--authfile", authfile, "--debug", "--json"],
      {},
      false,
    );
    const good = await run(
      "push ok",
      ["push", src, dst("p4"), "--dest-creds", `${user}:${real}`, "--debug", "--json"],
      {},
      true,
    );
    expect(good.stderr).toMatch(/PUT /); // --debug did log the exchanges
  });

  it("pull: wrong and real passwords, to a docker-archive, an OCI layout and a root filesystem", async () => {
    await run(
      "pull --src-creds",
      ["pull", fromBasic, `oci:${join(work, "bad-oci")}`, "--src-creds", `${user}:${SECRET}`, "--debug"],
      {},
      false,
    );
    await run(
      "pull FERRY_PASSWORD",
      ["pull", fromBasic, `docker-archive:${join(work, "bad.tar")}`, "--json", "--debug"],
      { FERRY_USERNAME: user, FERRY_PASSWORD: SECRET, FERRY_REGISTRY },
      false,
    );
    const oci = join(work, "pulled-oci");
    await run(
      "pull ok (oci)",
      ["pull", fromBasic, `oci:${oci}`, "--src-creds", `${user}:${real}`, "--debug", "--json"],
      {},
      true,
      [oci],
    );
    const tarDir = join(work, "pulled-tar");
    mkdirSync(tarDir);
    await run(
      "pull ok (docker-archive)",
      ["pull", fromBasic, `docker-archive:${join(tarDir, "x.tar")}`, "--platform", "linux/amd64"],
      { FERRY_USERNAME: user, FERRY_PASSWORD: real, FERRY_REGISTRY },
      true,
      [tarDir],
    );
    const rootfs = join(work, "pulled-rootfs");
    await run(
      "pull ok (rootfs)",
      [
        "pull",
        fromBasic,
        `rootfs:${rootfs}`,
        "--platform",
        "linux/amd64",
        "--src-creds",
        `${user}:${real}`,
        "--debug",
      ],
      {},
      true,
      [rootfs],
    );
  });

  /**
   * GET /transfers/{id} through the API Lambda handler, over the records the run staged in `staging`
   * and the execution as the run ended (the Step Functions control plane is the only fake).
   */
  async function apiGet(
    staging: string,
    id: string,
    execution: { status: string; output?: string; error?: string; cause?: string },
  ): Promise<string> {
    const executions = fakeExecutions();
    executions.set(executionArnFor(COPY_ARN, id), execution);
    const handler = createApiHandler(() => ({
      executions,
      copyStateMachineArn: COPY_ARN,
      staging: new FsStagingStore(staging),
      policy: ALLOW_ANY,
    }));
    const r = (await handler({ httpMethod: "GET", path: `/transfers/${id}` }, context)) as {
      statusCode: number;
      body: string;
    };
    expect(r.statusCode).toBe(200);
    return r.body;
  }

  it("workflow copy: wrong and real passwords; the output, every staged record and GET /transfers/{id}", async () => {
    const cases: [string, string[], Record<string, string>, boolean][] = [
      ["workflow copy --dest-creds (basic)", ["--dest-creds", `${user}:${SECRET}`, "--debug"], {}, false],
      ["workflow copy --authfile (token)", ["--authfile", authfile, "--debug"], {}, false],
      [
        "workflow copy FERRY_PASSWORD",
        ["--debug"],
        { FERRY_USERNAME: user, FERRY_PASSWORD: SECRET, FERRY_REGISTRY },
        false,
      ],
      ["workflow copy ok (basic)", ["--dest-creds", `${user}:${real}`, "--debug"], {}, true],
      ["workflow copy ok (token)", ["--dest-creds", `${tokenUser}:${tokenReal}`, "--debug"], {}, true],
    ];
    for (const [what, flags, env, ok] of cases) {
      const host = what.includes("token") ? token.host : basic.host;
      const staging = join(work, `staging-${what.replace(/\W+/g, "-")}`);
      // a failed run may stage nothing (the destination refused it before any blob moved): its output
      // is searched, and its staging directory when it has one
      const out = await run(
        what,
        [
          "workflow",
          "copy",
          fromAnon,
          `${host}/${uniqueRepo("wf")}:v1`,
          "--staging",
          staging,
          "--json",
          "--direct-max",
          "1KiB",
          ...flags,
        ],
        env,
        ok,
        ok || existsSync(staging) ? [staging] : [],
      );
      // the execution as it ended: its output, or its error and cause (--json prints them)
      const result = JSON.parse(out.stdout) as Record<string, unknown>;
      if (ok) {
        // every transfer staged, as GET /transfers/{id} serves it: status, output and the staged report
        const ids = readdirSync(join(staging, "transfers"));
        expect(ids.length).toBeGreaterThan(0);
        for (const id of ids) {
          const body = await apiGet(staging, id, { status: "SUCCEEDED", output: JSON.stringify(result) });
          expect(
            (JSON.parse(body) as { report?: unknown }).report,
            `${what}: the staged report`,
          ).toBeDefined();
          clean(`${what}: GET /transfers/${id}`, body);
        }
      } else {
        expect(String(result.cause)).toMatch(/401|UNAUTHORIZED|denied/i);
        const id = String(result.executionName);
        const body = await apiGet(staging, id, {
          status: "FAILED",
          error: String(result.error),
          cause: String(result.cause),
        });
        expect((JSON.parse(body) as { cause?: string }).cause).toBe(result.cause);
        clean(`${what}: GET /transfers/${id}`, body);
      }
    }
  });

  it("sync: a wrong password and the real one; output and staged records", async () => {
    const ns = `secretsync${process.pid}${Date.now().toString(36)}`;
    await pushSample(regs.anon, `${ns}/a`, images, index, "1.0.0");
    for (const [what, dest, env, ok] of [
      [
        "sync FERRY_PASSWORD (wrong)",
        basic.host,
        { FERRY_USERNAME: user, FERRY_PASSWORD: SECRET, FERRY_REGISTRY },
        false,
      ],
      ["sync --dest-creds (token, real)", token.host, {}, true],
    ] as const) {
      const config = join(work, `${what.replace(/\W+/g, "-")}.json`);
      writeFileSync(
        config,
        JSON.stringify({ source: `${regs.anon.host}/${ns}`, destination: `${dest}/m-${ns}` }),
      );
      const staging = join(work, `staging-${what.replace(/\W+/g, "-")}`);
      const lists = join(work, `failures-${what.replace(/\W+/g, "-")}`);
      mkdirSync(lists);
      const flags = ok ? ["--dest-creds", `${tokenUser}:${tokenReal}`] : [];
      const failures = join(lists, "failed.txt");
      const out = await run(
        what,
        ["sync", config, "--staging", staging, "--debug", "--json", "--failures", failures, ...flags],
        env,
        ok,
        [staging, lists],
      );
      if (!ok) expect(out.stdout).toMatch(/401|UNAUTHORIZED|denied/i);
      // the failure list names the failed image (and nothing else) when there was one
      expect(parseCopyList(readFileSync(failures, "utf8"), failures)).toHaveLength(ok ? 0 : 1);
    }
  });

  it("copy --from-file --failures: wrong passwords; the failure list holds the lines and their errors only", async () => {
    const lists = join(work, "from-file");
    mkdirSync(lists);
    const list = join(lists, "list.txt");
    writeFileSync(
      list,
      `${fromAnon} ${basic.host}/${uniqueRepo("secret-list")}:v1\n${fromAnon} ${token.host}/${uniqueRepo("secret-list")}:v1\n`,
    );
    const failures = join(lists, "failed.txt");
    await run(
      "copy --from-file (wrong passwords from the auth file)",
      ["copy", "--from-file", list, "--authfile", authfile, "--failures", failures, "--debug", "--json"],
      {},
      false,
      [lists],
    );
    expect(parseCopyList(readFileSync(failures, "utf8"), failures)).toHaveLength(2);
  });

  it("bench: a wrong password and the real one (basic and token), with --debug, --json and --html", async () => {
    const target = (host: string) => `${host}/${uniqueRepo("bench-secret")}`;
    const common = SMALL_PUSH_BENCH;
    await run(
      "bench --creds (wrong)",
      ["bench", target(basic.host), ...common, "--creds", `${user}:${SECRET}`, "--json", "--debug"],
      {},
      false,
    );
    await run(
      "bench FERRY_PASSWORD (wrong, token)",
      ["bench", target(token.host), ...common, "--debug"],
      { FERRY_USERNAME: tokenUser, FERRY_PASSWORD: SECRET, FERRY_REGISTRY },
      false,
    );
    await run(
      "bench --authfile (wrong)",
      ["bench", target(basic.host), ...common, "--authfile", authfile],
      {},
      false,
    );
    const html = join(work, "bench-html");
    mkdirSync(html);
    await run(
      "bench ok (basic)",
      [
        "bench",
        target(basic.host),
        ...common,
        "--creds",
        `${user}:${real}`,
        "--json",
        "--html",
        join(html, "r.html"),
      ],
      {},
      true,
      [html],
    );
    await run(
      "bench ok (token)",
      ["bench", target(token.host), ...common, "--creds", `${tokenUser}:${tokenReal}`, "--debug"],
      {},
      true,
    );
  });
});
