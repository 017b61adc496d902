/**
 * Small hostile servers for the trust tests: loopback HTTP(S) servers that record every request they
 * receive (method, URL, headers, body) and answer with a script, so a test can check that a host which
 * should never see a credential indeed saw none, in any form.
 */
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";

export interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Hostile {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `http(s)://127.0.0.1:PORT` */
  url: string;
  readonly seen: Recorded[];
  close(): Promise<void>;
}

export type Script = (req: Recorded, res: http.ServerResponse) => void;

/** Starts a recording server on loopback; `tls` makes it https. */
export async function hostileServer(script: Script, tls?: { key: Buffer; cert: Buffer }): Promise<Hostile> {
  const seen: Recorded[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const r = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("latin1"),
      };
      seen.push(r);
      script(r, res);
    });
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    url: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A secret in the forms it could travel in: plain, URL-encoded, base64 alone and as Basic `user:secret`. */
export function secretForms(secret: string, user?: string): string[] {
  return [
    secret,
    encodeURIComponent(secret),
    Buffer.from(secret).toString("base64"),
    ...(user ? [Buffer.from(`${user}:${secret}`).toString("base64")] : []),
  ];
}

/** Every place a request could carry a secret, as one string to search. */
export function everything(seen: readonly Recorded[]): string {
  return seen.map((r) => `${r.method} ${r.url}\n${JSON.stringify(r.headers)}\n${r.body}`).join("\n\n");
}
