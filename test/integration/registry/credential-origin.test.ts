/**
 * Credentials belong to an origin, decided on every hop (shared/registry/http/transport.ts): a hostile
 * registry or token endpoint that sends ferry to another host — by redirect, by a `Link` page, by an
 * upload `Location` — never gets the user's password (or identity token) delivered there, in any form.
 * "Elsewhere" is a second loopback server: another port is another origin.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Credential, StaticCredentials } from "../../../shared/registry/auth/credentials.ts";
import { RegistryClient } from "../../../shared/registry/client.ts";
import { sha256 } from "../../../shared/registry/digest.ts";
import { CredentialsError } from "../../../shared/registry/errors.ts";
import { RedirectRefusedError } from "../../../shared/registry/http/transport.ts";
import type { ClientOptions } from "../../../shared/registry/options.ts";
import { parseReference } from "../../../shared/registry/reference.ts";
import { pushBlob } from "../../../shared/registry/uploads.ts";
import {
  everything,
  type Hostile,
  hostileServer,
  type Recorded,
  secretForms,
} from "../../helpers/hostile.ts";
import { makeCa, type TestCa } from "../../helpers/pki.ts";
import { bufferOpener } from "../../helpers/registry-client.ts";

const USER = "ferry";
const SECRET = "Pw-origin-7f3c-never-elsewhere";
const BASIC = `Basic ${Buffer.from(`${USER}:${SECRET}`).toString("base64")}`;

const open: (Hostile | RegistryClient)[] = [];
const cas: TestCa[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((x) => x.close()));
  for (const ca of cas.splice(0)) ca.remove();
});

/** A certificate for 127.0.0.1 from a fresh test CA, and that CA for the client to trust. */
function loopbackTls(): { key: Buffer; cert: Buffer; ca: Buffer } {
  const ca = makeCa();
  cas.push(ca);
  const leaf = ca.server("hostile", ["127.0.0.1"]);
  return { key: leaf.key, cert: leaf.cert, ca: ca.cert };
}

async function server(...args: Parameters<typeof hostileServer>): Promise<Hostile> {
  const s = await hostileServer(...args);
  open.push(s);
  return s;
}

function client(credentials: Record<string, Credential>, opts: ClientOptions = {}) {
  const c = new RegistryClient({ credentials: new StaticCredentials(credentials), retries: 0, ...opts });
  open.push(c);
  return c;
}

/** The elsewhere host saw requests (the test is not vacuous) and none of them holds the secret. */
function expectNoSecret(elsewhere: Hostile, secret = SECRET, user: string | undefined = USER) {
  expect(elsewhere.seen.length).toBeGreaterThan(0);
  const text = everything(elsewhere.seen);
  for (const form of secretForms(secret, user)) expect(text).not.toContain(form);
  expect(elsewhere.seen.every((r) => r.headers.authorization === undefined)).toBe(true);
}

/** A bearer-challenging registry whose token endpoint (on itself) is scripted by `token`. */
async function bearerRegistry(
  token: (r: Recorded, res: import("node:http").ServerResponse) => void,
  tls?: { key: Buffer; cert: Buffer },
  realm?: (url: string) => string,
) {
  let self = "";
  const reg = await server((r, res) => {
    if (r.url.startsWith("/token")) return token(r, res);
    res
      .writeHead(401, {
        "www-authenticate": `Bearer realm="${realm ? realm(self) : `${self}/token`}",service="hostile"`,
        "content-type": "application/json",
      })
      .end('{"errors":[{"code":"UNAUTHORIZED"}]}');
  }, tls);
  self = reg.url;
  return reg;
}

describe("a token endpoint that redirects elsewhere", () => {
  it("gets the Basic credentials; the host it redirects to gets none (302)", async () => {
    const elsewhere = await server((_r, res) =>
      res.writeHead(200, { "content-type": "application/json" }).end('{"token":"t"}'),
    );
    const reg = await bearerRegistry((r, res) =>
      res.writeHead(302, { location: `${elsewhere.url}${r.url}` }).end(),
    );
    const c = client({ [reg.host]: { username: USER, password: SECRET } });
    await expect(c.getManifest(parseReference(`${reg.host}/app:1`))).rejects.toThrow();
    // The realm itself (the registry's own token endpoint) was sent the password: that is the protocol.
    expect(reg.seen.some((r) => r.url.startsWith("/token") && r.headers.authorization === BASIC)).toBe(true);
    expectNoSecret(elsewhere);
  });

  it("never re-sends an identity token's POST body to another origin (307 refused, 302 becomes a bare GET)", async () => {
    for (const status of [307, 308, 302, 301]) {
      const elsewhere = await server((_r, res) => res.writeHead(200).end('{"token":"t"}'));
      const reg = await bearerRegistry((r, res) =>
        res.writeHead(status, { location: `${elsewhere.url}${r.url}` }).end(),
      );
      const c = client({ [reg.host]: { identityToken: SECRET } });
      const err = await c.getManifest(parseReference(`${reg.host}/app:1`)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(reg.seen.some((r) => r.method === "POST" && r.body.includes("refresh_token="))).toBe(true);
      if (status === 307 || status === 308) {
        expect(err).toBeInstanceOf(RedirectRefusedError);
        expect((err as Error).message).toMatch(/does not send a request body to another origin/);
        expect(elsewhere.seen).toEqual([]);
      } else {
        expect(elsewhere.seen.map((r) => [r.method, r.body])).toEqual([["GET", ""]]);
        expectNoSecret(elsewhere, SECRET, undefined);
      }
    }
  });

  it("refuses a redirect from an https token endpoint to plain http", async () => {
    const tls = loopbackTls();
    const elsewhere = await server((_r, res) => res.writeHead(200).end('{"token":"t"}'));
    const reg = await bearerRegistry(
      (r, res) => res.writeHead(302, { location: `${elsewhere.url}${r.url}` }).end(),
      tls,
    );
    const c = client({ [reg.host]: { username: USER, password: SECRET } }, { plainHttp: false, ca: tls.ca });
    const err = await c.getManifest(parseReference(`${reg.host}/app:1`)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedirectRefusedError);
    expect((err as Error).message).toMatch(/from https to plain http/);
    expect(elsewhere.seen).toEqual([]);
  });

  it("refuses a plain-http token realm for an https registry, before sending anything to it", async () => {
    const tls = loopbackTls();
    const realm = await server((_r, res) => res.writeHead(200).end('{"token":"t"}'));
    const reg = await bearerRegistry(
      () => {},
      tls,
      () => `${realm.url}/token`,
    );
    const c = client({ [reg.host]: { username: USER, password: SECRET } }, { plainHttp: false, ca: tls.ca });
    const err = await c.getManifest(parseReference(`${reg.host}/app:1`)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialsError);
    expect((err as Error).message).toMatch(/token realm as http:\/\/127\.0\.0\.1:\d+: refused/);
    expect(realm.seen).toEqual([]);
  });
});

/** A Basic-auth registry stand-in: answers only requests that carry the right password. */
async function basicRegistry(route: (r: Recorded, res: import("node:http").ServerResponse) => void) {
  return server((r, res) => {
    if (r.headers.authorization !== BASIC) {
      return res.writeHead(401, { "www-authenticate": 'Basic realm="hostile"' }).end();
    }
    if (r.url === "/v2/") return res.writeHead(200).end("{}");
    route(r, res);
  });
}

describe("absolute URLs a registry gives", () => {
  it("a tags Link page on another host is followed without credentials", async () => {
    const elsewhere = await server((_r, res) =>
      res.writeHead(200, { "content-type": "application/json" }).end('{"tags":["b"]}'),
    );
    const reg = await basicRegistry((_r, res) =>
      res
        .writeHead(200, {
          "content-type": "application/json",
          link: `<${elsewhere.url}/v2/app/tags/list?n=1&last=a>; rel="next"`,
        })
        .end('{"tags":["a"]}'),
    );
    const c = client({ [reg.host]: { username: USER, password: SECRET } });
    const tags: string[] = [];
    for await (const t of c.tags({ registry: reg.host, repository: "app" })) tags.push(t);
    expect(tags).toEqual(["a", "b"]);
    expectNoSecret(elsewhere);
  });

  it("a catalog Link page on another host is followed without credentials", async () => {
    const elsewhere = await server((_r, res) => res.writeHead(200).end('{"repositories":["z"]}'));
    const reg = await basicRegistry((_r, res) =>
      res
        .writeHead(200, { link: `<${elsewhere.url}/v2/_catalog?last=y>; rel="next"` })
        .end('{"repositories":["y"]}'),
    );
    const c = client({ [reg.host]: { username: USER, password: SECRET } });
    const repos: string[] = [];
    for await (const r of c.catalog(reg.host)) repos.push(r);
    expect(repos).toEqual(["y", "z"]);
    expectNoSecret(elsewhere);
  });

  it("an upload Location on another host gets the blob but not the credentials", async () => {
    const bytes = Buffer.from("a blob pushed to a session on another host");
    const digest = sha256(bytes);
    const elsewhere = await server((r, res) => {
      if (r.method === "PUT") return res.writeHead(201, { "docker-content-digest": digest }).end();
      res.writeHead(404).end();
    });
    const reg = await basicRegistry((r, res) => {
      if (r.method === "HEAD") return res.writeHead(404).end();
      if (r.method === "POST")
        return res.writeHead(202, { location: `${elsewhere.url}/upload/1?_state=x` }).end();
      res.writeHead(404).end();
    });
    const c = client({ [reg.host]: { username: USER, password: SECRET } });
    const repo = { registry: reg.host, repository: "app" };
    await pushBlob(
      c,
      repo,
      { mediaType: "application/octet-stream", digest, size: bytes.length },
      bufferOpener(bytes),
    );
    expect(elsewhere.seen.some((r) => r.method === "PUT" && r.body === bytes.toString("latin1"))).toBe(true);
    expectNoSecret(elsewhere);
    // The registry itself did get its credentials (the test would pass vacuously otherwise).
    expect(reg.seen.some((r) => r.method === "POST" && r.headers.authorization === BASIC)).toBe(true);
  });
});
