/**
 * The Lambdas' connection settings: per-registry TLS from Secrets Manager (REGISTRY_TLS, a fake reader:
 * the AWS control plane only), the proxy of the function's environment, the network policy — and a
 * client built from them presenting its certificate to a real https server that demands one.
 */
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { describe, expect, it } from "vitest";
import type { SecretReader } from "../../../shared/aws/credentials.ts";
import { ConfigError, registryTlsSecrets } from "../../../shared/aws/env.ts";
import { lambdaConnection } from "../../../shared/aws/lambda.ts";
import { parseTlsSecret, secretsManagerTls } from "../../../shared/aws/tls.ts";
import { RegistryClient } from "../../../shared/registry/client.ts";
import { TlsError } from "../../../shared/registry/http/tls.ts";
import { makeCa } from "../../helpers/pki.ts";

const ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry-tls-AbCdEf";
const CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nSECRETKEYBYTES\n-----END PRIVATE KEY-----\n";

function reader(secrets: Record<string, string>, reads: string[] = []): SecretReader {
  return {
    async getSecretString(id) {
      reads.push(id);
      if (!(id in secrets))
        throw Object.assign(new Error("not found"), { name: "ResourceNotFoundException" });
      return secrets[id];
    },
  };
}

describe("secretsManagerTls", () => {
  it("answers for the mapped registries only, and reads a secret when its settings are loaded", async () => {
    expect(secretsManagerTls({ secrets: {} })).toBeUndefined();
    const reads: string[] = [];
    const lookup = secretsManagerTls({
      secrets: { "registry.corp:5000": ARN },
      reader: reader({ [ARN]: JSON.stringify({ ca: CERT, cert: CERT, key: KEY }) }, reads),
    })!;
    expect(lookup("elsewhere.corp")).toBeUndefined();
    const tls = lookup("registry.corp:5000")!;
    expect(tls.source).toBe(`secret ${ARN}`);
    expect(reads).toEqual([]);
    expect(await tls.load()).toEqual({ ca: [CERT], cert: CERT, key: KEY });
    expect(reads).toEqual([ARN]);
  });

  it("names the secret and the field when it is unusable, never the secret's contents", async () => {
    const bad: [string, RegExp][] = [
      ["not json SECRETKEYBYTES", /is not JSON \{"ca", "cert", "key"\}/],
      [JSON.stringify({ cert: CERT }), /"cert" and "key" go together/],
      [JSON.stringify({ key: KEY }), /"cert" and "key" go together/],
      [JSON.stringify({}), /holds neither "ca" nor "cert"/],
      [JSON.stringify({ ca: "SECRETKEYBYTES" }), /"ca" must be PEM text/],
      [JSON.stringify({ ca: CERT, password: "SECRETKEYBYTES" }), /unknown field\(s\) password/],
    ];
    for (const [text, message] of bad) {
      let err: unknown;
      try {
        parseTlsSecret(text, "registry.corp", ARN);
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(TlsError);
      expect((err as Error).message, text).toMatch(message);
      expect((err as Error).message, text).toContain(ARN);
      expect((err as Error).message, text).not.toContain("SECRETKEYBYTES");
    }
    const missing = secretsManagerTls({ secrets: { r: ARN }, reader: reader({}) })!;
    await expect(async () => missing("r")!.load()).rejects.toThrow(
      /cannot read the TLS settings of r from Secrets Manager .*ResourceNotFoundException/,
    );
  });
});

describe("lambdaConnection", () => {
  it("reads REGISTRY_TLS, the proxy variables and PRIVATE_REGISTRIES", () => {
    const c = lambdaConnection(
      {
        REGISTRY_TLS: JSON.stringify({ "registry.corp": ARN }),
        HTTPS_PROXY: "http://egress.vpc.internal:3128",
        NO_PROXY: ".amazonaws.com",
        PRIVATE_REGISTRIES: '["registry.corp"]',
      },
      { secretReader: reader({}) },
    );
    expect(c.network).toEqual({ publicOnly: true, allowPrivateHosts: ["registry.corp"] });
    expect(c.proxy?.httpsProxy?.href).toBe("http://egress.vpc.internal:3128/");
    expect(c.proxy?.noProxy).toBe(".amazonaws.com");
    expect(c.registryTls?.("registry.corp")?.source).toBe(`secret ${ARN}`);
    const bare = lambdaConnection({});
    expect(bare.proxy).toBeUndefined();
    expect(bare.registryTls).toBeUndefined();
  });

  it("a malformed setting is a ConfigError naming the variable (and not a proxy password)", () => {
    expect(() => lambdaConnection({ HTTPS_PROXY: "ftp://u:hunter2@proxy" })).toThrow(ConfigError);
    expect(() => lambdaConnection({ HTTPS_PROXY: "ftp://u:hunter2@proxy" })).toThrow(
      /^HTTPS_PROXY: ftp proxies/,
    );
    expect(() => lambdaConnection({ HTTPS_PROXY: "ftp://u:hunter2@proxy" })).not.toThrow(/hunter2/);
    expect(() => registryTlsSecrets({ REGISTRY_TLS: "[]" })).toThrow(/REGISTRY_TLS must be a JSON object/);
    expect(() => registryTlsSecrets({ REGISTRY_TLS: '{"r": 1}' })).toThrow(
      /REGISTRY_TLS\["r"\] must be a secret ARN/,
    );
  });

  it("a client built from it presents the secret's client certificate to a registry that demands one", async () => {
    const ca = makeCa();
    const server = ca.server("registry", ["127.0.0.1"]);
    const client = ca.client("ferry-lambda");
    const peers: string[] = [];
    const srv = https.createServer(
      { cert: server.cert, key: server.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        peers.push(String((req.socket as TLSSocket).getPeerCertificate().subject?.CN));
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      },
    );
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const host = `127.0.0.1:${(srv.address() as AddressInfo).port}`;
    const reads: string[] = [];
    const secret = JSON.stringify({
      ca: String(ca.cert),
      cert: String(client.cert),
      key: String(client.key),
    });
    const c = new RegistryClient({
      retries: 0,
      ...lambdaConnection(
        { REGISTRY_TLS: JSON.stringify({ [host]: ARN }), PRIVATE_REGISTRIES: JSON.stringify([host]) },
        { secretReader: reader({ [ARN]: secret }, reads) },
      ),
    });
    try {
      await c.ping(host);
      await c.ping(host);
      expect(peers).toEqual(["ferry-lambda", "ferry-lambda"]);
      expect(reads).toEqual([ARN]);
    } finally {
      await c.close();
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
      ca.remove();
    }
  });
});
