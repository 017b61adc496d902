/**
 * The CLI against registries that speak https on loopback — the CNCF distribution registry with its own
 * certificate (`http.tls`), and one that demands a client certificate (`http.tls.clientcas`) — with
 * certificates made here by openssl. What users bring from skopeo and Docker: --dest-cert-dir/--src-cert-dir
 * (`*.crt`, `client.cert` + `client.key`), a certs.d directory found by host:port, --ca-file,
 * --tls-verify=false. Copies are checked with skopeo, an independent client, through the same directory.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sampleMultiPlatform } from "../../../shared/sample/image.ts";
import { type RunningDistribution, startDistribution } from "../../helpers/distribution.ts";
import { ferry } from "../../helpers/ferry-cli.ts";
import { makeCa, type TestCa, writeCertDir } from "../../helpers/pki.ts";
import { pushSample, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { describeWithSkopeo, skopeo } from "../../helpers/skopeo.ts";
import { tmpDir } from "../../helpers/tmp.ts";

const regs = registries();
let ca: TestCa;
/** Demands a client certificate signed by `ca`. */
let mtls: RunningDistribution;
/** https with a certificate of `ca`, no client certificate. */
let https: RunningDistribution;
const work = tmpDir("ferry-cli-tls-");
/** ca.crt + client.cert + client.key */
let fullDir: string;
/** ca.crt only */
let caOnlyDir: string;
/** The source: a multi-platform image on the plain-http loopback registry. */
let source: string;
let digest: string;
/** The same image in an OCI layout, for commands that speak https to every registry. */
let layout: string;

/** One line on stderr, no stack trace. */
function oneClearLine(stderr: string): void {
  expect(stderr.trim().split("\n")).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
}

/** The digest skopeo, an independent client, reads for `ref` with its TLS arguments. */
async function skopeoDigest(tlsArgs: string[], ref: string): Promise<string> {
  return (await skopeo("inspect", ...tlsArgs, "--format", "{{.Digest}}", `docker://${ref}`)).trim();
}

/** Where a registry's storage keeps `repo` (read from disk: no client involved). */
function storedRepo(reg: RunningDistribution, repo: string): string {
  return join(reg.storageDir, "docker", "registry", "v2", "repositories", repo);
}

beforeAll(async () => {
  ca = makeCa();
  const server = ca.server("registry", ["127.0.0.1", "localhost"]);
  const client = ca.client("ferry");
  [mtls, https] = await Promise.all([
    startDistribution({
      auth: "none",
      tls: { certPath: server.certPath, keyPath: server.keyPath, clientCas: [ca.certPath], probe: client },
    }),
    startDistribution({ auth: "none", tls: { certPath: server.certPath, keyPath: server.keyPath } }),
  ]);
  fullDir = writeCertDir(join(work, "full"), { ca: ca.cert, client });
  caOnlyDir = writeCertDir(join(work, "ca-only"), { ca: ca.cert });

  const { images, index } = await sampleMultiPlatform("tls");
  source = await pushSample(regs.anon, uniqueRepo("tls-src"), images, index, "v1");
  digest = index.digest;
  layout = join(work, "layout");
  const res = await ferry(["copy", source, `oci:${layout}:v1`, "--quiet"]);
  expect(res.stderr).toBe("");
  expect(res.code).toBe(0);
});

afterAll(async () => {
  await Promise.all([mtls?.stop(), https?.stop()]);
  ca?.remove();
});

describeWithSkopeo("ferry and a registry that requires a client certificate", () => {
  it("without a client certificate: one clear error naming the registry and the reason, exit 1, nothing written", async () => {
    const repo = uniqueRepo("mtls-none");
    const res = await ferry(["copy", source, `${mtls.host}/${repo}:v1`, "--dest-cert-dir", caOnlyDir]);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe("");
    oneClearLine(res.stderr);
    expect(res.stderr).toContain(`TLS with ${mtls.host} failed`);
    expect(res.stderr).toMatch(/requires a client certificate/);
    expect(res.stderr).toContain(`TLS settings from ${caOnlyDir}`);
    expect(existsSync(storedRepo(mtls, repo))).toBe(false);
  });

  it("--dest-cert-dir (ca.crt, client.cert, client.key): the copy lands with its digest, next to a plain-http source", async () => {
    const repo = uniqueRepo("mtls-flag");
    const res = await ferry([
      "copy",
      source,
      `${mtls.host}/${repo}:v1`,
      "--dest-cert-dir",
      fullDir,
      "--json",
    ]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const raw = await skopeo("inspect", "--raw", "--cert-dir", fullDir, `docker://${mtls.host}/${repo}:v1`);
    expect(JSON.parse(raw).manifests).toHaveLength(2);
    expect(await skopeoDigest(["--cert-dir", fullDir], `${mtls.host}/${repo}:v1`)).toBe(digest);
  });

  it("--src-cert-dir: the registry as a source", async () => {
    const repo = uniqueRepo("mtls-src");
    expect(
      (await ferry(["copy", source, `${mtls.host}/${repo}:v1`, "--dest-cert-dir", fullDir, "-q"])).code,
    ).toBe(0);
    const out = join(work, `from-mtls-${repo.replace(/\W/g, "-")}`);
    const res = await ferry([
      "copy",
      `${mtls.host}/${repo}:v1`,
      `oci:${out}:v1`,
      "--src-cert-dir",
      fullDir,
      "-q",
    ]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(existsSync(join(out, "index.json"))).toBe(true);
  });

  it("a certs.d directory ($XDG_CONFIG_HOME/containers/certs.d/<host:port>/) is found with no flag", async () => {
    const config = tmpDir("ferry-xdg-");
    writeCertDir(join(config, "containers", "certs.d", mtls.host), {
      ca: ca.cert,
      client: ca.client("ferry-certs-d"),
    });
    const repo = uniqueRepo("mtls-certsd");
    const res = await ferry(["copy", source, `${mtls.host}/${repo}:v1`, "-q"], { XDG_CONFIG_HOME: config });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(await skopeoDigest(["--cert-dir", fullDir], `${mtls.host}/${repo}:v1`)).toBe(digest);
  });

  it("an expired client certificate is refused by the registry: a clear error, exit 1", async () => {
    const dir = writeCertDir(join(work, "expired"), {
      ca: ca.cert,
      client: ca.client("old", { expired: true }),
    });
    const res = await ferry(["inspect", `${mtls.host}/none:v1`, "--cert-dir", dir]);
    expect(res.code).toBe(1);
    oneClearLine(res.stderr);
    expect(res.stderr).toMatch(
      /TLS with 127\.0\.0\.1:\d+ failed: it requires a client certificate, or refused the one presented/,
    );
  });
});

describeWithSkopeo("ferry and an https registry on loopback: --ca-file, --tls-verify=false", () => {
  it("--ca-file trusts the registry's CA (with --no-plain-http: https on loopback); the copy lands with its digest", async () => {
    const repo = uniqueRepo("ca-file");
    const res = await ferry([
      "copy",
      `oci:${layout}:v1`,
      `${https.host}/${repo}:v1`,
      "--no-plain-http",
      "--ca-file",
      ca.certPath,
      "-q",
    ]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(await skopeoDigest(["--cert-dir", caOnlyDir], `${https.host}/${repo}:v1`)).toBe(digest);
  });

  it("without the CA: unknown authority, one clear error, exit 1", async () => {
    const res = await ferry(["inspect", `${https.host}/x:v1`, "--no-plain-http"]);
    expect(res.code).toBe(1);
    oneClearLine(res.stderr);
    expect(res.stderr).toContain(
      `TLS with ${https.host} failed: its certificate is signed by an unknown authority`,
    );
    expect(res.stderr).toMatch(/--ca-file/);
  });

  it("--tls-verify=false: the copy lands with its digest", async () => {
    const repo = uniqueRepo("no-verify");
    const res = await ferry([
      "copy",
      `oci:${layout}:v1`,
      `${https.host}/${repo}:v1`,
      "--no-plain-http",
      "--tls-verify=false",
      "-q",
    ]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(await skopeoDigest(["--tls-verify=false"], `${https.host}/${repo}:v1`)).toBe(digest);
  });

  it("plain http to an https loopback registry says so and how to fix it", async () => {
    const res = await ferry(["inspect", `${https.host}/x:v1`]);
    expect(res.code).toBe(1);
    oneClearLine(res.stderr);
    expect(res.stderr).toContain(`${https.host} speaks https, and ferry spoke plain http to it`);
  });
});

describe("certificate directories: bad input", () => {
  it("a client.cert without its key is a usage error naming the file (exit 2)", async () => {
    const dir = join(work, "no-key");
    writeCertDir(dir, { ca: ca.cert });
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(dir, "client.cert"), ca.cert);
    const res = await ferry(["copy", source, `${mtls.host}/x:v1`, "--dest-cert-dir", dir]);
    expect(res.code).toBe(2);
    oneClearLine(res.stderr);
    expect(res.stderr).toContain(
      `--dest-cert-dir: ${dir}: client certificate client.cert has no key client.key`,
    );
  });

  it("a missing directory and --plain-http with a directory are usage errors (exit 2)", async () => {
    const missing = await ferry(["inspect", `${mtls.host}/x:v1`, "--cert-dir", join(work, "nope")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--cert-dir: cannot read the certificate directory/);
    const plain = await ferry(["inspect", `${mtls.host}/x:v1`, "--cert-dir", fullDir, "--plain-http"]);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/--cert-dir and --plain-http contradict each other/);
  });
});
