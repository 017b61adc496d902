/**
 * The CLI behind a forward proxy, as curl and Go read its settings: HTTPS_PROXY (CONNECT tunnels),
 * HTTP_PROXY (absolute-form requests), NO_PROXY, credentials in the proxy URL. The destination registry
 * is reachable *only* through the proxy: its name, `registry.ferry.test`, resolves at the proxy alone.
 * The source is on loopback, which never goes through a proxy (as in Go). Copies are checked on the
 * registry's own storage; requests are counted at the proxy.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sampleMultiPlatform } from "../../../shared/sample/image.ts";
import { type RunningDistribution, startDistribution } from "../../helpers/distribution.ts";
import { ferry, SMALL_PUSH_BENCH } from "../../helpers/ferry-cli.ts";
import { type ForwardProxy, startForwardProxy } from "../../helpers/forward-proxy.ts";
import { makeCa, type TestCa, writeCertDir } from "../../helpers/pki.ts";
import { pushSample, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { tmpDir } from "../../helpers/tmp.ts";

const NAME = "registry.ferry.test";
const PASSWORD = "pr0xy-s3cret-Zq9";

const regs = registries();
let ca: TestCa;
/** https, certificate for registry.ferry.test, reachable only through the proxies. */
let https: RunningDistribution;
let proxy: ForwardProxy;
let guarded: ForwardProxy;
let source: string;
let digest: string;
/** `registry.ferry.test:PORT` for the https registry, and for the plain-http anonymous one. */
let httpsName: string;
let plainName: string;

/** The digest `repo:tag` points at, read from the registry's storage. */
function storedTag(storageDir: string, repo: string, tag: string): string {
  return readFileSync(
    join(storageDir, "docker/registry/v2/repositories", repo, "_manifests/tags", tag, "current/link"),
    "utf8",
  ).trim();
}

beforeAll(async () => {
  ca = makeCa();
  const server = ca.server("registry", [NAME]);
  https = await startDistribution({
    auth: "none",
    tls: { certPath: server.certPath, keyPath: server.keyPath },
  });
  const hosts = { [NAME]: "127.0.0.1" };
  proxy = await startForwardProxy({ hosts });
  guarded = await startForwardProxy({ hosts, credentials: { username: "ferry", password: PASSWORD } });
  httpsName = `${NAME}:${https.host.split(":")[1]}`;
  plainName = `${NAME}:${regs.anon.host.split(":")[1]}`;

  const { images, index } = await sampleMultiPlatform("proxy");
  source = await pushSample(regs.anon, uniqueRepo("proxy-src"), images, index, "v1");
  digest = index.digest;
});

afterAll(async () => {
  await Promise.all([https?.stop(), proxy?.close(), guarded?.close()]);
  ca?.remove();
});

/** No proxy settings inherited from the machine running the tests. */
const clean = {
  HTTPS_PROXY: "",
  https_proxy: "",
  HTTP_PROXY: "",
  http_proxy: "",
  NO_PROXY: "",
  no_proxy: "",
};

describe("ferry behind a forward proxy", () => {
  beforeEach(() => {
    proxy.requests.length = 0;
    guarded.requests.length = 0;
  });

  it("without the proxy the registry is unreachable (its name resolves only at the proxy)", async () => {
    const res = await ferry(["inspect", `${httpsName}/x:v1`, "--ca-file", ca.certPath], clean);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/ENOTFOUND|EAI_AGAIN/);
  });

  it("HTTPS_PROXY: https goes through CONNECT tunnels, the copy lands with its digest; loopback stays direct", async () => {
    const repo = uniqueRepo("via-connect");
    const res = await ferry(["copy", source, `${httpsName}/${repo}:v1`, "--ca-file", ca.certPath, "-q"], {
      ...clean,
      HTTPS_PROXY: proxy.url,
    });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(storedTag(https.storageDir, repo, "v1")).toBe(digest);
    expect(proxy.requests.length).toBeGreaterThan(0);
    expect(proxy.requests.every((r) => r.method === "CONNECT" && r.target === httpsName)).toBe(true);
  });

  it("HTTP_PROXY: plain http goes to the proxy in absolute form", async () => {
    const repo = uniqueRepo("via-absolute");
    const res = await ferry(["copy", source, `${plainName}/${repo}:v1`, "--plain-http", "-q"], {
      ...clean,
      HTTP_PROXY: proxy.url,
    });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(storedTag(regs.anon.storageDir, repo, "v1")).toBe(digest);
    const targets = proxy.requests.map((r) => r.target);
    expect(targets.length).toBeGreaterThan(0);
    expect(targets.every((t) => t.startsWith(`http://${plainName}/v2/`))).toBe(true);
    expect(targets).toContain(`http://${plainName}/v2/${repo}/manifests/v1`);
  });

  it("NO_PROXY bypasses the proxy: not one request reaches it", async () => {
    for (const noProxy of [NAME, ".ferry.test", "*"]) {
      const res = await ferry(["inspect", `${httpsName}/x:v1`, "--ca-file", ca.certPath], {
        ...clean,
        https_proxy: proxy.url,
        no_proxy: noProxy,
      });
      expect(res.code, noProxy).toBe(1);
      expect(res.stderr, noProxy).toMatch(/ENOTFOUND|EAI_AGAIN/);
    }
    expect(proxy.requests).toEqual([]);
  });

  it("credentials in the proxy URL go as Proxy-Authorization, and are never printed (--debug included)", async () => {
    const repo = uniqueRepo("via-auth");
    const url = `http://ferry:${PASSWORD}@127.0.0.1:${guarded.port}`;
    const res = await ferry(
      ["copy", source, `${httpsName}/${repo}:v1`, "--ca-file", ca.certPath, "--debug"],
      {
        ...clean,
        HTTPS_PROXY: url,
      },
    );
    expect(res.code).toBe(0);
    expect(storedTag(https.storageDir, repo, "v1")).toBe(digest);
    const expected = `Basic ${Buffer.from(`ferry:${PASSWORD}`).toString("base64")}`;
    expect(guarded.requests.length).toBeGreaterThan(0);
    expect(guarded.requests.every((r) => r.proxyAuthorization === expected && r.refused === 0)).toBe(true);
    // --debug says which exchanges went through the proxy, naming it without its credentials.
    expect(res.stderr).toContain(`via proxy http://127.0.0.1:${guarded.port}`);
    expect(res.stderr).toMatch(
      new RegExp(`manifest\\.put PUT https://${NAME.replace(/\./g, "\\.")}:\\d+/.* via proxy`),
    );
    for (const out of [res.stdout, res.stderr]) {
      expect(out).not.toContain(PASSWORD);
      expect(out).not.toContain(expected.slice("Basic ".length));
    }
  });

  it("the same for plain http through HTTP_PROXY", async () => {
    const repo = uniqueRepo("via-auth-plain");
    const res = await ferry(["copy", source, `${plainName}/${repo}:v1`, "--plain-http", "--debug"], {
      ...clean,
      HTTP_PROXY: `http://ferry:${PASSWORD}@127.0.0.1:${guarded.port}`,
    });
    expect(res.code).toBe(0);
    expect(storedTag(regs.anon.storageDir, repo, "v1")).toBe(digest);
    expect(guarded.requests.length).toBeGreaterThan(0);
    expect(guarded.requests.every((r) => r.proxyAuthorization !== undefined && r.refused === 0)).toBe(true);
    expect(res.stderr).toContain(`via proxy http://127.0.0.1:${guarded.port}`);
    expect(`${res.stdout}${res.stderr}`).not.toContain(PASSWORD);
  });

  it("refused proxy credentials: one clear error naming the proxy and 407, exit 1, no password printed", async () => {
    for (const [variable, target, flags] of [
      ["HTTPS_PROXY", httpsName, ["--ca-file", ca.certPath]],
      ["HTTP_PROXY", plainName, ["--plain-http"]],
    ] as const) {
      const res = await ferry(["inspect", `${target}/x:v1`, ...flags, "--debug"], {
        ...clean,
        [variable]: `http://ferry:wrong-${PASSWORD}@127.0.0.1:${guarded.port}`,
      });
      expect(res.code, variable).toBe(1);
      const last = res.stderr
        .trim()
        .split("\n")
        .find((l) => l.startsWith("ferry: ") && !l.includes(" → "));
      expect(last, variable).toMatch(new RegExp(`proxy http://127\\.0\\.0\\.1:${guarded.port} answered 407`));
      expect(`${res.stdout}${res.stderr}`, variable).not.toContain(PASSWORD);
    }
    expect(guarded.requests.some((r) => r.refused === 407)).toBe(true);
  });

  it("the local workflow (workflow copy) and ferry bench go through the proxy too, with --dest-cert-dir / --cert-dir", async () => {
    const caOnly = writeCertDir(join(tmpDir("ferry-proxy-certs-"), NAME), { ca: ca.cert });
    const repo = uniqueRepo("via-workflow");
    const staging = tmpDir("ferry-proxy-staging-");
    const wf = await ferry(
      [
        "workflow",
        "copy",
        source,
        `${httpsName}/${repo}:v1`,
        "--dest-cert-dir",
        caOnly,
        "--staging",
        staging,
        "--json",
      ],
      { ...clean, FERRY_FROM_SOURCE: "1", HTTPS_PROXY: proxy.url },
    );
    expect(wf.stderr).toBe("");
    expect(wf.code).toBe(0);
    expect(storedTag(https.storageDir, repo, "v1")).toBe(digest);
    const viaWorkflow = proxy.requests.length;
    expect(viaWorkflow).toBeGreaterThan(0);

    const bench = await ferry(
      [
        "bench",
        `${httpsName}/${uniqueRepo("via-bench")}`,
        ...SMALL_PUSH_BENCH,
        "--cert-dir",
        caOnly,
        "--json",
      ],
      { ...clean, HTTPS_PROXY: proxy.url },
    );
    expect(bench.code, bench.stderr).toBe(0);
    const report = JSON.parse(bench.stdout) as { iterations: { ok: number; failed: number } };
    expect(report.iterations).toMatchObject({ ok: 2, failed: 0 });
    expect(proxy.requests.length).toBeGreaterThan(viaWorkflow);
    expect(proxy.requests.every((r) => r.method === "CONNECT" && r.target === httpsName)).toBe(true);
  });

  it("a malformed proxy setting is a usage error naming the variable, not its value (exit 2)", async () => {
    const res = await ferry(["inspect", `${httpsName}/x:v1`], {
      ...clean,
      HTTPS_PROXY: `socks5://ferry:${PASSWORD}@127.0.0.1:1080`,
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/HTTPS_PROXY: socks5 proxies are not supported/);
    expect(res.stderr).not.toContain(PASSWORD);
  });
});
