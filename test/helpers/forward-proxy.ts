/**
 * A small forward HTTP proxy on loopback, as the ones ferry meets in corporate networks and VPCs:
 * `CONNECT host:port` tunnels (for https) and absolute-form requests (`GET http://host/path`, for plain
 * http). It resolves names from its own table first (`hosts`: e.g. `registry.ferry.test` → 127.0.0.1),
 * so a registry can be reachable *only* through the proxy, and it can demand Basic credentials
 * (answering 407 with `Proxy-Authenticate`). Every request is recorded with the Proxy-Authorization it
 * carried.
 */
import http from "node:http";
import net, { type AddressInfo } from "node:net";

export interface ProxiedRequest {
  /** `CONNECT` or the method of an absolute-form request. */
  method: string;
  /** `host:port` for CONNECT, the absolute URL otherwise. */
  target: string;
  proxyAuthorization?: string;
  /** What the proxy answered itself (407, 502), or 0 when it passed the request on. */
  refused: number;
}

export interface ForwardProxy {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  requests: ProxiedRequest[];
  close(): Promise<void>;
}

export interface ForwardProxyOptions {
  /** Names only this proxy resolves, to addresses. */
  hosts?: Record<string, string>;
  /** Demand these credentials (Basic). */
  credentials?: { username: string; password: string };
}

export async function startForwardProxy(opts: ForwardProxyOptions = {}): Promise<ForwardProxy> {
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<net.Socket>();
  const expected = opts.credentials
    ? `Basic ${Buffer.from(`${opts.credentials.username}:${opts.credentials.password}`).toString("base64")}`
    : undefined;
  const resolve = (host: string) => opts.hosts?.[host.toLowerCase()] ?? host;
  /** Records the request; returns the status the proxy refuses it with, or 0. */
  const admit = (method: string, target: string, headers: http.IncomingHttpHeaders): number => {
    const auth = headers["proxy-authorization"];
    const refused = expected && auth !== expected ? 407 : 0;
    requests.push({ method, target, ...(auth ? { proxyAuthorization: auth } : {}), refused });
    return refused;
  };

  const server = http.createServer((req, res) => {
    let target: URL;
    try {
      target = new URL(req.url ?? "");
    } catch {
      res.writeHead(400).end("absolute-form requests only");
      return;
    }
    if (admit(req.method ?? "", target.href, req.headers)) {
      res.writeHead(407, { "proxy-authenticate": 'Basic realm="ferry-proxy"' }).end();
      return;
    }
    const headers = { ...req.headers };
    delete headers["proxy-authorization"];
    delete headers["proxy-connection"];
    const upstream = http.request(
      {
        host: resolve(target.hostname),
        port: target.port || 80,
        method: req.method,
        path: `${target.pathname}${target.search}`,
        headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(upstream);
  });

  server.on("connect", (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => client.destroy());
    const target = req.url ?? "";
    const refused = admit("CONNECT", target, req.headers);
    if (refused) {
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="ferry-proxy"\r\n\r\n',
      );
      return;
    }
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(target);
    if (!m) {
      client.end("HTTP/1.1 400 Bad Request\r\n\r\n");
      return;
    }
    const upstream = net.connect({ host: resolve(m[1]!.replace(/^\[|\]$/g, "")), port: Number(m[2]) });
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    upstream.once("connect", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on("error", () => {
      if (client.writable && !upstream.readyState.startsWith("open"))
        client.end("HTTP/1.1 502 Bad Gateway\r\n\r\n");
      client.destroy();
    });
  });
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
