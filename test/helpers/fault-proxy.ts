/**
 * A fault-injecting HTTP proxy placed between ferry and a real registry. It forwards every request
 * unchanged (the Host header too, so registry Locations point back at the proxy) and lets a test script,
 * per request, one of these faults:
 *   drop-response        the registry does the work, the client never hears (connection closed)
 *   status               answer with a status of our own (5xx bursts, 429 + Retry-After, 307 redirects, 416)
 *   reset-response       forward headers and the first `after` body bytes (negative: all but the last
 *                        -after), then reset (a dropped download, or a truncated body with a correct
 *                        Content-Length)
 *   reset-request        take `after` bytes of the request body, then reset (a PATCH dying mid-chunk)
 *   corrupt              flip the byte at offset `at` of the resource (of the blob, also when the request
 *                        asked for a `Range`): bytes that do not match the digest
 *   stall                wait `ms` before forwarding (a registry slower than the client's timeout); a
 *                        client that gives up first ends the wait, and the request is counted in
 *                        `abandoned`, not forwarded
 *   hold                 wait until a promise settles before forwarding (a transfer paused at a known point)
 *   hang-response        forward headers and the first `after` body bytes, then send nothing more and keep
 *                        the connection open until the proxy closes (a download that stops; no timer)
 *   rewrite-response     change response headers (e.g. a stale `Range`, as ECR sends)
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
  | { kind: "reset-response"; after: number }
  | { kind: "reset-request"; after: number }
  | { kind: "corrupt"; at: number }
  | { kind: "stall"; ms: number }
  | { kind: "hold"; until: Promise<unknown> }
  | { kind: "hang-response"; after: number }
  | { kind: "rewrite-response"; headers: (h: http.IncomingHttpHeaders) => http.IncomingHttpHeaders }
  | undefined;

export interface FaultProxy {
  url: string;
  host: string;
  requests: ProxiedRequest[];
  /**
   * Response body bytes forwarded to the client, and request body bytes forwarded to the registry; `cut`:
   * the part of `down` that went out in responses a reset-response fault then broke off.
   */
  bytes: { down: number; up: number; cut: number };
  /** Faults actually injected. */
  injected: number;
  /** Stalled requests whose client closed the connection before the stall ended. */
  abandoned: number;
  close(): Promise<void>;
}

export async function startFaultProxy(
  target: string,
  fault: (r: ProxiedRequest) => Fault,
  opts: { record?: boolean } = {},
): Promise<FaultProxy> {
  const upstream = new URL(target);
  const counts = new Map<string, number>();
  const requests: ProxiedRequest[] = [];
  const bytes = { down: 0, up: 0, cut: 0 };
  const state = { injected: 0, abandoned: 0 };
  const server = http.createServer(async (req, res) => {
    const n = (counts.get(req.method!) ?? 0) + 1;
    counts.set(req.method!, n);
    const info: ProxiedRequest = { method: req.method!, url: req.url!, headers: req.headers, nth: n };
    if (opts.record !== false) requests.push(info);
    const f = fault(info);
    if (f) state.injected++;
    if (f?.kind === "status") {
      req.resume();
      res.writeHead(f.status, { "content-type": "application/json", ...f.headers });
      res.end(f.body ?? "");
      return;
    }
    if (f?.kind === "stall") {
      // an event, not a guess: the stall ends when the client closes the connection, or after `ms`
      const gone = await new Promise<boolean>((resolve) => {
        const onClose = () => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          res.off("close", onClose);
          resolve(false);
        }, f.ms);
        res.once("close", onClose);
      });
      if (gone) {
        state.abandoned++;
        return;
      }
    }
    if (f?.kind === "hold") await f.until.catch(() => {});
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
        const headers = f?.kind === "rewrite-response" ? f.headers({ ...up.headers }) : up.headers;
        res.writeHead(up.statusCode ?? 502, headers);
        let sent = 0;
        // `corrupt.at` is an offset in the resource: a ranged response starts at its Range start
        const base = Number(/bytes=(\d+)-/.exec(String(req.headers.range ?? ""))?.[1] ?? 0);
        up.on("data", (chunk: Buffer) => {
          let b = chunk;
          const at = f?.kind === "corrupt" ? f.at - base : -1;
          if (at >= sent && at < sent + b.length) {
            b = Buffer.from(b);
            b[at - sent] = (b[at - sent]! + 1) % 256;
          }
          // a negative `after` counts back from the end of the body (a truncated body)
          const after =
            f?.kind === "reset-response" && f.after < 0
              ? Number(up.headers["content-length"]) + f.after
              : f?.kind === "reset-response"
                ? f.after
                : 0;
          if (f?.kind === "hang-response" && sent + b.length > f.after) {
            const part = b.subarray(0, Math.max(0, f.after - sent));
            bytes.down += part.length;
            sent += part.length;
            res.write(part);
            up.destroy();
            return;
          }
          if (f?.kind === "reset-response" && sent + b.length > after) {
            const part = b.subarray(0, Math.max(0, after - sent));
            bytes.down += part.length;
            bytes.cut += sent + part.length;
            res.write(part, () => res.socket?.destroy());
            up.destroy();
            return;
          }
          sent += b.length;
          bytes.down += b.length;
          res.write(b);
        });
        up.on("end", () => res.end());
        up.on("error", () => res.destroy());
      },
    );
    out.on("error", () => res.destroy());
    req.on("error", () => out.destroy());
    let taken = 0;
    req.on("data", (chunk: Buffer) => {
      if (f?.kind === "reset-request" && taken + chunk.length > f.after) {
        out.destroy();
        req.socket.destroy();
        return;
      }
      taken += chunk.length;
      bytes.up += chunk.length;
      out.write(chunk);
    });
    req.on("end", () => out.end());
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    bytes,
    get injected() {
      return state.injected;
    },
    get abandoned() {
      return state.abandoned;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
