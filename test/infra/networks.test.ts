/**
 * Real networks as deployed: a registry's TLS settings from Secrets Manager (`registries.<host>.tls`,
 * REGISTRY_TLS) and a forward proxy (`proxy`, HTTPS_PROXY / HTTP_PROXY / NO_PROXY) reach exactly the
 * functions with a registry client, the TLS secrets are readable by those functions only, and what the
 * functions make of the deployed values (shared/aws/lambda.ts lambdaConnection).
 */
import { App } from "aws-cdk-lib";
import { describe, expect, it } from "vitest";
import { readFerryConfig, toTransferProps } from "../../infra/config.ts";
import type { ImageTransferProps } from "../../infra/constructs/props.ts";
import { lambdaConnection } from "../../shared/aws/lambda.ts";
import {
  allowedActions,
  asList,
  CDK_CONTEXT,
  deployedString,
  logicalId,
  REGISTRY_FUNCTIONS,
  roleStatements,
  type Synthesised,
  synth,
} from "./helpers.ts";

const TLS_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ferry/corp-tls-AbCdEf";
const QUAY_TLS = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ferry/quay-tls";
const KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

const PROPS: ImageTransferProps = {
  registries: {
    "ghcr.io": {},
    "registry.corp:5000": { tls: { secretArn: TLS_ARN } },
    "quay.io": {
      secretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ferry/quay-AbCdEf",
      tls: { secretArn: QUAY_TLS, encryptionKeyArn: KEY },
    },
  },
  proxy: {
    httpsProxy: "http://egress.vpc.internal:3128",
    httpProxy: "http://egress.vpc.internal:3128",
    noProxy: [".amazonaws.com", "10.0.0.0/8"],
  },
  privateRegistries: ["registry.corp:5000"],
  benchWorkers: true,
};
function functions(s: Synthesised) {
  return s.stack.transfer.functions as Record<string, { function: object; role: object } | undefined>;
}

/** A function's environment as deployed in account 123456789012, eu-west-1. */
function deployedEnv(s: Synthesised, name: string): Record<string, string> {
  const fn = functions(s)[name]!;
  const vars = (
    s.json.Resources[logicalId(s.stack, fn.function as never)]!.Properties!.Environment as {
      Variables: Record<string, unknown>;
    }
  ).Variables;
  return Object.fromEntries(
    Object.entries(vars)
      .filter(([, v]) => {
        try {
          deployedString(v);
          return true;
        } catch {
          return false; // references to other resources (bucket names): not needed here
        }
      })
      .map(([k, v]) => [k, deployedString(v)]),
  );
}

describe("per-registry TLS and a proxy, deployed", () => {
  const s = synth(PROPS);

  it("every function with a registry client gets REGISTRY_TLS and the proxy variables; the others none", () => {
    for (const name of REGISTRY_FUNCTIONS) {
      const env = deployedEnv(s, name);
      expect(JSON.parse(env.REGISTRY_TLS ?? "{}"), name).toEqual({
        "registry.corp:5000": TLS_ARN,
        "quay.io": QUAY_TLS,
      });
      expect(env.HTTPS_PROXY, name).toBe("http://egress.vpc.internal:3128");
      expect(env.HTTP_PROXY, name).toBe("http://egress.vpc.internal:3128");
      expect(env.NO_PROXY, name).toBe(".amazonaws.com,10.0.0.0/8");
    }
    for (const name of ["api", "schedule", "summarize"]) {
      const env = deployedEnv(s, name);
      for (const v of ["REGISTRY_TLS", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"])
        expect(env[v], `${name} ${v}`).toBeUndefined();
    }
  });

  it("what the functions make of it: a proxy, TLS settings for the two registries, the private one allowed", () => {
    const c = lambdaConnection(deployedEnv(s, "uploadBlob"));
    expect(c.proxy?.httpsProxy?.host).toBe("egress.vpc.internal:3128");
    expect(c.registryTls?.("registry.corp:5000")?.source).toBe(`secret ${TLS_ARN}`);
    expect(c.registryTls?.("quay.io")?.source).toBe(`secret ${QUAY_TLS}`);
    expect(c.registryTls?.("ghcr.io")).toBeUndefined();
    expect(c.network?.allowPrivateHosts).toEqual(["registry.corp:5000"]);
  });

  it("a registry listed for its TLS settings alone gets no credentials secret", () => {
    const secrets = s.stack.transfer.registrySecrets;
    expect([...secrets.secrets.keys()].sort()).toEqual(["ghcr.io", "quay.io"]);
    expect(secrets.created).toEqual(new Set(["ghcr.io"]));
    expect([...secrets.tlsSecrets.keys()].sort()).toEqual(["quay.io", "registry.corp:5000"]);
  });

  it("the TLS secrets (and their key) are readable by the registry functions only", () => {
    const roleOf = (name: string) => logicalId(s.stack, functions(s)[name]!.role as never);
    for (const name of Object.keys(functions(s)).filter((n) => functions(s)[n])) {
      const resources = roleStatements(s.json, roleOf(name))
        .filter((st) => st.Effect === "Allow" && asList(st.Action).includes("secretsmanager:GetSecretValue"))
        .flatMap((st) => asList(st.Resource));
      const talks = REGISTRY_FUNCTIONS.includes(name);
      expect(resources.includes(TLS_ARN), name).toBe(talks);
      expect(resources.includes(`${QUAY_TLS}-??????`), name).toBe(talks);
      expect(allowedActions(s.json, roleOf(name)).has("kms:Decrypt"), name).toBe(talks);
    }
  });

  it("without them, nothing is added", () => {
    const plain = synth({ registries: { "ghcr.io": {} } });
    const env = deployedEnv(plain, "resolve");
    for (const v of ["REGISTRY_TLS", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"])
      expect(env[v], v).toBeUndefined();
  });

  it("refuses proxy credentials, non-http proxies, malformed NO_PROXY entries and TLS secrets that are not ARNs", () => {
    const cases: [ImageTransferProps, RegExp][] = [
      [
        { proxy: { httpsProxy: "http://user:pw@proxy:3128" } },
        /proxy\.httpsProxy must not carry credentials/,
      ],
      [
        { proxy: { httpProxy: "socks5://proxy:1080" } },
        /proxy\.httpProxy must be an http:\/\/ or https:\/\/ proxy URL/,
      ],
      [{ proxy: { httpsProxy: "http://proxy:3128/path" } }, /proxy\.httpsProxy is scheme:\/\/host\[:port\]/],
      [{ proxy: { noProxy: ["a.corp, b.corp"] } }, /proxy\.noProxy: "a\.corp, b\.corp" is not a host/],
      [
        { registries: { "r.corp": { tls: { secretArn: "arn:aws:s3:::bucket" } } } },
        /registries\["r\.corp"\]\.tls\.secretArn is not a Secrets Manager secret ARN/,
      ],
      [{ registries: { "r.corp": { tls: {} as never } } }, /registries\["r\.corp"\]\.tls needs a secretArn/],
      [
        { registries: { "r.corp": { tls: { secretArn: TLS_ARN, encryptionKeyArn: "key" } } } },
        /registries\["r\.corp"\]\.tls\.encryptionKeyArn is not a KMS key ARN/,
      ],
    ];
    for (const [props, message] of cases) expect(() => synth(props), String(message)).toThrow(message);
  });

  it("the JSON configuration takes `proxy` and `registries.<host>.tls` as they are", () => {
    const app = new App({
      context: {
        ...CDK_CONTEXT,
        ferry: { proxy: PROPS.proxy, registries: { "registry.corp:5000": { tls: { secretArn: TLS_ARN } } } },
      },
    });
    const props = toTransferProps(app, readFerryConfig(app));
    expect(props.proxy).toEqual(PROPS.proxy);
    expect(props.registries?.["registry.corp:5000"]?.tls?.secretArn).toBe(TLS_ARN);
  });
});
