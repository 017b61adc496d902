import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { mergeScopes, parseChallenges, pickChallenge } from "../../../shared/registry/auth/challenge.ts";
import { DockerConfigCredentials, parseUserPass } from "../../../shared/registry/auth/credentials.ts";
import { retryAfterMs } from "../../../shared/registry/http/transport.ts";

describe("parseChallenges", () => {
  it.each([
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"',
      "bearer",
      {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/ubuntu:pull",
      },
    ],
    ['Basic realm="Registry Realm"', "basic", { realm: "Registry Realm" }],
    ['basic realm="a \\"quoted\\" realm"', "basic", { realm: 'a "quoted" realm' }],
    [
      'Bearer realm="https://r/token",service="s",scope="repository:a:pull,push",error="insufficient_scope"',
      "bearer",
      {
        realm: "https://r/token",
        service: "s",
        scope: "repository:a:pull,push",
        error: "insufficient_scope",
      },
    ],
    ["Bearer realm=https://r/token, service=s", "bearer", { realm: "https://r/token", service: "s" }],
  ])("%s", (header, scheme, params) => {
    const [c] = parseChallenges(header);
    expect(c?.scheme).toBe(scheme);
    expect(c?.params).toEqual(params);
  });

  it("prefers Bearer over Basic and survives garbage", () => {
    expect(pickChallenge(parseChallenges(['Basic realm="x"', 'Bearer realm="y"']))?.scheme).toBe("bearer");
    expect(parseChallenges(undefined)).toEqual([]);
    expect(() => parseChallenges('==,,"unterminated')).not.toThrow();
  });

  it("merges scopes per resource", () => {
    expect(
      mergeScopes(["repository:b:pull", "repository:a:push", "repository:a:pull", "registry:catalog:*"]),
    ).toEqual(["registry:catalog:*", "repository:a:pull,push", "repository:b:pull"]);
  });
});

describe("Retry-After", () => {
  it("reads seconds and dates, and caps them", () => {
    expect(retryAfterMs("2", 10_000)).toBe(2000);
    expect(retryAfterMs("120", 10_000)).toBe(10_000);
    // an HTTP date is read against the clock: a fixed clock makes the answer exact
    vi.useFakeTimers({ now: new Date("2026-03-04T05:06:07Z"), toFake: ["Date"] });
    try {
      expect(retryAfterMs("Wed, 04 Mar 2026 05:06:10 GMT", 60_000)).toBe(3000);
      expect(retryAfterMs("Wed, 04 Mar 2026 05:06:00 GMT", 60_000)).toBe(0); // in the past
    } finally {
      vi.useRealTimers();
    }
    expect(retryAfterMs("soon", 1000)).toBeUndefined();
    expect(retryAfterMs(undefined, 1000)).toBeUndefined();
  });
});

describe("Docker config credentials", () => {
  const dir = mkdtempSync(join(tmpdir(), "ferry-cfg-"));
  const write = (name: string, body: unknown) => {
    const p = join(dir, name);
    writeFileSync(p, typeof body === "string" ? body : JSON.stringify(body));
    return p;
  };

  it("reads auths in every form Docker writes", async () => {
    const p = write("a.json", {
      auths: {
        "https://index.docker.io/v1/": { auth: Buffer.from("hubuser:hub:pass").toString("base64") },
        "ghcr.io": { username: "u", password: "p" },
        "https://quay.io": { identitytoken: "refresh-me" },
      },
    });
    const c = new DockerConfigCredentials(p);
    expect(await c.get("docker.io")).toEqual({ username: "hubuser", password: "hub:pass" });
    expect(await c.get("ghcr.io")).toEqual({ username: "u", password: "p" });
    expect(await c.get("quay.io")).toMatchObject({ identityToken: "refresh-me" });
    expect(await c.get("example.com")).toBeUndefined();
  });

  it("runs credential helpers (credHelpers before credsStore)", async () => {
    const bin = mkdtempSync(join(tmpdir(), "ferry-bin-"));
    const helper = join(bin, "docker-credential-ferrytest");
    writeFileSync(
      helper,
      '#!/bin/sh\nread server\nif [ "$server" = "helped.example" ]; then echo \'{"Username":"hu","Secret":"hs"}\'; ' +
        'elif [ "$server" = "tok.example" ]; then echo \'{"Username":"<token>","Secret":"idt"}\'; ' +
        "else echo 'credentials not found in native keychain'; exit 1; fi\n",
    );
    chmodSync(helper, 0o755);
    const p = write("h.json", { credHelpers: { "helped.example": "ferrytest" }, credsStore: "ferrytest" });
    const oldPath = process.env.PATH;
    process.env.PATH = `${bin}:${oldPath}`;
    try {
      const c = new DockerConfigCredentials(p);
      expect(await c.get("helped.example")).toEqual({ username: "hu", password: "hs" });
      expect(await c.get("tok.example")).toEqual({ identityToken: "idt" });
      expect(await c.get("unknown.example")).toBeUndefined();
    } finally {
      process.env.PATH = oldPath;
    }
  });

  it("gives clear errors for malformed files and missing helpers", async () => {
    await expect(new DockerConfigCredentials(write("bad.json", "{not json")).get("x")).rejects.toThrow(
      /not valid JSON/,
    );
    const p = write("missing.json", { credHelpers: { "x.example": "nosuchhelper" } });
    await expect(new DockerConfigCredentials(p).get("x.example")).rejects.toThrow(
      /docker-credential-nosuchhelper is not installed/,
    );
    await expect(new DockerConfigCredentials(join(dir, "absent.json")).get("x")).rejects.toThrow(
      /cannot read/,
    );
    expect(await new DockerConfigCredentials(undefined).get("never.example")).toBeUndefined();
  });

  it("parses user:password", () => {
    expect(parseUserPass("a:b:c")).toEqual({ username: "a", password: "b:c" });
    expect(() => parseUserPass("nopass")).toThrow(/user:password/);
  });
});
