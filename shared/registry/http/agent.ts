/**
 * registryAgent: the one undici Agent builder, so every connection ferry makes — registries, redirect
 * targets, token realms; the CLI, the local workflow, ferry bench, the Lambda functions — follows the
 * same rules. undici's Agent keeps one Pool per origin; the factory below gives each origin its own
 * connector, decided in this order:
 * 1. the route (proxy.ts): direct, a `CONNECT` tunnel through the proxy for https, or requests in
 *    absolute form to the proxy for plain http;
 * 2. the network policy (network.ts): a direct connection is checked on the address it resolves to;
 *    through a proxy, the target is checked before the proxy is asked (checkProxiedTarget), and the proxy
 *    itself — configuration, not input — may be on a private address;
 * 3. TLS (tls.ts): the registry's own settings for its host and port (its CAs on top of the system's, its
 *    client certificate), else the client's defaults (system CAs plus `ca`); `tlsVerify` for all.
 *
 * undici's ProxyAgent is not used: its tunnel connector cannot run the policy on the target before the
 * CONNECT, takes one TLS setting for every origin, and reports a refused CONNECT as a bare status.
 */
import type { Socket } from "node:net";
import { Agent, buildConnector, type Dispatcher, Pool } from "undici";
import { isTemporaryStatus, printable } from "../errors.ts";
import type { ResolvedOptions } from "../options.ts";
import { checkProxiedTarget, policyConnector } from "./network.ts";
import { describeProxy, ProxyError, proxyAuthorization } from "./proxy.ts";
import { TlsError, type TlsMaterial, tlsFailure } from "./tls.ts";

/** Pool settings a caller may tune (ferry bench) without building an Agent of its own. */
export interface AgentTuning {
  connections?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
}

type Connector = buildConnector.connector;
type ConnectOptions = buildConnector.BuildOptions;

/** The longest CONNECT answer head read from a proxy. */
const MAX_CONNECT_HEAD = 16 * 1024;

/**
 * The undici Agent for a client's options: keep-alive, timeouts, routes through proxies, per-registry
 * TLS and the network policy. Callers that tune the pool (ferry bench) pass `tuning` instead of building
 * an Agent of their own, so the rules always apply.
 */
export function registryAgent(o: ResolvedOptions, tuning: AgentTuning = {}): Agent {
  const headersTimeoutMs = tuning.headersTimeoutMs ?? o.headersTimeoutMs;
  // TLS settings by authority (undefined: the defaults), loaded once; a failed load is tried again.
  const settings = new Map<string, Promise<ConnectOptions>>();
  const tlsOptions = (authority: string | undefined): Promise<ConnectOptions> => {
    const key = authority ?? "";
    let p = settings.get(key);
    if (!p) {
      p = tlsSettings(o, authority);
      settings.set(key, p);
      p.catch(() => settings.delete(key));
    }
    return p;
  };
  // Connections to a proxy itself: the default TLS settings (for an https:// proxy), no policy check.
  const toProxy = deferred(async () => buildConnector(await tlsOptions(undefined)));

  return new Agent({
    connections: tuning.connections ?? o.connections,
    keepAliveTimeout: 30_000,
    headersTimeout: headersTimeoutMs,
    bodyTimeout: tuning.bodyTimeoutMs ?? o.bodyTimeoutMs,
    factory: (origin, options) => {
      const url = new URL(String(origin));
      const https = url.protocol === "https:";
      const proxy = o.proxyFor(url);
      const port = url.port || (https ? "443" : "80");
      if (!proxy) {
        const connect = deferred(async () => {
          const base = https ? keepTlsAlerts(buildConnector(await tlsOptions(url.host))) : buildConnector({});
          return policyConnector(o.network, base) ?? base;
        });
        return new Pool(url.origin, { ...options, connect });
      }
      if (!https) {
        // Plain http: requests go to the proxy in absolute form; the target is checked per connection.
        const connect: Connector = (opts, callback) => {
          checkProxiedTarget(o.network, url.hostname, port).then(
            () => toProxy(opts, callback),
            (err: Error) => callback(err, null),
          );
        };
        return new AbsoluteFormPool(proxy, url, { ...options, connect });
      }
      const auth = proxyAuthorization(proxy);
      const connect = deferred(async () => {
        const target = keepTlsAlerts(buildConnector(await tlsOptions(url.host)));
        return (opts, callback) => {
          const authority = `${url.hostname}:${port}`;
          checkProxiedTarget(o.network, url.hostname, port)
            .then(() => connectTo(toProxy, proxy))
            .then((socket) => tunnel(socket, proxy, authority, auth, headersTimeoutMs))
            .then(
              (socket) => target({ ...opts, httpSocket: socket }, callback),
              (err: Error) => callback(err, null),
            );
        };
      });
      return new Pool(url.origin, { ...options, connect });
    },
  });
}

/** A connector made on first use (its TLS settings may come from a file or a secret). */
function deferred(make: () => Promise<Connector>): Connector {
  let ready: Promise<Connector> | undefined;
  return (opts, callback) => {
    ready ??= make();
    ready.then(
      (c) => c(opts, callback),
      (err: Error) => {
        ready = undefined;
        callback(err, null);
      },
    );
  };
}

/**
 * Makes a TLS alert the error a request fails with. In TLS 1.3 the server checks the client certificate
 * after the client's handshake is done, so its alert ("bad certificate", "certificate required", "unknown
 * CA") arrives as an 'error' on a socket undici already uses, followed by the end of the stream — and
 * undici reports the end ("other side closed"), losing the reason. Destroying the socket on the alert
 * ends it there: the request then fails with the alert itself (tls.ts tlsFailure names it).
 */
function keepTlsAlerts(connector: Connector): Connector {
  return (opts, callback) =>
    connector(opts, (err, socket) => {
      if (socket) {
        socket.prependListener("error", (e: Error) => {
          if (tlsFailure(e)) socket.destroy();
        });
      }
      if (err) callback(err, null);
      else callback(null, socket!);
    });
}

let defaultCas: readonly string[] | undefined;
/** The CAs Node trusts by default (its bundle, NODE_EXTRA_CA_CERTS, the system store when enabled). */
function systemCas(tls: typeof import("node:tls")): readonly string[] {
  defaultCas ??= tls.getCACertificates?.("default") ?? tls.rootCertificates;
  return defaultCas;
}

/**
 * The TLS options of connections to `authority` (undefined: the client's defaults). `ca` in Node
 * replaces the trusted roots, so extra CAs are added to the system's here, as skopeo and Docker add
 * certs.d CAs to the system pool. One secure context per authority: the CA list is parsed once, not per
 * connection.
 */
async function tlsSettings(o: ResolvedOptions, authority: string | undefined): Promise<ConnectOptions> {
  const base: ConnectOptions = { rejectUnauthorized: o.tlsVerify };
  const reg = authority === undefined ? undefined : o.tlsFor(authority);
  if (!reg && !o.ca) return base;
  let m: TlsMaterial = {};
  if (reg) {
    try {
      m = await reg.load();
    } catch (e) {
      if (e instanceof TlsError) throw e;
      throw new TlsError(
        `cannot load the TLS settings of ${authority} from ${reg.source}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    if ((m.cert === undefined) !== (m.key === undefined))
      throw new TlsError(`${reg.source}: a client certificate and its key go together (one is missing)`);
  }
  // node:tls loads here, not at start-up: plain-HTTP registries and default TLS never need it from ferry
  // (undici loads it for its first https connection).
  const tls = await import("node:tls");
  try {
    const secureContext = tls.createSecureContext({
      ca: [...systemCas(tls), ...(o.ca ? [o.ca] : []), ...(m.ca ?? [])],
      ...(m.cert !== undefined ? { cert: m.cert, key: m.key } : {}),
    });
    return { ...base, secureContext };
  } catch (e) {
    // OpenSSL's message names what is wrong (no PEM, key mismatch), never the material itself.
    throw new TlsError(
      `the TLS settings ${reg ? `of ${authority} from ${reg.source}` : "from the CA file"} are unusable: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/** Opens a connection to the proxy itself. */
function connectTo(toProxy: Connector, proxy: URL): Promise<Socket> {
  const https = proxy.protocol === "https:";
  return new Promise((resolve, reject) =>
    toProxy(
      {
        hostname: proxy.hostname,
        host: proxy.host,
        protocol: proxy.protocol,
        port: proxy.port || (https ? "443" : "80"),
        ...(https && !/^[\d.]+$|^\[/.test(proxy.hostname) ? { servername: proxy.hostname } : {}),
      },
      (err, socket) => (err ? reject(err) : resolve(socket as Socket)),
    ),
  );
}

/**
 * Asks the proxy on `socket` for a tunnel to `authority` (`CONNECT host:port`) and resolves the socket
 * once the proxy answered 2xx; the registry's TLS handshake then runs inside the tunnel. Any other answer
 * is a ProxyError naming the proxy (redacted) and its status: 407 means its credentials were missing or
 * refused; 5xx is temporary.
 */
function tunnel(
  socket: Socket,
  proxy: URL,
  authority: string,
  authorization: string | undefined,
  timeoutMs: number,
): Promise<Socket> {
  const name = describeProxy(proxy);
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const finish = (err?: Error) => {
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("end", onEnd);
      socket.off("timeout", onTimeout);
      socket.setTimeout(0);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        socket.pause();
        resolve(socket);
      }
    };
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > MAX_CONNECT_HEAD)
          finish(new ProxyError(`proxy ${name} sent an oversized answer to CONNECT ${authority}`));
        return;
      }
      const status = /^HTTP\/1\.[01] (\d{3})(?: ([^\r\n]*))?/.exec(head.subarray(0, end).toString("latin1"));
      if (!status)
        return finish(new ProxyError(`proxy ${name} sent a malformed answer to CONNECT ${authority}`));
      const code = Number(status[1]);
      if (code < 200 || code > 299) {
        const why =
          code === 407 ? ": it requires credentials (http://user:password@proxy), or refused them" : "";
        return finish(
          new ProxyError(
            `proxy ${name} answered ${code} ${printable((status[2] ?? "").slice(0, 100))} to CONNECT ${authority}${why}`,
            { status: code, retryable: isTemporaryStatus(code) },
          ),
        );
      }
      // The client speaks first in TLS: bytes after the answer mean the proxy is not a tunnel.
      if (end + 4 < head.length)
        return finish(new ProxyError(`proxy ${name} sent data into the tunnel to ${authority} unasked`));
      finish();
    };
    const onError = (err: Error) => finish(err);
    const onEnd = () =>
      finish(
        Object.assign(new Error(`proxy ${name} closed the connection during CONNECT ${authority}`), {
          code: "ECONNRESET",
        }),
      );
    const onTimeout = () =>
      finish(
        Object.assign(new Error(`proxy ${name} did not answer CONNECT ${authority} in time`), {
          code: "ETIMEDOUT",
        }),
      );
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("end", onEnd);
    socket.on("timeout", onTimeout);
    socket.setTimeout(timeoutMs);
    socket.write(
      `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n` +
        (authorization ? `Proxy-Authorization: ${authorization}\r\n` : "") +
        "\r\n",
    );
  });
}

/**
 * A pool of connections to a proxy that carries plain-http requests for one target origin, written in
 * absolute form (`GET http://host:port/path HTTP/1.1`) with the target's `Host` and the proxy's
 * credentials — what curl and Go send to an HTTP proxy.
 */
class AbsoluteFormPool extends Pool {
  readonly #target: URL;
  readonly #authorization: string | undefined;

  constructor(proxy: URL, target: URL, options: Pool.Options) {
    super(proxy.origin, options);
    this.#target = target;
    this.#authorization = proxyAuthorization(proxy);
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const extra: Record<string, string> = { host: this.#target.host };
    if (this.#authorization) extra["proxy-authorization"] = this.#authorization;
    return super.dispatch(
      {
        ...opts,
        path: `${this.#target.origin}${opts.path || "/"}`,
        headers: withHeaders(opts.headers, extra),
      },
      handler,
    );
  }
}

/** `headers` (an object, a flat array, or absent) with `extra` set, replacing names it already has. */
function withHeaders(
  headers: Dispatcher.DispatchOptions["headers"],
  extra: Record<string, string>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const put = (k: string, v: unknown) => {
    if (v !== undefined && !(k.toLowerCase() in extra)) out[k] = v as string | string[];
  };
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) put(String(headers[i]), String(headers[i + 1]));
  } else if (headers && typeof (headers as Iterable<unknown>)[Symbol.iterator] === "function") {
    for (const [k, v] of headers as Iterable<[string, string]>) put(k, v);
  } else if (headers) {
    for (const [k, v] of Object.entries(headers)) put(k, v);
  }
  return { ...out, ...extra };
}
