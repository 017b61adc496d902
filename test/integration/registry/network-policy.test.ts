/**
 * The network policy the Lambda functions run with (`network: { publicOnly: true }`): every connection is
 * checked on the address it goes to, after resolution, so references, redirect targets and token realms
 * that lead to loopback, link-local or private addresses are refused — unless the host is declared private.
 * Every test server here is on loopback, which is exactly what the policy refuses.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AddressNotAllowedError } from "../../../shared/registry/http/network.ts";
import { parseReference } from "../../../shared/registry/reference.ts";
import { clientFor, registries } from "../../helpers/registry-client.ts";

const regs = registries();

/** A loopback server that counts its requests and answers with `respond`. */
async function server(respond: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const seen: string[] = [];
  const s = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    respond(req, res);
  });
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  return { port, seen, close: () => new Promise<void>((r) => s.close(() => r())) };
}

describe("publicOnly network policy", () => {
  let target: Awaited<ReturnType<typeof server>>;
  beforeAll(async () => {
    target = await server((_req, res) =>
      res.writeHead(200, { "content-type": "application/json" }).end("{}"),
    );
  });
  afterAll(() => target.close());

  it("refuses a loopback registry given as an IP literal, without retrying, and sends nothing", async () => {
    const c = clientFor(
      { ...regs.anon, host: `127.0.0.1:${target.port}` },
      { network: { publicOnly: true } },
    );
    try {
      const err = await c.ping(`127.0.0.1:${target.port}`).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AddressNotAllowedError);
      expect((err as Error).message).toMatch(/refusing to connect to 127\.0\.0\.1: a loopback address/);
      expect(target.seen).toEqual([]);
    } finally {
      await c.close();
    }
  });

  it("checks the resolved address of a name (localhost resolves to loopback)", async () => {
    const host = `localhost:${target.port}`;
    const c = clientFor({ ...regs.anon, host }, { network: { publicOnly: true }, plainHttp: true });
    try {
      const err = await c.ping(host).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AddressNotAllowedError);
      expect((err as Error).message).toMatch(
        /refusing to connect to localhost \((127\.0\.0\.1|::1)\): a loopback address/,
      );
      expect(target.seen).toEqual([]);
    } finally {
      await c.close();
    }
  });

  it("reaches a registry declared private, and still refuses where its redirects lead", async () => {
    // The declared registry redirects a blob GET to another loopback server, as a registry would to
    // object storage; that server is not declared, so the hop is refused at connect time.
    const redirector = await server((req, res) => {
      if (req.url === "/v2/") return res.writeHead(200).end();
      res.writeHead(307, { location: `http://localhost:${target.port}/steal` }).end();
    });
    const host = `127.0.0.1:${redirector.port}`;
    const c = clientFor({ ...regs.anon, host }, { network: { publicOnly: true, allowPrivateHosts: [host] } });
    try {
      await c.ping(host);
      const ref = parseReference(`${host}/app:1`);
      const err = await c.getManifest(ref).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AddressNotAllowedError);
      expect(redirector.seen).toEqual(["GET /v2/", "GET /v2/app/manifests/1"]);
      expect(target.seen).toEqual([]);
    } finally {
      await c.close();
      await redirector.close();
    }
  });

  it("refuses a token realm on a private address", async () => {
    const registry = await server((req, res) => {
      res
        .writeHead(401, {
          "www-authenticate": `Bearer realm="http://127.0.0.1:${target.port}/token",service="x"`,
        })
        .end();
      void req;
    });
    const host = `127.0.0.1:${registry.port}`;
    const c = clientFor({ ...regs.anon, host }, { network: { publicOnly: true, allowPrivateHosts: [host] } });
    try {
      const err = await c.getManifest(parseReference(`${host}/app:1`)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AddressNotAllowedError);
      expect(registry.seen.length).toBeGreaterThan(0);
      expect(target.seen).toEqual([]);
    } finally {
      await c.close();
      await registry.close();
    }
  });

  it("allows everything when no policy is set (the CLI)", async () => {
    const host = `127.0.0.1:${target.port}`;
    const c = clientFor({ ...regs.anon, host });
    try {
      await c.ping(host);
      expect(target.seen).toContain("GET /v2/");
    } finally {
      await c.close();
    }
  });
});
