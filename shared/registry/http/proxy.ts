/**
 * Forward proxies, configured as curl and Go read them: `HTTPS_PROXY` for https requests, `HTTP_PROXY`
 * for plain http ones, `NO_PROXY` for the hosts that go direct. The lower-case forms are read too, and
 * win when both are set (curl's and undici's order; Go reads the upper-case form first — set one).
 *
 * - An https request goes through a `CONNECT host:port` tunnel (TLS is end to end: the proxy sees the
 *   host name, not the traffic); a plain http request is sent to the proxy in absolute form
 *   (`GET http://host/v2/ HTTP/1.1`). That is what curl, Go and Docker do.
 * - As in Go (golang.org/x/net/http/httpproxy), https requests do not fall back to `HTTP_PROXY`, and
 *   loopback hosts (`localhost`, `127.0.0.0/8`, `::1`) never go through a proxy.
 * - `NO_PROXY`: comma-separated; `*` matches every host; `example.com` matches it and its subdomains,
 *   `.example.com` and `*.example.com` its subdomains only; an IP address or a CIDR range matches
 *   addresses written in the URL (names are not resolved); `host:port` matches that port only.
 * - Credentials in the proxy URL (`http://user:pass@proxy:3128`) are sent as `Proxy-Authorization:
 *   Basic`, to the proxy only, and never printed: messages name the proxy by `redactUrl`.
 *
 * The connections themselves are made in agent.ts (registryAgent), with the network policy.
 */
import { BlockList, isIP } from "node:net";
import { FerryError, redactUrl } from "../errors.ts";
import { isLoopbackHost } from "../reference.ts";

/** Where requests go: a proxy for each scheme (either may be absent) and the hosts that bypass them. */
export interface ProxySettings {
  readonly httpsProxy?: URL;
  readonly httpProxy?: URL;
  /** The raw NO_PROXY list (see the module comment for its grammar). */
  readonly noProxy?: string;
}

/** A proxy ferry could not use: a CONNECT refused, a 407, a malformed setting. */
export class ProxyError extends FerryError {
  /** The proxy's status, when it answered. */
  readonly status: number | undefined;
  constructor(message: string, opts: { status?: number; retryable?: boolean } & ErrorOptions = {}) {
    super("PROXY", message, {
      ...(opts.cause ? { cause: opts.cause } : {}),
      retryable: opts.retryable ?? false,
    });
    this.name = "ProxyError";
    this.status = opts.status;
  }
}

type Env = Record<string, string | undefined>;

/** `lower ?? UPPER`, ignoring empty values. */
function envAny(env: Env, name: string): { name: string; value: string } | undefined {
  for (const n of [name.toLowerCase(), name]) {
    const v = env[n]?.trim();
    if (v) return { name: n, value: v };
  }
  return undefined;
}

/**
 * A proxy URL as curl and Go accept it: a scheme is optional (`proxy:3128` means `http://proxy:3128`);
 * `http` and `https` proxies only. Throws a ProxyError naming the variable — never its value, which may
 * hold a password.
 */
export function parseProxyUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
  } catch {
    throw new ProxyError(`${what} is not a proxy URL (expected http://host:port)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new ProxyError(
      `${what}: ${url.protocol.slice(0, -1)} proxies are not supported (http:// or https:// only)`,
    );
  if (!url.hostname) throw new ProxyError(`${what} names no proxy host`);
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash)
    throw new ProxyError(`${what} (${redactUrl(url)}): a proxy URL is scheme://[user:password@]host[:port]`);
  return url;
}

/**
 * The proxy settings of an environment (`process.env` for the CLI, the function's environment on
 * Lambda), or undefined when no proxy is set. Malformed values throw a ProxyError naming the variable.
 */
export function proxyFromEnv(env: Env): ProxySettings | undefined {
  const https = envAny(env, "HTTPS_PROXY");
  const http = envAny(env, "HTTP_PROXY");
  const no = envAny(env, "NO_PROXY");
  if (!https && !http) return undefined;
  return Object.freeze({
    ...(https ? { httpsProxy: parseProxyUrl(https.value, https.name) } : {}),
    ...(http ? { httpProxy: parseProxyUrl(http.value, http.name) } : {}),
    ...(no ? { noProxy: no.value } : {}),
  });
}

/** One NO_PROXY entry, compiled. */
type Rule =
  | { kind: "all" }
  | { kind: "name"; name: string; subdomainsOnly: boolean; port?: string }
  | { kind: "ip"; list: BlockList; port?: string };

/** Compiles a NO_PROXY list; entries that mean nothing (empty, malformed CIDR) are skipped, as Go does. */
export function compileNoProxy(list: string | undefined): readonly Rule[] {
  const rules: Rule[] = [];
  for (const raw of (list ?? "").split(",")) {
    let entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === "*") {
      rules.push({ kind: "all" });
      continue;
    }
    const cidr = /^([0-9a-f:.]+)\/(\d{1,3})$/.exec(entry.replace(/^\[|\](?=\/)/g, ""));
    if (cidr) {
      const family = isIP(cidr[1]!);
      const prefix = Number(cidr[2]);
      if (family === 0 || prefix > (family === 4 ? 32 : 128)) continue;
      const list = new BlockList();
      list.addSubnet(cidr[1]!, prefix, family === 4 ? "ipv4" : "ipv6");
      rules.push({ kind: "ip", list });
      continue;
    }
    let port: string | undefined;
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    if (bracketed) {
      entry = bracketed[1]!;
      port = bracketed[2];
    } else if (isIP(entry) !== 6) {
      const m = /^(.*):(\d+)$/.exec(entry);
      if (m) {
        entry = m[1]!;
        port = m[2];
      }
    }
    const family = isIP(entry);
    if (family) {
      const list = new BlockList();
      list.addAddress(entry, family === 4 ? "ipv4" : "ipv6");
      rules.push({ kind: "ip", list, ...(port ? { port } : {}) });
      continue;
    }
    const subdomainsOnly = entry.startsWith(".") || entry.startsWith("*.");
    const name = entry.replace(/^\*?\./, "");
    if (name) rules.push({ kind: "name", name, subdomainsOnly, ...(port ? { port } : {}) });
  }
  return rules;
}

/** True when NO_PROXY sends `url` direct. */
function bypassed(rules: readonly Rule[], host: string, port: string): boolean {
  const family = isIP(host);
  for (const r of rules) {
    if (r.kind === "all") return true;
    if (r.port !== undefined && r.port !== port) continue;
    if (r.kind === "ip") {
      if (family && r.list.check(host, family === 4 ? "ipv4" : "ipv6")) return true;
    } else if (!family) {
      if (host.endsWith(`.${r.name}`) || (!r.subdomainsOnly && host === r.name)) return true;
    }
  }
  return false;
}

/**
 * Compiled settings: `proxyFor(url)` is the proxy a request to `url` goes through, or undefined for a
 * direct connection. The one rule: the Agent (agent.ts) routes by it and the transport reports by it.
 */
export function proxyRouter(settings: ProxySettings | undefined): (url: URL) => URL | undefined {
  if (!settings) return () => undefined;
  const rules = compileNoProxy(settings.noProxy);
  return (url) => {
    const proxy =
      url.protocol === "https:"
        ? settings.httpsProxy
        : url.protocol === "http:"
          ? settings.httpProxy
          : undefined;
    if (!proxy) return undefined;
    const host = url.hostname
      .toLowerCase()
      .replace(/^\[|\]$/g, "")
      .replace(/\.$/, "");
    if (isLoopbackHost(host.includes(":") ? `[${host}]` : host)) return undefined;
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    return bypassed(rules, host, port) ? undefined : proxy;
  };
}

/** `Proxy-Authorization` for a proxy URL with credentials, else undefined. */
export function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username && !proxy.password) return undefined;
  const user = decodeURIComponent(proxy.username);
  const pass = decodeURIComponent(proxy.password);
  return `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
}

/** The proxy as messages and --debug name it: its origin, which never holds its credentials. */
export function describeProxy(proxy: URL): string {
  return proxy.origin;
}
