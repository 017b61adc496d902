/**
 * Registry authentication state for one client: the challenge each registry answered with, the bearer
 * tokens fetched for it (cached per registry and scope set, refreshed before they expire), and the
 * credentials its provider gave. The transport asks `authorization()` for a header only on hops whose
 * origin is the registry's own; this module never decides where a header goes, only what it is.
 *
 * Token protocol (distribution docs, spec/auth/token.md): `GET realm?service=&scope=` with the registry's
 * Basic credentials, or an OAuth2 `refresh_token` POST for identity tokens. The realm is where the
 * registry sends its own credentials, so it must be https unless the registry itself is plain HTTP, and
 * the Basic header is bound to the realm's origin: a token endpoint that redirects elsewhere does not
 * take the password along (the transport drops it on the hop).
 */
import { CredentialsError, RegistryError, TransportError } from "../errors.ts";
import type { HttpRequest, HttpResponse } from "../http/transport.ts";
import { basicAuthorization } from "./basic.ts";
import { type Challenge, mergeScopes, parseChallenges, pickChallenge } from "./challenge.ts";
import type { Credential, CredentialProvider } from "./credentials.ts";

interface CachedToken {
  value: string;
  expiresAt: number;
}

export interface AuthenticatorOptions {
  credentials?: CredentialProvider;
  /** Seconds of validity a cached token must have left to be reused. */
  tokenMarginSeconds: number;
  /** Whether a registry is spoken to over plain HTTP (then its realm may be plain HTTP too). */
  isPlainHttp: (registry: string) => boolean;
  /** Sends a token request (through the transport: redirects, retries, network policy). */
  send: (req: HttpRequest) => Promise<HttpResponse>;
}

export class Authenticator {
  private readonly o: AuthenticatorOptions;
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, Promise<CachedToken>>();
  private readonly credentials = new Map<string, Promise<Credential | undefined>>();

  constructor(options: AuthenticatorOptions) {
    this.o = options;
  }

  /** The challenge in a `401`'s `WWW-Authenticate`, if ferry can answer it. */
  static challengeOf(header: string | string[] | undefined): Challenge | undefined {
    return pickChallenge(parseChallenges(header));
  }

  /** The registry's current challenge, if one was learnt. */
  challenge(registry: string): Challenge | undefined {
    return this.challenges.get(registry);
  }

  learn(registry: string, challenge: Challenge): void {
    this.challenges.set(registry, challenge);
  }

  /** The Authorization header for a registry and scope set, once its challenge is known. */
  async authorization(registry: string, scopes: readonly string[]): Promise<string | undefined> {
    const ch = this.challenges.get(registry);
    if (!ch) return undefined;
    const cred = await this.credential(registry);
    if (ch.scheme === "basic") return cred ? basicAuthorization(cred) : undefined;
    if (ch.scheme !== "bearer") return undefined;
    if (cred?.registryToken) return `Bearer ${cred.registryToken}`;
    const key = tokenKey(registry, scopes);
    const margin = this.o.tokenMarginSeconds * 1000;
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

  /** True when the user gave credentials for `registry` (a password, an identity or registry token). */
  async hasCredential(registry: string): Promise<boolean> {
    return (await this.credential(registry).catch(() => undefined)) !== undefined;
  }

  /**
   * Forgets the cached token for (registry, scopes) when it is the one a request was refused with:
   * requests that met the same 401 together then share one new token instead of fetching one each.
   */
  async forget(registry: string, scopes: readonly string[], refused: string): Promise<void> {
    const key = tokenKey(registry, scopes);
    const entry = this.tokens.get(key);
    if (!entry) return;
    const t = await entry.catch(() => undefined);
    if (!t || `Bearer ${t.value}` === refused) {
      if (this.tokens.get(key) === entry) this.tokens.delete(key);
    }
  }

  private credential(registry: string): Promise<Credential | undefined> {
    let p = this.credentials.get(registry);
    if (!p) {
      p = this.o.credentials ? this.o.credentials.get(registry) : Promise.resolve(undefined);
      p.catch(() => this.credentials.delete(registry));
      this.credentials.set(registry, p);
    }
    return p;
  }

  private async fetchToken(
    registry: string,
    ch: Challenge,
    scopes: string[],
    cred?: Credential,
  ): Promise<CachedToken> {
    const realmUrl = this.realm(registry, ch);
    const context = `authenticate to ${registry}${cred?.username ? ` as ${cred.username}` : ""}`;
    const common = {
      op: "token",
      registry: realmUrl.host,
      expect: [200],
      context,
      noAuth: true,
    } as const;
    let res: HttpResponse;
    if (cred?.identityToken) {
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: cred.identityToken,
        client_id: "ferry",
      });
      if (ch.params.service) form.set("service", ch.params.service);
      if (scopes.length) form.set("scope", scopes.join(" "));
      res = await this.o
        .send({
          ...common,
          method: "POST",
          url: realmUrl,
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: form.toString(),
        })
        .catch((e: unknown) => {
          throw refusedFor(e, registry, true);
        });
    } else {
      const url = new URL(realmUrl);
      if (ch.params.service) url.searchParams.set("service", ch.params.service);
      for (const s of scopes) url.searchParams.append("scope", s);
      const basic = cred ? basicAuthorization(cred) : undefined;
      res = await this.o
        .send({
          ...common,
          method: "GET",
          url,
          ...(basic ? { credentials: { origin: url.origin, authorization: basic } } : {}),
        })
        .catch((e: unknown) => {
          throw refusedFor(e, registry, basic !== undefined);
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

  /** The challenge's realm as a URL ferry may send the registry's credentials to. */
  private realm(registry: string, ch: Challenge): URL {
    const realm = ch.params.realm;
    if (!realm) throw new TransportError(`${registry} asked for a bearer token but gave no realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new TransportError(`${registry} gave an invalid token realm`);
    }
    if (url.protocol !== "https:" && !(url.protocol === "http:" && this.o.isPlainHttp(registry))) {
      throw new CredentialsError(
        `${registry} sent its token realm as ${url.protocol}//${url.host}: refused, ferry sends credentials ` +
          "to a token endpoint only over https (plain http only for a registry that is itself plain HTTP)",
      );
    }
    return url;
  }
}

/**
 * A token endpoint's 401/403 is the registry's refusal: the error names the registry (not the realm's
 * host, so the CLI's advice names the registry's credential flags) and whether the user's credentials
 * went to the token endpoint.
 */
function refusedFor(e: unknown, registry: string, credentialsSent: boolean): unknown {
  if (!(e instanceof RegistryError) || (e.status !== 401 && e.status !== 403)) return e;
  return new RegistryError({
    status: e.status,
    method: e.method,
    url: e.url,
    errors: e.errors,
    ...(e.context !== undefined ? { context: e.context } : {}),
    registry,
    credentialsSent,
  });
}

function tokenKey(registry: string, scopes: readonly string[]): string {
  return `${registry} ${mergeScopes(scopes).join(" ")}`;
}
