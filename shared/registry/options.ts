/**
 * Client options, resolved once into a frozen object. Each default carries its reason.
 */
import type { Dispatcher } from "undici";
import type { CredentialProvider } from "./auth/credentials.ts";
import type { NetworkPolicy } from "./http/network.ts";
import { isLoopbackHost } from "./reference.ts";

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
   * (loopback ones included), or a predicate. Default: loopback hosts only (as Docker and skopeo treat
   * localhost).
   */
  plainHttp?: boolean | readonly string[] | ((registry: string) => boolean);
  /** Verify TLS certificates. Default true. */
  tlsVerify?: boolean;
  /** Extra CA certificates (PEM). */
  ca?: string | Buffer;
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
  /** Chunk size for chunked uploads, bytes, or a function of the registry. Default: per-registry rules (registryRules). */
  chunkSize?: number | ((registry: string) => number);
  /** Blobs up to this size go up in one PUT. Default: per-registry rules. */
  monolithicMax?: number;
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
}

export interface ResolvedOptions {
  readonly credentials?: CredentialProvider;
  readonly isPlainHttp: (registry: string) => boolean;
  readonly tlsVerify: boolean;
  readonly ca?: string | Buffer;
  readonly retries: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly connections: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly uploadRules: (registry: string) => UploadRules;
  readonly userAgent: string;
  readonly observer?: (e: RequestEvent) => void;
  readonly dispatcher?: Dispatcher;
  readonly tokenMarginSeconds: number;
  readonly network?: NetworkPolicy;
}

/** How to upload to one registry. */
export interface UploadRules {
  /** Size of each PATCH. */
  chunkSize: number;
  /** Blobs up to this size use one monolithic PUT. */
  monolithicMax: number;
  /** Non-final chunks must be at least this big (raised by OCI-Chunk-Min-Length). */
  minChunk: number;
  /** The registry cannot do chunked uploads at all. */
  monolithicOnly: boolean;
}

const MiB = 1024 * 1024;

/**
 * Registry quirks that decide upload shape. Sources: ../shared/platform-notes.md.
 * - ECR: every non-final PATCH ≥ 5 MiB (dotnet/sdk-container-builds#424).
 * - GHCR: PATCH bodies over 4 MiB refused (oras-project/rust-oci-client#35).
 * - Google Artifact Registry / GCR: no chunked uploads (dotnet/sdk-container-builds#287).
 */
export function registryRules(registry: string): UploadRules {
  const host = registry.replace(/:\d+$/, "");
  if (host === "ghcr.io")
    return { chunkSize: 4 * MiB, monolithicMax: 4 * MiB, minChunk: 0, monolithicOnly: false };
  if (/\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/.test(host)) {
    return { chunkSize: 32 * MiB, monolithicMax: 32 * MiB, minChunk: 5 * MiB, monolithicOnly: false };
  }
  if (host.endsWith("-docker.pkg.dev") || host === "gcr.io" || host.endsWith(".gcr.io")) {
    return {
      chunkSize: Number.POSITIVE_INFINITY,
      monolithicMax: Number.POSITIVE_INFINITY,
      minChunk: 0,
      monolithicOnly: true,
    };
  }
  // Elsewhere: blobs up to 64 MiB go up in one PUT (two round trips); larger ones in one streamed PATCH
  // (with Content-Range) and a closing PUT, as Docker and skopeo do. A broken PATCH is resumed from the
  // offset the registry reports, so no chunking is needed for safety; --chunk-size forces chunks.
  return { chunkSize: Number.POSITIVE_INFINITY, monolithicMax: 64 * MiB, minChunk: 0, monolithicOnly: false };
}

export function resolveOptions(opts: ClientOptions = {}): ResolvedOptions {
  const plain = opts.plainHttp;
  let isPlainHttp: (registry: string) => boolean;
  if (plain === true) isPlainHttp = () => true;
  else if (plain === false) isPlainHttp = () => false;
  else if (typeof plain === "function") isPlainHttp = plain;
  else if (Array.isArray(plain)) {
    const set = new Set(plain);
    isPlainHttp = (r) => set.has(r) || isLoopbackHost(r);
  } else isPlainHttp = isLoopbackHost;

  for (const [k, v] of Object.entries({ retries: opts.retries, connections: opts.connections })) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0))
      throw new TypeError(`option ${k} must be a non-negative integer`);
  }
  const chunk = opts.chunkSize;
  if (typeof chunk === "number" && !(chunk > 0))
    throw new TypeError("option chunkSize must be a positive number of bytes");
  const uploadRules = (registry: string): UploadRules => {
    const base = registryRules(registry);
    const size = typeof chunk === "function" ? chunk(registry) : chunk;
    return {
      ...base,
      ...(size !== undefined ? { chunkSize: Math.max(size, base.minChunk) } : {}),
      ...(opts.monolithicMax !== undefined ? { monolithicMax: opts.monolithicMax } : {}),
    };
  };
  return Object.freeze({
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    isPlainHttp,
    tlsVerify: opts.tlsVerify ?? true,
    ...(opts.ca ? { ca: opts.ca } : {}),
    retries: opts.retries ?? 5,
    retryBaseMs: opts.retryBaseMs ?? 250,
    retryMaxMs: opts.retryMaxMs ?? 30_000,
    connections: opts.connections ?? 32,
    headersTimeoutMs: opts.headersTimeoutMs ?? 60_000,
    bodyTimeoutMs: opts.bodyTimeoutMs ?? 60_000,
    uploadRules,
    userAgent: opts.userAgent ?? "ferry/0.1",
    ...(opts.observer ? { observer: opts.observer } : {}),
    ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    tokenMarginSeconds: opts.tokenMarginSeconds ?? 15,
    ...(opts.network ? { network: Object.freeze({ ...opts.network }) } : {}),
  });
}
