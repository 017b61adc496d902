/** Credential providers for the Lambdas, with fake AWS clients (the AWS control plane only). */
import { describe, expect, it } from "vitest";
import {
  assumedRole,
  EcrCredentials,
  parseEcrHost,
  SecretsManagerCredentials,
} from "../../../shared/aws/credentials.ts";
import { bytesEnv, registrySecrets } from "../../../shared/aws/env.ts";

describe("SecretsManagerCredentials", () => {
  it("reads {username,password} for the mapped registry only, once per TTL", async () => {
    const reads: string[] = [];
    const p = new SecretsManagerCredentials({
      secrets: { "registry.example.com": "arn:aws:secretsmanager:eu-west-1:1:secret:reg" },
      reader: {
        async getSecretString(id) {
          reads.push(id);
          return JSON.stringify({ username: "robot", password: "s3cret" });
        },
      },
    });
    expect(await p.get("registry.example.com")).toEqual({ username: "robot", password: "s3cret" });
    expect(await p.get("registry.example.com")).toEqual({ username: "robot", password: "s3cret" });
    expect(await p.get("elsewhere.example.com")).toBeUndefined();
    expect(reads).toHaveLength(1);
  });

  it("names the secret, never its value, when it is unusable", async () => {
    const p = new SecretsManagerCredentials({
      secrets: { r: "arn:secret" },
      reader: { getSecretString: async () => JSON.stringify({ user: "x", pass: "hunter2" }) },
    });
    const err = await p.get("r").catch((e: Error) => e);
    expect((err as Error).name).toBe("CredentialsError");
    expect((err as Error).message).toMatch(/arn:secret/);
    expect((err as Error).message).not.toMatch(/hunter2/);
    const denied = new SecretsManagerCredentials({
      secrets: { r: "arn:secret" },
      reader: {
        getSecretString: async () => {
          throw Object.assign(new Error("not authorized"), { name: "AccessDeniedException" });
        },
      },
    });
    await expect(denied.get("r")).rejects.toThrow(/AccessDeniedException/);
  });
});

describe("EcrCredentials", () => {
  it("gets AWS:<token> for ECR hosts in their region, cached until near expiry", async () => {
    const calls: [string, string][] = [];
    const p = new EcrCredentials({
      source: {
        async getAuthorizationToken(region, registryId) {
          calls.push([region, registryId]);
          return {
            token: Buffer.from("AWS:tok-en").toString("base64"),
            expiresAt: new Date(Date.now() + 12 * 3600_000),
          };
        },
      },
    });
    expect(await p.get("111122223333.dkr.ecr.eu-west-1.amazonaws.com")).toEqual({
      username: "AWS",
      password: "tok-en",
    });
    await p.get("111122223333.dkr.ecr.eu-west-1.amazonaws.com");
    expect(await p.get("ghcr.io")).toBeUndefined();
    expect(calls).toEqual([["eu-west-1", "111122223333"]]);
    expect(parseEcrHost("111122223333.dkr.ecr-fips.us-gov-west-1.amazonaws.com")).toEqual({
      registryId: "111122223333",
      region: "us-gov-west-1",
    });
    expect(parseEcrHost("evil.com/111122223333.dkr.ecr.eu-west-1.amazonaws.com")).toBeUndefined();
  });

  it("fetches again when the token is about to expire", async () => {
    let n = 0;
    const p = new EcrCredentials({
      source: {
        async getAuthorizationToken() {
          n++;
          return {
            token: Buffer.from(`AWS:t${n}`).toString("base64"),
            expiresAt: new Date(Date.now() + 60_000),
          };
        },
      },
    });
    expect((await p.get("111122223333.dkr.ecr.eu-west-1.amazonaws.com"))?.password).toBe("t1");
    expect((await p.get("111122223333.dkr.ecr.eu-west-1.amazonaws.com"))?.password).toBe("t2");
  });

  it("uses the assumed role (ECR_ROLE_ARN) only for registries of that role's account", async () => {
    const used: string[] = [];
    const source = (who: string) => ({
      async getAuthorizationToken() {
        used.push(who);
        return { token: Buffer.from(`AWS:${who}`).toString("base64") };
      },
    });
    const p = new EcrCredentials({
      roleArn: "arn:aws:iam::444455556666:role/promote",
      source: source("own"),
      roleSource: source("role"),
    });
    expect((await p.get("444455556666.dkr.ecr.eu-west-1.amazonaws.com"))?.password).toBe("role");
    expect((await p.get("111122223333.dkr.ecr.eu-west-1.amazonaws.com"))?.password).toBe("own");
    expect(() => new EcrCredentials({ roleArn: "not-an-arn", source: source("x") })).toThrow(/ECR_ROLE_ARN/);
  });

  it("assumes the configured role and reuses the credentials until they near expiry", async () => {
    const assumed: string[] = [];
    const provider = assumedRole("arn:aws:iam::444455556666:role/promote", async (arn) => {
      assumed.push(arn);
      return {
        accessKeyId: "AK",
        secretAccessKey: "SK",
        sessionToken: "ST",
        expiration: new Date(Date.now() + 3600_000),
      };
    });
    expect((await provider()).accessKeyId).toBe("AK");
    await provider();
    expect(assumed).toEqual(["arn:aws:iam::444455556666:role/promote"]);
  });
});

describe("environment", () => {
  it("parses byte sizes and the registry → secret map, naming the variable when wrong", () => {
    expect(bytesEnv({ STEP_BYTES: "2GiB" }, "STEP_BYTES")).toBe(2 * 1024 ** 3);
    expect(bytesEnv({ STEP_BYTES: "1048576" }, "STEP_BYTES")).toBe(1048576);
    expect(bytesEnv({}, "STEP_BYTES")).toBeUndefined();
    expect(() => bytesEnv({ STEP_BYTES: "lots" }, "STEP_BYTES")).toThrow(/STEP_BYTES/);
    expect(registrySecrets({ REGISTRY_SECRETS: '{"r.io":"arn:x"}' })).toEqual({ "r.io": "arn:x" });
    expect(() => registrySecrets({ REGISTRY_SECRETS: "[1]" })).toThrow(/REGISTRY_SECRETS/);
    expect(() => registrySecrets({ REGISTRY_SECRETS: '{"r.io":1}' })).toThrow(/REGISTRY_SECRETS/);
  });
});
