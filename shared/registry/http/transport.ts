/**
 * The one place HTTP happens. Every request goes through `Transport.request`, which on every hop:
 * 1. decides whether credentials go with it: a registry's (Basic, or a Bearer token from auth/bearer.ts)
 *    only when the hop's origin is the registry's own API origin; credentials bound to another origin
 *    (a token endpoint's Basic header) only to that origin. A `Link` page, an upload `Location` or a
 *    redirect on another host gets none — credentials belong to an origin, not to a request;
 * 2. sends with undici on a shared keep-alive Agent (agent.ts: the route through a proxy, the network
 *    policy, the registry's TLS settings);
 * 3. on `401` at the registry's origin learns the challenge (or the missing scope), fetches a token and
 *    replays;
 * 4. follows redirects itself: never from https to http, never with a request body to another origin
 *    (303, and 301/302 after a POST, become a GET without body, as in the Fetch standard);
 * 5. retries temporary failures (5xx, 429, 408, dropped connections) with exponential backoff and full
 *    jitter, honouring `Retry-After` — only when the body can be replayed; twice at most, a refusal the
 *    request names as passing (`passingRefusal`);
 * 6. turns any unexpected status into a RegistryError (OCI error codes, redacted URL).
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { type Dispatcher, request as undiciRequest } from "undici";
import { now } from "../../clock.ts";
import { Authenticator } from "../auth/bearer.ts";
import { mergeScopes } from "../auth/challenge.ts";
import {
  describeError,
  FerryError,
  isNetworkError,
  isTemporaryStatus,
  type OciErrorEntry,
  printable,
  RegistryError,
  redactUrl,
  TransportError,
} from "../errors.ts";
import type { ResolvedOptions } from "../options.ts";
import { apiHost } from "../reference.ts";
import { registryAgent } from "./agent.ts";
import { addressNotAllowed } from "./network.ts";
import { describeProxy, ProxyError } from "./proxy.ts";
import { RateBudgetError } from "./rate-budget.ts";
import { TlsError, tlsFailure } from "./tls.ts";

/** A body that can be produced again for a retry, or a one-shot stream (no automatic retry). */
export type RequestBody = Uint8Array | string | (() => AsyncIterable<Uint8Array> | Readable);

export interface HttpRequest {
  /** Names the operation for metrics and errors: `manifest.get`, `blob.get`, `upload.patch`, … */
  op: string;
  method: "GET" | "HEAD" | "PUT" | "POST" | "PATCH" | "DELETE";
  /** Registry whose credentials apply (`host[:port]` as in references). */
  registry: string;
  url: URL;
  headers?: Record<string, string>;
  body?: RequestBody;
  /** The body is a stream that can only be sent once: never retried or replayed here. */
  oneShotBody?: AsyncIterable<Uint8Array> | Readable;
  /** Token scopes this request needs, e.g. `repository:app:pull`. */
  scopes?: readonly string[];
  /** Statuses that count as success; anything else throws. */
  expect: readonly number[];
  /** Prefix for error messages, e.g. `pull localhost:5000/app:1`. */
  context: string;
  /** Send no registry credentials (token endpoint requests, the first ping). */
  noAuth?: boolean;
  /**
   * Credentials bound to one origin (a token endpoint's Basic header): sent on hops to that origin only.
   * Never put credentials in `headers`: those go wherever the request goes.
   */
  credentials?: { origin: string; authorization: string };
  /**
   * A refusal (4xx) this operation knows to be a passing state of the registry, not an answer: asked
   * with the parsed error, and when true, sent again like a 5xx, at most twice (see `client.putManifest`).
   */
  passingRefusal?: (err: RegistryError) => boolean;
  /** Follow 3xx. Default true. */
  followRedirects?: boolean;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData["body"];
  /** The URL that answered (after redirects). */
  url: URL;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
const MAX_ERROR_BODY = 64 * 1024;
/** What Go (`Client sent an HTTP request to an HTTPS server.`) and nginx answer plain http on a TLS port. */
const HTTPS_PORT = /HTTP request (was sent )?to (an )?HTTPS/i;

export { describeError, isNetworkError } from "../errors.ts";
export { registryAgent } from "./agent.ts";

/** Headers that carry credentials: never taken from `headers` onto a hop to another origin. */
const SENSITIVE = new Set(["authorization", "cookie", "proxy-authorization"]);

/** A redirect ferry will not follow (a downgrade to plain HTTP, a body sent to another origin). */
export class RedirectRefusedError extends FerryError {
  constructor(message: string) {
    super("REDIRECT_REFUSED", message);
    this.name = "RedirectRefusedError";
  }
}

export class Transport {
  readonly options: ResolvedOptions;
  readonly dispatcher: Dispatcher;
  readonly auth: Authenticator;
  private readonly ownsDispatcher: boolean;
  private readonly pings = new Map<string, Promise<void>>();
  private readonly origins = new Map<string, string>();

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.ownsDispatcher = !options.dispatcher;
    this.dispatcher = options.dispatcher ?? registryAgent(options);
    this.auth = new Authenticator({
      ...(options.credentials ? { credentials: options.credentials } : {}),
      tokenMarginSeconds: options.tokenMarginSeconds,
      isPlainHttp: options.isPlainHttp,
      send: (req) => this.request(req),
    });
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  /** `http` or `https` base URL for a registry's API host. */
  baseUrl(registry: string, apiHost: string): string {
    return `${this.options.isPlainHttp(registry) ? "http" : "https"}://${apiHost}`;
  }

  /** The origin a registry's credentials belong to: its API host, over the scheme ferry speaks to it. */
  registryOrigin(registry: string): string {
    let o = this.origins.get(registry);
    if (o === undefined) {
      o = new URL(this.baseUrl(registry, apiHost(registry))).origin;
      this.origins.set(registry, o);
    }
    return o;
  }

  /** Learns a registry's auth challenge with `GET /v2/` once, so that one-shot bodies go out authorised. */
  ensureChallenge(registry: string, base: string): Promise<void> {
    let p = this.pings.get(registry);
    if (!p) {
      p = this.request({
        op: "ping",
        method: "GET",
        registry,
        url: new URL("/v2/", base),
        expect: [200, 401, 404],
        context: `ping ${registry}`,
        noAuth: true,
      }).then(async (res) => {
        await drain(res.body);
        const ch = Authenticator.challengeOf(res.headers["www-authenticate"]);
        if (res.status === 401 && ch) this.auth.learn(registry, ch);
      });
      p.catch(() => this.pings.delete(registry));
      this.pings.set(registry, p);
    }
    return p;
  }

  /** Sends a request with auth, redirects, retries and status checking. The caller consumes `body`. */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const o = this.options;
    const home = req.noAuth ? undefined : this.registryOrigin(req.registry);
    const url = req.url;
    const method: string = req.method;
    const scopes = req.scopes ?? [];
    // A manifest GET is what registries with a pull limit count (Docker Hub): it takes from the budget.
    const done =
      req.op === "manifest.get" && o.rateBudget
        ? await o.rateBudget.take(req.registry, req.context)
        : undefined;
    try {
      return await this.send(req, url, method, scopes, home);
    } finally {
      done?.();
    }
  }

  /** The hop loop of `request` (see the file header). */
  private async send(
    req: HttpRequest,
    url: URL,
    method: string,
    scopes: readonly string[],
    home: string | undefined,
  ): Promise<HttpResponse> {
    const o = this.options;
    const replayable = req.oneShotBody === undefined;
    let attempt = 0;
    let authReplays = 0;
    let redirects = 0;
    for (;;) {
      // Decided per hop: what may go to this URL's origin.
      const origin = url.origin;
      const headers: Record<string, string> = { "user-agent": o.userAgent };
      for (const [k, v] of Object.entries(req.headers ?? {})) {
        if (origin === req.url.origin || !SENSITIVE.has(k.toLowerCase())) headers[k] = v;
      }
      const atHome = origin === home;
      if (atHome) {
        const auth = await this.auth.authorization(req.registry, scopes);
        if (auth) headers.authorization = auth;
      } else if (req.credentials && origin === req.credentials.origin) {
        headers.authorization = req.credentials.authorization;
      }
      const body =
        req.oneShotBody ??
        (typeof req.body === "function" ? req.body() : method === req.method ? req.body : undefined);
      const started = now();
      let res: Dispatcher.ResponseData;
      try {
        res = await undiciRequest(url, {
          method: method as Dispatcher.HttpMethod,
          headers,
          body: body as Dispatcher.DispatchOptions["body"],
          dispatcher: this.dispatcher,
          // undici closes the connection after every HEAD (for servers that send a body with it);
          // registries answer HEAD correctly, and a presence check per blob should not cost a connect.
          ...(method === "HEAD" ? { reset: false } : {}),
          ...(req.signal ? { signal: req.signal } : {}),
        });
      } catch (err) {
        this.observe(req, method, url, 0, started, attempt, { error: describeError(err), failed: true });
        const blocked = addressNotAllowed(err);
        if (blocked) throw blocked; // the network policy refused: retrying cannot help
        const proxy = o.proxyFor(url);
        const via = proxy ? ` (through proxy ${describeProxy(proxy)})` : "";
        // TLS settings that cannot be used, or a handshake that failed: a certificate does not change
        // when asked again. One message naming the registry, the reason and where to fix it.
        if (err instanceof TlsError) throw new TlsError(`${req.context}: ${err.message}`, { cause: err });
        const handshake = tlsFailure(err);
        if (handshake) {
          const tls = o.tlsFor(url.host);
          throw new TlsError(
            `${req.context}: TLS with ${url.host}${via} failed: ${handshake.reason}` +
              `${tls ? ` (TLS settings from ${tls.source})` : ""}; ${handshake.hint}`,
            { cause: err },
          );
        }
        if (err instanceof ProxyError) {
          if (err.retryable && replayable && attempt < o.retries) {
            attempt++;
            await sleep(this.backoff(attempt));
            continue;
          }
          throw new ProxyError(`${req.context}: ${method} ${redactUrl(url)}: ${err.message}`, {
            cause: err,
            retryable: err.retryable,
            ...(err.status !== undefined ? { status: err.status } : {}),
          });
        }
        // A request body that failed on ferry's side (a source that broke, bytes that do not match
        // their digest) already says what went wrong, and where: pass it on as it is.
        if (err instanceof FerryError) throw err;
        // A refused connection, or a name the resolver says does not exist (ENOTFOUND, unlike the
        // temporary EAI_AGAIN), rarely heals within seconds: two more tries, not the full count.
        const code = (err as { code?: string }).code;
        const lasting = code === "ECONNREFUSED" || code === "ENOTFOUND";
        if (replayable && isNetworkError(err) && attempt < (lasting ? Math.min(2, o.retries) : o.retries)) {
          attempt++;
          await sleep(this.backoff(attempt));
          continue;
        }
        throw new TransportError(
          `${req.context}: ${method} ${redactUrl(url)}${via} failed: ${describeError(err)}`,
          { cause: err },
        );
      }
      const status = res.statusCode;
      if (atHome && o.rateBudget) {
        o.rateBudget.observe(req.registry, res.headers);
        // A 429 once the budget is gone is the limit itself, not a burst: retrying only fails into it.
        if (status === 429 && o.rateBudget.exhausted(req.registry, res.headers)) {
          await drain(res.body);
          this.observe(req, method, url, status, started, attempt, { failed: true });
          throw new RateBudgetError(
            req.registry,
            `${req.context}: ${req.registry} answered 429: its rate limit is used up; run the images not copied again once the window has moved on (--failures)`,
          );
        }
      }

      if (status === 401 && atHome && replayable && authReplays < 2) {
        const ch = Authenticator.challengeOf(res.headers["www-authenticate"]);
        if (ch) {
          await drain(res.body);
          const known = this.auth.challenge(req.registry);
          this.auth.learn(req.registry, ch);
          const extra = ch.params.scope ? ch.params.scope.split(" ") : [];
          const before = mergeScopes(scopes).join(" ");
          scopes = mergeScopes([...scopes, ...extra]);
          // A second 401 with the same challenge and scopes means the credentials are refused: stop.
          const changed = !known || known.scheme !== ch.scheme || before !== scopes.join(" ");
          if (authReplays > 0 && !changed && ch.params.error !== "invalid_token") {
            throw await this.toError(req, method, url, res, status, started, attempt, headers);
          }
          this.observe(req, method, url, status, started, attempt);
          if (headers.authorization) await this.auth.forget(req.registry, scopes, headers.authorization);
          authReplays++;
          continue;
        }
      }

      if (REDIRECTS.has(status) && req.followRedirects !== false && res.headers.location) {
        await drain(res.body);
        this.observe(req, method, url, status, started, attempt);
        if (++redirects > MAX_REDIRECTS) {
          throw new TransportError(`${req.context}: too many redirects from ${redactUrl(req.url)}`);
        }
        const next = new URL(String(res.headers.location), url);
        const where = `${req.context}: ${method} ${redactUrl(url)} redirected to ${redactUrl(next)}`;
        if (next.protocol !== "https:" && next.protocol !== "http:") {
          throw new RedirectRefusedError(`${where}: refused, not an http(s) URL`);
        }
        if (url.protocol === "https:" && next.protocol !== "https:") {
          throw new RedirectRefusedError(`${where}: refused, a redirect from https to plain http`);
        }
        // Fetch standard: 303 always, and 301/302 after a POST, continue as a GET without body.
        if (status === 303 || ((status === 301 || status === 302) && method === "POST")) method = "GET";
        const sendsBody = method === req.method && (req.body !== undefined || !replayable);
        if (sendsBody && next.origin !== origin) {
          throw new RedirectRefusedError(
            `${where}: refused, ferry does not send a request body to another origin`,
          );
        }
        if (sendsBody && !replayable) {
          throw new RedirectRefusedError(`${where}: refused, a streamed body cannot be sent twice`);
        }
        url = next;
        continue;
      }

      if (status === 401 && !replayable && headers.authorization && atHome) {
        await this.auth.forget(req.registry, scopes, headers.authorization);
      }
      if (status === 407 && o.proxyFor(url)) {
        // Only a proxy answers 407: to a plain-http request sent through it in absolute form.
        await drain(res.body);
        this.observe(req, method, url, status, started, attempt, { failed: true });
        throw new ProxyError(
          `${req.context}: ${method} ${redactUrl(url)}: proxy ${describeProxy(o.proxyFor(url)!)} answered 407 Proxy Authentication Required: it requires credentials (http://user:password@proxy), or refused them`,
          { status },
        );
      }
      if (!req.expect.includes(status)) {
        if (replayable && isTemporaryStatus(status) && attempt < o.retries) {
          const wait = retryAfterMs(res.headers["retry-after"], o.retryMaxMs) ?? this.backoff(attempt + 1);
          await drain(res.body);
          this.observe(req, method, url, status, started, attempt, { failed: true });
          attempt++;
          await sleep(wait);
          continue;
        }
        const err = await this.toError(req, method, url, res, status, started, attempt, headers);
        if (
          replayable &&
          err instanceof RegistryError &&
          req.passingRefusal?.(err) &&
          attempt < Math.min(2, o.retries)
        ) {
          attempt++;
          await sleep(this.backoff(attempt));
          continue;
        }
        throw err;
      }
      this.observe(req, method, url, status, started, attempt);
      return { status, headers: res.headers, body: res.body, url };
    }
  }

  private async toError(
    req: HttpRequest,
    method: string,
    url: URL,
    res: Dispatcher.ResponseData,
    status: number,
    started: number,
    attempt: number,
    sent: Record<string, string>,
  ): Promise<RegistryError | TlsError> {
    // Time to headers, taken before the error body is read (as for every other exchange).
    const ms = now() - started;
    const raw = await readBounded(res.body);
    if (status === 400 && url.protocol === "http:" && HTTPS_PORT.test(raw.toString("latin1"))) {
      this.observe(req, method, url, status, started, attempt, { failed: true, ms });
      return new TlsError(
        `${req.context}: ${url.host} speaks https, and ferry spoke plain http to it (as to every loopback registry without a certificate directory): ` +
          "give it one (certs.d/<host:port>/, --cert-dir, --src-cert-dir, --dest-cert-dir), or use --no-plain-http",
      );
    }
    const errors = parseOciErrors(raw);
    this.observe(req, method, url, status, started, attempt, {
      failed: true,
      ms,
      ...(errors[0] ? { code: errors[0].code } : {}),
    });
    // A refusal says whether the user's credentials went with it (an anonymous bearer token does not
    // count): "wrong password" and "no credentials given" need different advice (cli/auth-hint.ts).
    const refused = status === 401 || status === 403;
    const credentialsSent =
      refused && sent.authorization !== undefined
        ? url.origin !== req.credentials?.origin
          ? await this.auth.hasCredential(req.registry)
          : true
        : false;
    return new RegistryError({
      status,
      method,
      url: redactUrl(url),
      errors,
      context: req.context,
      registry: req.registry,
      ...(refused ? { credentialsSent } : {}),
    });
  }

  private observe(
    req: HttpRequest,
    method: string,
    url: URL,
    status: number,
    started: number,
    attempt: number,
    extra: { error?: string; code?: string; failed?: boolean; ms?: number } = {},
  ) {
    const obs = this.options.observer;
    if (!obs) return;
    const proxy = this.options.proxyFor(url);
    try {
      obs({
        ...(proxy ? { proxy: describeProxy(proxy) } : {}),
        op: req.op,
        method,
        url: redactUrl(url),
        status,
        ms: extra.ms ?? now() - started,
        attempt,
        ...(extra.error ? { error: extra.error } : {}),
        ...(extra.code ? { code: extra.code } : {}),
        ...(extra.failed ? { failed: true } : {}),
      });
    } catch {
      // an observer must never break a transfer
    }
  }

  private backoff(attempt: number): number {
    const cap = Math.min(this.options.retryMaxMs, this.options.retryBaseMs * 2 ** (attempt - 1));
    return cap / 2 + Math.random() * (cap / 2);
  }
}

/** Reads and discards a body so the connection returns to the pool. */
export async function drain(body: Dispatcher.ResponseData["body"]): Promise<void> {
  try {
    await body.dump({ limit: 256 * 1024 });
  } catch {
    // a broken body on a response we are discarding does not matter
  }
}

/** Drops a body we will not read, without an unhandled AbortError. */
export function discard(body: { on(e: string, f: () => void): unknown; destroy(): void }): void {
  body.on("error", () => {});
  body.destroy();
}

/** Reads at most 64 KiB of an error body and extracts OCI `errors[]`. */
export async function readErrorBody(body: Dispatcher.ResponseData["body"]): Promise<OciErrorEntry[]> {
  return parseOciErrors(await readBounded(body));
}

/** At most 64 KiB of a body (empty when it broke); the rest is discarded. */
async function readBounded(body: Dispatcher.ResponseData["body"]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      if (total + b.length > MAX_ERROR_BODY) {
        chunks.push(b.subarray(0, MAX_ERROR_BODY - total));
        total = MAX_ERROR_BODY;
        break;
      }
      chunks.push(b);
      total += b.length;
    }
  } catch {
    return Buffer.alloc(0);
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks);
}

/** OCI `errors[]` of an error body, their text made printable; [] when it has none. */
function parseOciErrors(raw: Buffer): OciErrorEntry[] {
  try {
    const json = JSON.parse(raw.toString("utf8")) as { errors?: unknown };
    if (!Array.isArray(json.errors)) return [];
    return (
      json.errors
        .filter(
          (e): e is Record<string, unknown> =>
            typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string",
        )
        // Registry text reaches terminals and logs: its control characters are escaped here, once.
        .map((e) => ({
          code: printable((e.code as string).slice(0, 100)),
          ...(typeof e.message === "string" ? { message: printable(e.message.slice(0, 300)) } : {}),
          ...(e.detail !== undefined ? { detail: e.detail } : {}),
        }))
    );
  } catch {
    return [];
  }
}

/** `Retry-After` as seconds or an HTTP date, capped; undefined when absent or unparseable. */
export function retryAfterMs(value: string | string[] | undefined, cap: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const secs = Number(v);
  let ms: number;
  if (Number.isFinite(secs)) ms = secs * 1000;
  else {
    const at = Date.parse(v);
    if (Number.isNaN(at)) return undefined;
    ms = at - Date.now();
  }
  return Math.min(Math.max(ms, 0), cap);
}
