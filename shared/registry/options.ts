/**
 * Client options, resolved once into a frozen object. Each default carries its reason.
 */
import type { Dispatcher } from "undici";
import type { CredentialProvider } from "./auth/credentials.ts";
import type { NetworkPolicy } from "./http/network.ts";
import { type ProxySettings, proxyRouter } from "./http/proxy.ts";
import { RateBudget, type RateBudgetOptions } from "./http/rate-budget.ts";
import type { RegistryTls, RegistryTlsLookup } from "./http/tls.ts";
import { apiHost, DOCKER_HUB, DOCKER_HUB_API, isLoopbackHost } from "./reference.ts";

/** One HTTP exchange, reported to `observer` when its response headers arrive (or it fails). */
export interface RequestEvent {
  /** What the request was for: `token`, `ping`, `manifest.get`, `blob.get`, `upload.patch`, ... */
  op: string;
  method: string;
  /** Redacted URL. */
  url: string;
  status: number;
  /** Time to response headers, ms. */
  ms: number;
  /** Set when the request failed before a status (connection error). */
  error?: string;
  /** The forward proxy the request went through (its origin, never its credentials). */
  proxy?: string;
  /** OCI error code from the body, when the status is an error and the body was read. */
  code?: string;
  /**
   * Set when this exchange failed: a connection error, a status that will be retried, or the final
   * unexpected status (reported once, with its OCI `code` if the body had one). An auth challenge that
   * is answered, or a redirect that is followed, is not a failure.
   */
  failed?: boolean;
  /** Retry attempt of this request, 0 for the first. */
  attempt: number;
}

export interface ClientOptions {
  /** Where credentials come from. Default: none (anonymous). */
  credentials?: CredentialProvider;
  /**
   * Plain HTTP: `true` for every registry, `false` for none (https even on loopback), a list of hosts
   * (loopback ones included), or a predicate. Default: loopback hosts without TLS settings
   * (`registryTls`) only, as Docker and skopeo treat localhost.
   */
  plainHttp?: boolean | readonly string[] | ((registry: string) => boolean);
  /** Verify TLS certificates. Default true. */
  tlsVerify?: boolean;
  /** Extra CA certificates (PEM), trusted for every https connection in addition to the system's. */
  ca?: string | Buffer;
  /**
   * TLS settings per registry (http/tls.ts): CAs to trust and a client certificate to present, on
   * connections to that registry's host and port. A registry that has them is spoken to over https,
   * loopback included. Default: none.
   */
  registryTls?: RegistryTlsLookup;
  /**
   * Forward proxies (http/proxy.ts). Default: none — the library connects directly unless told; the CLI
   * and the Lambda functions pass `proxyFromEnv(process.env)`.
   */
  proxy?: ProxySettings;
  /** Attempts after the first for temporary failures. Default 5: rides out a short 503 burst or a dropped connection. */
  retries?: number;
  /** First backoff delay, ms; doubles each attempt with full jitter. Default 250. */
  retryBaseMs?: number;
  /** Longest single wait, including a Retry-After the registry asks for. Default 30 s. */
  retryMaxMs?: number;
  /** Connections per registry origin. Default 32: more than the blob concurrency, so HEADs never queue behind uploads. */
  connections?: number;
  /** Time to response headers, ms. Default 60 s (registries can be slow to finalise big uploads). */
  headersTimeoutMs?: number;
  /** Longest silence while reading a body, ms. Default 60 s. */
  bodyTimeoutMs?: number;
  /**
   * Chunk size for chunked uploads, bytes, or a function of the registry. When given, blobs of every size
   * go up in `PATCH` chunks of this size (unless `monolithicMax` is given too), within the registry's
   * bounds (ECR: at least 5 MiB, GHCR: at most 4 MiB); monolithic-only registries stay monolithic.
   * Default: per-registry rules (registryRules).
   */
  chunkSize?: number | ((registry: string) => number);
  /** Blobs up to this size go up in one PUT. Default: per-registry rules, or 0 when `chunkSize` is given. */
  monolithicMax?: number;
  /**
   * Registry host (`host` or `host:port`) → whose upload rules to apply, for registries whose name does
   * not tell: ECR behind a custom domain or a pull-through proxy, a test registry emulating one. Unlisted
   * registries get the rules their host name implies (registryKindOf).
   */
  registryKinds?: Readonly<Record<string, RegistryKind>>;
  userAgent?: string;
  /** Called after every HTTP exchange (metrics, debugging). Must not throw. */
  observer?: (e: RequestEvent) => void;
  /** Replaces ferry's own undici Agent (tests, proxies). */
  dispatcher?: Dispatcher;
  /** Seconds of validity a bearer token must have left to be reused. Default 15. */
  tokenMarginSeconds?: number;
  /**
   * Which addresses connections may go to, checked at connect time on the resolved address (see
   * http/network.ts). Default: any — a CLI reaches what its user names. The Lambda functions set
   * `publicOnly`.
   */
  network?: NetworkPolicy;
  /**
   * The registries' rate limits, shared by every request of the client (http/rate-budget.ts): a budget
   * object to share between clients, options for a new one, or `false` to ignore rate-limit headers.
   * Default: a new budget, reserve 0 — it acts only on registries that send `ratelimit-remaining`.
   */
  rateBudget?: RateBudget | RateBudgetOptions | false;
}

export interface ResolvedOptions {
  readonly credentials?: CredentialProvider;
  readonly isPlainHttp: (registry: string) => boolean;
  readonly tlsVerify: boolean;
  readonly ca?: string | Buffer;
  readonly registryTls?: RegistryTlsLookup;
  /**
   * The TLS settings of a connection to `authority` (a URL's `host`: the port left out when it is 443),
   * looked up once: the registry of that name, `host:443` for a default port, `docker.io` for its API
   * host.
   */
  readonly tlsFor: (authority: string) => RegistryTls | undefined;
  readonly proxy?: ProxySettings;
  /** The proxy a request to `url` goes through, or undefined for a direct connection (http/proxy.ts). */
  readonly proxyFor: (url: URL) => URL | undefined;
  readonly retries: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly connections: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly uploadRules: (registry: string) => UploadRules;
  /** The validated `registryKinds` (keys lower-cased), for callers that build further clients alike. */
  readonly registryKinds?: Readonly<Record<string, RegistryKind>>;
  readonly userAgent: string;
  readonly observer?: (e: RequestEvent) => void;
  readonly dispatcher?: Dispatcher;
  readonly tokenMarginSeconds: number;
  readonly network?: NetworkPolicy;
  readonly rateBudget?: RateBudget;
}

/** How to upload to one registry. */
export interface UploadRules {
  /** Size of each PATCH. */
  chunkSize: number;
  /** Blobs up to this size use one monolithic PUT. */
  monolithicMax: number;
  /** Non-final chunks must be at least this big (raised by OCI-Chunk-Min-Length). */
  minChunk: number;
  /** No PATCH may be bigger than this. */
  maxChunk: number;
  /** The registry cannot do chunked uploads at all. */
  monolithicOnly: boolean;
}

/**
 * Whose upload rules a registry follows: `ecr` (Amazon ECR), `ghcr` (GitHub), `gar` (Google Artifact
 * Registry, gcr.io), `oci` (everyone else: the distribution spec as written).
 */
export type RegistryKind = "ecr" | "ghcr" | "gar" | "oci";
export const REGISTRY_KINDS: readonly RegistryKind[] = ["ecr", "ghcr", "gar", "oci"];

const MiB = 1024 * 1024;

/** The kind a registry's host name says it is. */
export function registryKindOf(registry: string): RegistryKind {
  const host = registry.replace(/:\d+$/, "").toLowerCase();
  if (host === "ghcr.io") return "ghcr";
  if (/\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/.test(host)) return "ecr";
  if (host.endsWith("-docker.pkg.dev") || host === "gcr.io" || host.endsWith(".gcr.io")) return "gar";
  return "oci";
}

/**
 * The upload rules of each kind of registry: the one place they are decided. Sources:
 * ../shared/platform-notes.md ("Registries").
 * - ECR: every non-final PATCH ≥ 5 MiB (LayerPartTooSmallException, dotnet/sdk-container-builds#424).
 * - GHCR: PATCH bodies over 4 MiB refused with 416 (oras-project/rust-oci-client#35).
 * - Google Artifact Registry / GCR: no chunked uploads (dotnet/sdk-container-builds#287).
 */
export function registryRules(kind: RegistryKind): UploadRules {
  switch (kind) {
    case "ghcr":
      return {
        chunkSize: 4 * MiB,
        monolithicMax: 4 * MiB,
        minChunk: 0,
        maxChunk: 4 * MiB,
        monolithicOnly: false,
      };
    case "ecr":
      return {
        chunkSize: 32 * MiB,
        monolithicMax: 32 * MiB,
        minChunk: 5 * MiB,
        maxChunk: Number.POSITIVE_INFINITY,
        monolithicOnly: false,
      };
    case "gar":
      return {
        chunkSize: Number.POSITIVE_INFINITY,
        monolithicMax: Number.POSITIVE_INFINITY,
        minChunk: 0,
        maxChunk: Number.POSITIVE_INFINITY,
        monolithicOnly: true,
      };
    case "oci":
      // Blobs up to 64 MiB go up in one PUT (two round trips); larger ones in one streamed PATCH (with
      // Content-Range) and a closing PUT, as Docker and skopeo do. A broken PATCH is resumed from the
      // offset the registry reports, so no chunking is needed for safety; --chunk-size forces chunks.
      return {
        chunkSize: Number.POSITIVE_INFINITY,
        monolithicMax: 64 * MiB,
        minChunk: 0,
        maxChunk: Number.POSITIVE_INFINITY,
        monolithicOnly: false,
      };
  }
}

/** `host` or `host:port` (an IPv6 address in brackets): a key of `registryKinds`. */
export function isRegistryHost(host: string): boolean {
  return /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/i.test(host);
}

/** Checks `registryKinds` once; returns it frozen, keys lower-cased. */
function checkRegistryKinds(
  kinds: Readonly<Record<string, RegistryKind>>,
): Readonly<Record<string, RegistryKind>> {
  const out: Record<string, RegistryKind> = {};
  for (const [host, kind] of Object.entries(kinds)) {
    if (!isRegistryHost(host))
      throw new TypeError(`option registryKinds: "${host}" is not a registry host (host or host:port)`);
    if (!REGISTRY_KINDS.includes(kind))
      throw new TypeError(
        `option registryKinds: "${String(kind)}" for ${host} is not one of ${REGISTRY_KINDS.join(", ")}`,
      );
    out[host.toLowerCase()] = kind;
  }
  return Object.freeze(out);
}

/** Memoized TLS lookup by connection authority (see ResolvedOptions.tlsFor). */
function tlsByAuthority(
  lookup: RegistryTlsLookup | undefined,
): (authority: string) => RegistryTls | undefined {
  if (!lookup) return () => undefined;
  const seen = new Map<string, RegistryTls | undefined>();
  return (authority) => {
    const a = authority.toLowerCase();
    if (seen.has(a)) return seen.get(a);
    const names = [a];
    if (!/:\d+$/.test(a.replace(/^\[[^\]]*\]/, ""))) names.push(`${a}:443`);
    if (a === DOCKER_HUB_API) names.push(DOCKER_HUB);
    const found = names.map((n) => lookup(n)).find((t) => t !== undefined);
    seen.set(a, found);
    return found;
  };
}

export function resolveOptions(opts: ClientOptions = {}): ResolvedOptions {
  const tlsFor = tlsByAuthority(opts.registryTls);
  // Loopback means plain http (as for Docker and skopeo) unless the registry has TLS settings of its own.
  const loopbackPlain = (r: string) => isLoopbackHost(r) && !tlsFor(apiHost(r));
  const plain = opts.plainHttp;
  let isPlainHttp: (registry: string) => boolean;
  if (plain === true) isPlainHttp = () => true;
  else if (plain === false) isPlainHttp = () => false;
  else if (typeof plain === "function") isPlainHttp = plain;
  else if (Array.isArray(plain)) {
    const set = new Set(plain);
    isPlainHttp = (r) => set.has(r) || loopbackPlain(r);
  } else isPlainHttp = loopbackPlain;

  for (const [k, v] of Object.entries({ retries: opts.retries, connections: opts.connections })) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0))
      throw new TypeError(`option ${k} must be a non-negative integer`);
  }
  const chunk = opts.chunkSize;
  if (typeof chunk === "number" && !(chunk > 0))
    throw new TypeError("option chunkSize must be a positive number of bytes");
  const mono = opts.monolithicMax;
  if (mono !== undefined && !(mono >= 0))
    throw new TypeError("option monolithicMax must be a number of bytes ≥ 0");
  const kinds = opts.registryKinds ? checkRegistryKinds(opts.registryKinds) : undefined;
  // Listed as given (host:port), else by host name alone (any port), else what the name implies.
  const kindOf = (registry: string): RegistryKind => {
    const r = registry.toLowerCase();
    return kinds?.[r] ?? kinds?.[r.replace(/:\d+$/, "")] ?? registryKindOf(r);
  };
  const uploadRules = (registry: string): UploadRules => {
    const base = registryRules(kindOf(registry));
    const size = typeof chunk === "function" ? chunk(registry) : chunk;
    if (size === undefined) return mono === undefined ? base : { ...base, monolithicMax: mono };
    return {
      ...base,
      // The registry's bounds win over the size asked for: ECR refuses smaller parts, GHCR bigger ones.
      chunkSize: Math.min(Math.max(size, base.minChunk), base.maxChunk),
      // A chunk size means chunks, whatever the blob's size: no silent monolithic PUT below 64 MiB.
      // Where chunks are impossible (monolithicOnly) uploads stay monolithic.
      monolithicMax: mono ?? (base.monolithicOnly ? base.monolithicMax : 0),
    };
  };
  return Object.freeze({
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    isPlainHttp,
    tlsVerify: opts.tlsVerify ?? true,
    ...(opts.ca ? { ca: opts.ca } : {}),
    ...(opts.registryTls ? { registryTls: opts.registryTls } : {}),
    tlsFor,
    ...(opts.proxy ? { proxy: opts.proxy } : {}),
    proxyFor: proxyRouter(opts.proxy),
    retries: opts.retries ?? 5,
    retryBaseMs: opts.retryBaseMs ?? 250,
    retryMaxMs: opts.retryMaxMs ?? 30_000,
    connections: opts.connections ?? 32,
    headersTimeoutMs: opts.headersTimeoutMs ?? 60_000,
    bodyTimeoutMs: opts.bodyTimeoutMs ?? 60_000,
    uploadRules,
    ...(kinds ? { registryKinds: kinds } : {}),
    userAgent: opts.userAgent ?? "ferry/0.1",
    ...(opts.observer ? { observer: opts.observer } : {}),
    ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    tokenMarginSeconds: opts.tokenMarginSeconds ?? 15,
    ...(opts.network ? { network: Object.freeze({ ...opts.network }) } : {}),
    ...(opts.rateBudget === false
      ? {}
      : {
          rateBudget:
            opts.rateBudget instanceof RateBudget ? opts.rateBudget : new RateBudget(opts.rateBudget),
        }),
  });
}

/**
 * The connection half of resolved options — credentials, plain http, TLS, proxy, registry kinds, network
 * policy — as ClientOptions, for callers that build further clients alike (ferry bench's workers).
 */
export function connectionOptions(o: ResolvedOptions): ClientOptions {
  return {
    ...(o.credentials ? { credentials: o.credentials } : {}),
    plainHttp: o.isPlainHttp,
    tlsVerify: o.tlsVerify,
    ...(o.ca ? { ca: o.ca } : {}),
    ...(o.registryTls ? { registryTls: o.registryTls } : {}),
    ...(o.proxy ? { proxy: o.proxy } : {}),
    ...(o.registryKinds ? { registryKinds: o.registryKinds } : {}),
    ...(o.network ? { network: o.network } : {}),
    // one budget for all the clients built alike: the registry's limit is one
    ...(o.rateBudget ? { rateBudget: o.rateBudget } : { rateBudget: false }),
  };
}
