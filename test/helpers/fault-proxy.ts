/**
 * A small HTTP proxy placed between ferry and a real registry, for fault injection. It forwards every
 * request unchanged (the Host header too, so registry Locations point back at the proxy) and lets a test
 * decide, per request, to answer with an error itself or to drop the connection after the registry answered
 * (the "response lost" case: the registry did the work, the client never heard).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface ProxiedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** 1-based count of requests seen so far with this method. */
  nth: number;
}

export type Fault =
  | { kind: "drop-response" }
  | { kind: "status"; status: number; headers?: Record<string, string>; body?: string }
  | undefined;

export interface FaultProxy {
  url: string;
  host: string;
  requests: ProxiedRequest[];
  close(): Promise<void>;
}

export async function startFaultProxy(
  target: string,
  fault: (r: ProxiedRequest) => Fault,
): Promise<FaultProxy> {
  const upstream = new URL(target);
  const counts = new Map<string, number>();
  const requests: ProxiedRequest[] = [];
  const server = http.createServer((req, res) => {
    const n = (counts.get(req.method!) ?? 0) + 1;
    counts.set(req.method!, n);
    const info: ProxiedRequest = { method: req.method!, url: req.url!, headers: req.headers, nth: n };
    requests.push(info);
    const f = fault(info);
    if (f?.kind === "status") {
      req.resume();
      res.writeHead(f.status, { "content-type": "application/json", ...f.headers });
      res.end(f.body ?? "");
      return;
    }
    const out = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        if (f?.kind === "drop-response") {
          up.resume();
          up.on("end", () => req.socket.destroy());
          return;
        }
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    out.on("error", () => res.destroy());
    req.on("error", () => out.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
