import { createHash } from "node:crypto";
import { request } from "undici";
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import { startDistribution } from "../helpers/distribution.ts";
import { parseScope, type TokenRequest } from "../helpers/index.ts";

const registries = inject("registries");

const basicAuth = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { method: "GET", headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string {
  const v = headers[name];
  return Array.isArray(v) ? v.join(", ") : (v ?? "");
}

/** Parses `Bearer realm="..",service="..",scope=".."` into a map. */
function parseChallenge(value: string): { scheme: string; params: Record<string, string> } {
  const [scheme = "", rest = ""] = value.split(/\s+(.*)/s);
  const params: Record<string, string> = {};
  for (const m of rest.matchAll(/(\w+)="([^"]*)"/g)) params[m[1]!] = m[2]!;
  return { scheme, params };
}

async function fetchToken(
  realm: string,
  service: string,
  scopes: string[],
  creds?: { user: string; password: string },
) {
  const url = new URL(realm);
  url.searchParams.set("service", service);
  for (const s of scopes) url.searchParams.append("scope", s);
  const headers: Record<string, string> = creds
    ? { authorization: basicAuth(creds.user, creds.password) }
    : {};
  const res = await get(url.toString(), headers);
  return { status: res.status, body: res.status === 200 ? JSON.parse(res.text) : undefined };
}

describe("anonymous registry", () => {
  const reg = registries.anon;

  it("answers GET /v2/ with 200", async () => {
    const res = await get(`${reg.url}/v2/`);
    expect(res.status).toBe(200);
    expect(header(res.headers, "docker-distribution-api-version")).toBe("registry/2.0");
    expect(reg.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(reg.url).toBe(`http://${reg.host}`);
  });

  it("stores a blob (monolithic upload) and deletes it (delete enabled)", async () => {
    const repo = `harness/blob-${Date.now()}`;
    const data = Buffer.from(`hello ferry ${Math.random()}`);
    const digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
    const post = await request(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: "POST" });
    await post.body.dump();
    expect(post.statusCode).toBe(202);
    const location = new URL(header(post.headers, "location"), reg.url);
    location.searchParams.set("digest", digest);
    const put = await request(location, {
      method: "PUT",
      body: data,
      headers: { "content-type": "application/octet-stream" },
    });
    await put.body.dump();
    expect(put.statusCode).toBe(201);
    const head = await request(`${reg.url}/v2/${repo}/blobs/${digest}`, { method: "HEAD" });
    await head.body.dump();
    expect(head.statusCode).toBe(200);
    expect(header(head.headers, "content-length")).toBe(String(data.length));
    const del = await request(`${reg.url}/v2/${repo}/blobs/${digest}`, { method: "DELETE" });
    await del.body.dump();
    expect(del.statusCode).toBe(202);
  });
});

describe("basic-auth registry", () => {
  const reg = registries.basic;

  it("challenges with Basic realm", async () => {
    const res = await get(`${reg.url}/v2/`);
    expect(res.status).toBe(401);
    expect(header(res.headers, "www-authenticate")).toBe('Basic realm="ferry-test"');
  });

  it("accepts the right credentials", async () => {
    expect(reg.username).toBe("ferry");
    expect(reg.password).toBeTruthy();
    const res = await get(`${reg.url}/v2/`, { authorization: basicAuth(reg.username!, reg.password!) });
    expect(res.status).toBe(200);
  });

  it("rejects a wrong password", async () => {
    const res = await get(`${reg.url}/v2/`, { authorization: basicAuth(reg.username!, `${reg.password}x`) });
    expect(res.status).toBe(401);
  });
});

describe("token-auth registry", () => {
  const reg = registries.token;
  const tok = reg.token!;
  const creds = { user: reg.username!, password: reg.password! };

  it("challenges with Bearer realm and service", async () => {
    const res = await get(`${reg.url}/v2/`);
    expect(res.status).toBe(401);
    const ch = parseChallenge(header(res.headers, "www-authenticate"));
    expect(ch.scheme).toBe("Bearer");
    expect(ch.params.realm).toBe(tok.realm);
    expect(ch.params.service).toBe(tok.service);
  });

  it("accepts a token fetched from the realm with credentials", async () => {
    const t = await fetchToken(tok.realm, tok.service, [], creds);
    expect(t.status).toBe(200);
    expect(t.body.token).toBe(t.body.access_token);
    expect(t.body.expires_in).toBe(300);
    expect(Number.isNaN(Date.parse(t.body.issued_at))).toBe(false);
    const res = await get(`${reg.url}/v2/`, { authorization: `Bearer ${t.body.token}` });
    expect(res.status).toBe(200);
  });

  it("lets an authenticated token push, and names the scope in the challenge", async () => {
    const repo = `harness/push-${Date.now()}`;
    const noAuth = await request(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: "POST" });
    await noAuth.body.dump();
    expect(noAuth.statusCode).toBe(401);
    const ch = parseChallenge(header(noAuth.headers, "www-authenticate"));
    // distribution builds the challenge's action list from a Go map: the order varies.
    const asked = parseScope(ch.params.scope ?? "");
    expect(asked && { ...asked, actions: [...asked.actions].sort() }).toEqual({
      type: "repository",
      name: repo,
      actions: ["pull", "push"],
    });

    const t = await fetchToken(tok.realm, tok.service, [ch.params.scope!], creds);
    const res = await request(`${reg.url}/v2/${repo}/blobs/uploads/`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.body.token}` },
    });
    await res.body.dump();
    expect(res.statusCode).toBe(202);
  });

  it("does not let a pull-only anonymous token push", async () => {
    const repo = `harness/anon-${Date.now()}`;
    const t = await fetchToken(tok.realm, tok.service, [`repository:${repo}:pull,push`]);
    expect(t.status).toBe(200);
    const res = await request(`${reg.url}/v2/${repo}/blobs/uploads/`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.body.token}` },
    });
    const text = await res.body.text();
    expect(res.statusCode).toBe(401);
    expect(header(res.headers, "www-authenticate")).toContain('error="insufficient_scope"');
    expect(JSON.parse(text).errors[0].code).toBe("UNAUTHORIZED");
  });

  it("needs registry:catalog:* for the catalog", async () => {
    const none = await fetchToken(tok.realm, tok.service, [], creds);
    const denied = await get(`${reg.url}/v2/_catalog`, { authorization: `Bearer ${none.body.token}` });
    expect(denied.status).toBe(401);
    const t = await fetchToken(tok.realm, tok.service, ["registry:catalog:*"], creds);
    const res = await get(`${reg.url}/v2/_catalog`, { authorization: `Bearer ${t.body.token}` });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toHaveProperty("repositories");
  });

  it("refuses a wrong password at the token endpoint", async () => {
    const t = await fetchToken(tok.realm, tok.service, ["repository:x:pull"], {
      user: creds.user,
      password: `${creds.password}x`,
    });
    expect(t.status).toBe(401);
  });

  it("records requested scopes (visible over HTTP), without secrets", async () => {
    const repo = `harness/rec-${Date.now()}`;
    await fetchToken(
      tok.realm,
      tok.service,
      [`repository:${repo}:pull`, `repository:${repo}-2:pull,push`],
      creds,
    );
    const res = await get(tok.requestsUrl);
    const recorded = (JSON.parse(res.text) as TokenRequest[]).filter((r) =>
      r.scopes.some((s) => s.includes(repo)),
    );
    expect(recorded).toEqual([
      {
        scopes: [`repository:${repo}:pull`, `repository:${repo}-2:pull,push`],
        user: creds.user,
        service: tok.service,
        status: 200,
        granted: [
          { type: "repository", name: repo, actions: ["pull"] },
          { type: "repository", name: `${repo}-2`, actions: ["pull", "push"] },
        ],
      },
    ]);
    expect(res.text).not.toContain(creds.password);
  });
});

describe("startDistribution", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("says how to install the registry when the binary is missing", async () => {
    vi.stubEnv("FERRY_REGISTRY_BIN", "/nonexistent/docker-registry");
    await expect(startDistribution({ auth: "none" })).rejects.toThrow("apt-get install -y docker-registry");
  });

  it("starts a private token registry with its own TTL and in-process request log", async () => {
    const reg = await startDistribution({
      auth: "token",
      tokenTtlSeconds: 5,
      username: "alice",
      password: "s3cret",
    });
    try {
      const tok = reg.token!;
      const t = await fetchToken(tok.realm, tok.service, ["repository:a/b:pull"], {
        user: "alice",
        password: "s3cret",
      });
      expect(t.body.expires_in).toBe(5);
      expect(tok.requests).toHaveLength(1);
      expect(tok.requests[0]?.scopes).toEqual(["repository:a/b:pull"]);
      tok.reset();
      expect(tok.requests).toHaveLength(0);
      const res = await get(`${reg.url}/v2/`, { authorization: `Bearer ${t.body.token}` });
      expect(res.status).toBe(200);
    } finally {
      await reg.stop();
    }
    await expect(request(`${reg.url}/v2/`)).rejects.toThrow();
  });
});

describe("parseScope", () => {
  it("parses names with ':' and resource classes", () => {
    expect(parseScope("repository:a/b:pull,push")).toEqual({
      type: "repository",
      name: "a/b",
      actions: ["pull", "push"],
    });
    expect(parseScope("repository(plugin):host:5000/x:pull")).toEqual({
      type: "repository",
      class: "plugin",
      name: "host:5000/x",
      actions: ["pull"],
    });
    expect(parseScope("registry:catalog:*")).toEqual({ type: "registry", name: "catalog", actions: ["*"] });
    expect(parseScope("nonsense")).toBeUndefined();
  });
});
