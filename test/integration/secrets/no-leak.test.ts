/**
 * Credentials never appear in output: every failing path of the CLI is run with a recognisable
 * secret (flags, environment, Docker config file, token auth), with --debug and --json, and all that
 * it printed is searched for the secret and its base64 forms.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sampleMultiPlatform, writeSample } from "../../../shared/sample/image.ts";
import { RegistrySink } from "../../../shared/transfer/registry-endpoints.ts";
import { ferry } from "../../helpers/ferry-cli.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";

const regs = registries();
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
  const anon = clientFor(regs.anon);
  const { images, index } = await sampleMultiPlatform("secret");
  const srcRepo = uniqueRepo("secret-src");
  await writeSample(
    new RegistrySink(anon, { registry: regs.anon.host, repository: srcRepo }),
    images,
    index,
    "v1",
  );
  await anon.close();
  const src = `${regs.anon.host}/${srcRepo}:v1`;

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
      { FERRY_USERNAME: "ferry", FERRY_PASSWORD: SECRET },
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
    const c = clientFor(reg);
    const from = uniqueRepo("scope-src");
    const to = uniqueRepo("scope-dst");
    const { images, index } = await sampleMultiPlatform("scopes");
    await writeSample(new RegistrySink(c, { registry: reg.host, repository: from }), images, index, "v1");
    await c.close();
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
    const anon = clientFor(regs.anon);
    const { images, index } = await sampleMultiPlatform("wf-secret");
    const from = uniqueRepo("wf-secret-src");
    await writeSample(
      new RegistrySink(anon, { registry: regs.anon.host, repository: from }),
      images,
      index,
      "v1",
    );
    await anon.close();
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
