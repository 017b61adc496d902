import { describe, expect, it } from "vitest";
import { EnvCredentials } from "../../../shared/registry/auth/credentials.ts";
import { CredentialsError, printable } from "../../../shared/registry/errors.ts";

describe("EnvCredentials", () => {
  const creds = { FERRY_USERNAME: "u", FERRY_PASSWORD: "p" };

  it("answers only for the registries FERRY_REGISTRY names (commas, schemes and Docker Hub aliases accepted)", async () => {
    const env = new EnvCredentials({
      ...creds,
      FERRY_REGISTRY: " https://index.docker.io/v1/ , Registry.Example:5000",
    });
    expect(await env.get("docker.io")).toEqual({ username: "u", password: "p" });
    expect(await env.get("registry.example:5000")).toEqual({ username: "u", password: "p" });
    expect(await env.get("registry.example")).toBeUndefined();
    expect(await env.get("evil.example")).toBeUndefined();
  });

  it("refuses a username and password with no registry named", () => {
    expect(() => new EnvCredentials(creds)).toThrow(CredentialsError);
    expect(() => new EnvCredentials({ ...creds, FERRY_REGISTRY: " , " })).toThrow(/FERRY_REGISTRY is not/);
  });

  it("refuses half a credential", () => {
    expect(() => new EnvCredentials({ FERRY_USERNAME: "u", FERRY_REGISTRY: "r" })).toThrow(
      "FERRY_USERNAME is set but FERRY_PASSWORD is not",
    );
    expect(() => new EnvCredentials({ FERRY_PASSWORD: "p", FERRY_REGISTRY: "r" })).toThrow(
      "FERRY_PASSWORD is set but FERRY_USERNAME is not",
    );
  });

  it("is empty when nothing is set", async () => {
    expect(await new EnvCredentials({}).get("docker.io")).toBeUndefined();
  });
});

describe("printable", () => {
  it("escapes C0, DEL, C1 and bidi controls, keeps ordinary text", () => {
    expect(printable("a\x1b[31mb\x07\x7f\u009b\u202e\u2066z ü 日本")).toBe(
      "a\\x1b[31mb\\x07\\x7f\\x9b\\u202e\\u2066z ü 日本",
    );
    expect(printable("one\ntwo")).toBe("one\\x0atwo");
    expect(printable("one\ntwo", true)).toBe("one\ntwo");
  });
});
