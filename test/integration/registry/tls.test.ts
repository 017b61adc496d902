/**
 * The registry client's TLS per registry, against small Node https servers with certificates made by
 * openssl: what each kind of handshake failure is called (and that it is not retried), that a
 * registry's client certificate goes to its own host and port only — never to where it redirects — and
 * that its settings are loaded once per client.
 */
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient } from "../../../shared/registry/client.ts";
import { TlsError } from "../../../shared/registry/http/tls.ts";
import { parseReference } from "../../../shared/registry/reference.ts";
import { makeCa, type TestCa } from "../../helpers/pki.ts";

let ca: TestCa;
beforeAll(() => {
  ca = makeCa("ferry test CA");
});
afterAll(() => {
  ca.remove();
});

interface Server {
  host: string;
  /** Handshakes started (each a connection attempt), and the client certificates' CNs, per request. */
  handshakes: number;
  clientCerts: (string | undefined)[];
  close(): Promise<void>;
}

async function server(
  opts: https.ServerOptions,
  respond: (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => void = (
    _q,
    r,
  ) => r.writeHead(200, { "content-type": "application/json" }).end("{}"),
): Promise<Server> {
  const s: Server = { host: "", handshakes: 0, clientCerts: [], close: async () => {} };
  const srv = https.createServer(opts, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    s.clientCerts.push(peer && Object.keys(peer).length ? String(peer.subject?.CN) : undefined);
    respond(req, res);
  });
  srv.on("connection", () => s.handshakes++);
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  s.host = `127.0.0.1:${(srv.address() as AddressInfo).port}`;
  s.close = () =>
    new Promise<void>((r) => {
      srv.closeAllConnections();
      srv.close(() => r());
    });
  return s;
}

/** A client speaking https everywhere, with these TLS settings per registry (loads recorded). */
function tlsClient(
  settings: Record<string, { ca?: Buffer[]; cert?: Buffer; key?: Buffer }>,
  loads: string[] = [],
) {
  return new RegistryClient({
    plainHttp: false,
    retries: 3,
    retryBaseMs: 1,
    retryMaxMs: 2,
    registryTls: (r) =>
      settings[r]
        ? {
            source: `test settings of ${r}`,
            load: () => {
              loads.push(r);
              return settings[r]!;
            },
          }
        : undefined,
  });
}

describe("TLS handshake failures: one TlsError naming the registry and the reason, never retried", () => {
  it("an expired registry certificate", async () => {
    const cert = ca.server("expired", ["127.0.0.1"], { expired: true });
    const s = await server({ cert: cert.cert, key: cert.key });
    const c = tlsClient({ [s.host]: { ca: [ca.cert] } });
    try {
      const err = await c.ping(s.host).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TlsError);
      expect((err as Error).message).toContain(`TLS with ${s.host} failed: its certificate has expired`);
      expect((err as Error).message).toContain(`(TLS settings from test settings of ${s.host})`);
      expect(s.handshakes).toBe(1);
    } finally {
      await c.close();
      await s.close();
    }
  });

  it("a certificate for another name", async () => {
    const cert = ca.server("elsewhere", ["registry.elsewhere.test"]);
    const s = await server({ cert: cert.cert, key: cert.key });
    const c = tlsClient({ [s.host]: { ca: [ca.cert] } });
    try {
      const err = await c.ping(s.host).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/its certificate is not valid for this host name/);
      expect(s.handshakes).toBe(1);
    } finally {
      await c.close();
      await s.close();
    }
  });

  it("a client certificate required (TLS 1.3 certificate_required)", async () => {
    // (A client certificate the server does not trust: Node's server closes without an alert, so only
    // a server that sends one — Go's, as the distribution registry — lets ferry say why; cli/tls.test.ts.)
    const cert = ca.server("mtls", ["127.0.0.1"]);
    const s = await server({
      cert: cert.cert,
      key: cert.key,
      ca: ca.cert,
      requestCert: true,
      rejectUnauthorized: true,
    });
    const none = tlsClient({ [s.host]: { ca: [ca.cert] } });
    try {
      const err = await none.ping(s.host).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TlsError);
      expect((err as Error).message).toContain(
        `TLS with ${s.host} failed: it requires a client certificate (TLS settings from`,
      );
      expect(s.handshakes).toBe(1);
      expect(s.clientCerts).toEqual([]);
    } finally {
      await none.close();
      await s.close();
    }
  });

  it("unusable settings: a key that does not match its certificate", async () => {
    const cert = ca.server("any", ["127.0.0.1"]);
    const s = await server({ cert: cert.cert, key: cert.key });
    const a = ca.client("a");
    const b = ca.client("b");
    const c = tlsClient({ [s.host]: { ca: [ca.cert], cert: a.cert, key: b.key } });
    try {
      const err = await c.ping(s.host).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TlsError);
      expect((err as Error).message).toMatch(
        new RegExp(`TLS settings of ${s.host} from test settings of ${s.host} are unusable`),
      );
      expect(s.handshakes).toBe(0);
    } finally {
      await c.close();
      await s.close();
    }
  });
});

describe("a registry's client certificate belongs to its host and port", () => {
  it("is presented to the registry, not to the host its blob GET redirects to; settings load once", async () => {
    const cert = ca.server("both", ["127.0.0.1"]);
    const storage = await server(
      { cert: cert.cert, key: cert.key, ca: ca.cert, requestCert: true, rejectUnauthorized: false },
      (_q, r) => r.writeHead(200).end("hello"),
    );
    const registry = await server(
      { cert: cert.cert, key: cert.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        if (req.url?.includes("/blobs/"))
          return res.writeHead(307, { location: `https://${storage.host}/blob` }).end();
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      },
    );
    const me = ca.client("ferry-client");
    const loads: string[] = [];
    // The storage host is trusted through its own settings (its CA) but has no client certificate.
    const c = tlsClient(
      { [registry.host]: { ca: [ca.cert], cert: me.cert, key: me.key }, [storage.host]: { ca: [ca.cert] } },
      loads,
    );
    try {
      await c.ping(registry.host);
      const ref = parseReference(`${registry.host}/app:1`);
      const body = await c.readBlob(ref, {
        mediaType: "application/octet-stream",
        digest: "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        size: 5,
      });
      expect(body.toString()).toBe("hello");
      await c.ping(registry.host);
      expect(registry.clientCerts.length).toBeGreaterThanOrEqual(2);
      expect(registry.clientCerts.every((cn) => cn === "ferry-client")).toBe(true);
      expect(storage.clientCerts).toEqual([undefined]);
      expect(loads.sort()).toEqual([registry.host, storage.host].sort());
    } finally {
      await c.close();
      await Promise.all([registry.close(), storage.close()]);
    }
  });
});
