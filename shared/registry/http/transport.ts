/**
 * The one place HTTP happens. Every request goes through `Transport.request`, which in order:
 * 1. adds `Authorization` for the registry (Basic, or a Bearer token cached per registry and scope set);
 * 2. sends with undici on a shared keep-alive Agent;
 * 3. on `401` learns the challenge (or the missing scope), fetches a token and replays once;
 * 4. follows redirects itself, dropping `Authorization` when the origin changes;
 * 5. retries temporary failures (5xx, 429, 408, dropped connections) with exponential backoff and full
 *    jitter, honouring `Retry-After` — only when the body can be replayed;
 * 6. turns any unexpected status into a RegistryError (OCI error codes, redacted URL).
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, type Dispatcher, request as undiciRequest } from "undici";
import { type Challenge, mergeScopes, parseChallenges, pickChallenge } from "../auth/challenge.ts";
import type { Credential } from "../auth/credentials.ts";
import {
  describeError,
  isNetworkError,
  isTemporaryStatus,
  type OciErrorEntry,
  RegistryError,
  redactUrl,
  TransportError,
} from "../errors.ts";
import type { ResolvedOptions } from "../options.ts";
import { addressNotAllowed, policyConnector } from "./network.ts";

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
  /** Skip authentication (token endpoint requests). */
  noAuth?: boolean;
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

export { describeError, isNetworkError } from "../errors.ts";

interface CachedToken {
  value: string;
  expiresAt: number;
}

export class Transport {
  readonly options: ResolvedOptions;
  readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, Promise<CachedToken>>();
  private readonly credentials = new Map<string, Promise<Credential | undefined>>();
  private readonly pings = new Map<string, Promise<void>>();

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.ownsDispatcher = !options.dispatcher;
    this.dispatcher = options.dispatcher ?? registryAgent(options);
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  /** `http` or `https` base URL for a registry's API host. */
  baseUrl(registry: string, apiHost: string): string {
    return `${this.options.isPlainHttp(registry) ? "http" : "https"}://${apiHost}`;
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
        const ch = pickChallenge(parseChallenges(res.headers["www-authenticate"]));
        if (res.status === 401 && ch) this.challenges.set(registry, ch);
      });
      p.catch(() => this.pings.delete(registry));
      this.pings.set(registry, p);
    }
    return p;
  }

  /** Sends a request with auth, redirects, retries and status checking. The caller consumes `body`. */
  async request(req: HttpRequest): Promise<HttpResponse> {
    const o = this.options;
    const replayable = req.oneShotBody === undefined;
    let url = req.url;
    let method: string = req.method;
    let sameOrigin = true;
    let attempt = 0;
    let authReplays = 0;
    let redirects = 0;
    let scopes = req.scopes ?? [];
    for (;;) {
      const headers: Record<string, string> = { "user-agent": o.userAgent, ...req.headers };
      if (sameOrigin && !req.noAuth) {
        const auth = await this.authorization(req.registry, scopes);
        if (auth) headers.authorization = auth;
      }
      const body =
        req.oneShotBody ??
        (typeof req.body === "function" ? req.body() : method === req.method ? req.body : undefined);
      const started = performance.now();
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
        const refused = (err as { code?: string }).code === "ECONNREFUSED";
        if (replayable && isNetworkError(err) && attempt < (refused ? Math.min(2, o.retries) : o.retries)) {
          attempt++;
          await sleep(this.backoff(attempt));
          continue;
        }
        throw new TransportError(
          `${req.context}: ${method} ${redactUrl(url)} failed: ${describeError(err)}`,
          { cause: err },
        );
      }
      const status = res.statusCode;

      if (status === 401 && sameOrigin && !req.noAuth && replayable && authReplays < 2) {
        const ch = pickChallenge(parseChallenges(res.headers["www-authenticate"]));
        if (ch) {
          await drain(res.body);
          const known = this.challenges.get(req.registry);
          this.challenges.set(req.registry, ch);
          const extra = ch.params.scope ? ch.params.scope.split(" ") : [];
          const before = mergeScopes(scopes).join(" ");
          scopes = mergeScopes([...scopes, ...extra]);
          // A second 401 with the same challenge and scopes means the credentials are refused: stop.
          const changed = !known || known.scheme !== ch.scheme || before !== scopes.join(" ");
          if (authReplays > 0 && !changed && ch.params.error !== "invalid_token") {
            throw await this.toError(req, method, url, res, status, started, attempt);
          }
          this.observe(req, method, url, status, started, attempt);
          // Drop the cached token only if it is the one this request was refused with: requests that
          // met the first 401 together then share one new token instead of fetching one each.
          if (headers.authorization) await this.forgetToken(req.registry, scopes, headers.authorization);
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
        // Never forward credentials to another host (object storage, CDN).
        if (next.origin !== req.url.origin) sameOrigin = false;
        if (status === 303) method = "GET";
        url = next;
        continue;
      }

      if (status === 401 && !replayable && headers.authorization) {
        await this.forgetToken(req.registry, scopes, headers.authorization);
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
        throw await this.toError(req, method, url, res, status, started, attempt);
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
  ): Promise<RegistryError> {
    // Time to headers, taken before the error body is read (as for every other exchange).
    const ms = performance.now() - started;
    const errors = await readErrorBody(res.body);
    this.observe(req, method, url, status, started, attempt, {
      failed: true,
      ms,
      ...(errors[0] ? { code: errors[0].code } : {}),
    });
    return new RegistryError({ status, method, url: redactUrl(url), errors, context: req.context });
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
    try {
      obs({
        op: req.op,
        method,
        url: redactUrl(url),
        status,
        ms: extra.ms ?? performance.now() - started,
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

  private credential(registry: string): Promise<Credential | undefined> {
    let p = this.credentials.get(registry);
    if (!p) {
      p = this.options.credentials ? this.options.credentials.get(registry) : Promise.resolve(undefined);
      p.catch(() => this.credentials.delete(registry));
      this.credentials.set(registry, p);
    }
    return p;
  }

  /** Forgets the cached token for (registry, scopes) when it is the one in `refused`. */
  private async forgetToken(registry: string, scopes: readonly string[], refused: string): Promise<void> {
    const key = this.tokenKey(registry, scopes);
    const entry = this.tokens.get(key);
    if (!entry) return;
    const t = await entry.catch(() => undefined);
    if (!t || `Bearer ${t.value}` === refused) {
      if (this.tokens.get(key) === entry) this.tokens.delete(key);
    }
  }

  private tokenKey(registry: string, scopes: readonly string[]): string {
    return `${registry} ${mergeScopes(scopes).join(" ")}`;
  }

  /** The Authorization header for a registry and scope set, once its challenge is known. */
  private async authorization(registry: string, scopes: readonly string[]): Promise<string | undefined> {
    const ch = this.challenges.get(registry);
    if (!ch) return undefined;
    const cred = await this.credential(registry);
    if (ch.scheme === "basic") {
      if (!cred?.username || cred.password === undefined) return undefined;
      return `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString("base64")}`;
    }
    if (ch.scheme !== "bearer") return undefined;
    if (cred?.registryToken) return `Bearer ${cred.registryToken}`;
    const key = this.tokenKey(registry, scopes);
    const margin = this.options.tokenMarginSeconds * 1000;
    let entry = this.tokens.get(key);
    if (entry) {
      const t = await entry.catch(() => undefined);
      if (!t || t.expiresAt - margin <= Date.now()) {
        this.tokens.delete(key);
        entry = undefined;
      }
    }
    if (!entry) {
      entry = this.fetchToken(registry, ch, mergeScopes(scopes), cred);
      entry.catch(() => this.tokens.delete(key));
      this.tokens.set(key, entry);
    }
    return `Bearer ${(await entry).value}`;
  }

  /** Docker token protocol: GET realm?service=&scope= (Basic credentials if any), or OAuth2 refresh for identity tokens. */
  private async fetchToken(
    registry: string,
    ch: Challenge,
    scopes: string[],
    cred?: Credential,
  ): Promise<CachedToken> {
    const realm = ch.params.realm;
    if (!realm) throw new TransportError(`${registry} asked for a bearer token but gave no realm`);
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw new TransportError(`${registry} gave an invalid token realm`);
    }
    const context = `authenticate to ${registry}${cred?.username ? ` as ${cred.username}` : ""}`;
    let res: HttpResponse;
    if (cred?.identityToken) {
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: cred.identityToken,
        client_id: "ferry",
      });
      if (ch.params.service) form.set("service", ch.params.service);
      if (scopes.length) form.set("scope", scopes.join(" "));
      res = await this.request({
        op: "token",
        method: "POST",
        registry: realmUrl.host,
        url: realmUrl,
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: form.toString(),
        expect: [200],
        context,
        noAuth: true,
      });
    } else {
      const url = new URL(realmUrl);
      if (ch.params.service) url.searchParams.set("service", ch.params.service);
      for (const s of scopes) url.searchParams.append("scope", s);
      const headers: Record<string, string> = {};
      if (cred?.username && cred.password !== undefined) {
        headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString("base64")}`;
      }
      res = await this.request({
        op: "token",
        method: "GET",
        registry: url.host,
        url,
        headers,
        expect: [200],
        context,
        noAuth: true,
      });
    }
    const text = await res.body.text();
    let json: { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
    try {
      json = JSON.parse(text);
    } catch {
      throw new TransportError(`${context}: token endpoint returned malformed JSON`);
    }
    const value = json.token ?? json.access_token;
    if (!value) throw new TransportError(`${context}: token endpoint returned no token`);
    // Token spec: expires_in defaults to 60 s when absent.
    const ttl = typeof json.expires_in === "number" && json.expires_in > 0 ? json.expires_in : 60;
    return { value, expiresAt: Date.now() + ttl * 1000 };
  }
}

/**
 * The undici Agent for a client's options: keep-alive, timeouts, TLS settings and the network policy
 * (a connector that checks each resolved address). Callers that tune the pool (ferry bench) pass
 * `tuning` instead of building an Agent of their own, so the policy always applies.
 */
export function registryAgent(
  o: ResolvedOptions,
  tuning: { connections?: number; headersTimeoutMs?: number; bodyTimeoutMs?: number } = {},
): Agent {
  const tls = { rejectUnauthorized: o.tlsVerify, ...(o.ca ? { ca: o.ca } : {}) };
  return new Agent({
    connections: tuning.connections ?? o.connections,
    keepAliveTimeout: 30_000,
    headersTimeout: tuning.headersTimeoutMs ?? o.headersTimeoutMs,
    bodyTimeout: tuning.bodyTimeoutMs ?? o.bodyTimeoutMs,
    connect: policyConnector(o.network, tls) ?? tls,
  });
}

/** Reads and discards a body so the connection returns to the pool. */
export async function drain(body: Dispatcher.ResponseData["body"]): Promise<void> {
  try {
    await body.dump({ limit: 256 * 1024 });
  } catch {
    // a broken body on a response we are discarding does not matter
  }
}

/** Reads at most 64 KiB of an error body and extracts OCI `errors[]`. */
export async function readErrorBody(body: Dispatcher.ResponseData["body"]): Promise<OciErrorEntry[]> {
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
    return [];
  } finally {
    body.destroy();
  }
  try {
    const json = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { errors?: unknown };
    if (!Array.isArray(json.errors)) return [];
    return json.errors
      .filter(
        (e): e is Record<string, unknown> =>
          typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string",
      )
      .map((e) => ({
        code: e.code as string,
        ...(typeof e.message === "string" ? { message: e.message.slice(0, 300) } : {}),
        ...(e.detail !== undefined ? { detail: e.detail } : {}),
      }));
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
