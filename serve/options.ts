/**
 * Options of `startRegistry`, their defaults (each with its reason), and their validation in one
 * place: {@link resolveOptions} returns a frozen object, or throws naming the bad option.
 */
import { availableParallelism } from "node:os";
import { EMULATED_REGISTRIES, type EmulatedRegistry } from "./emulate.ts";

/** Options of `startRegistry`. */
export interface RegistryOptions {
  /** Storage directory; created when missing. */
  root: string;
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Path of an htpasswd file with bcrypt hashes; when set, every `/v2/` request needs Basic auth. */
  htpasswd?: string;
  /** Receives one line per request (and internal errors). Off by default. */
  log?: (line: string) => void;
  /** Incomplete upload sessions idle for longer are deleted. Default one hour. */
  uploadMaxAgeMs?: number;
  /**
   * Upload sessions open at once (started and neither completed, cancelled nor purged); beyond it
   * `POST .../blobs/uploads/` answers 429 TOOMANYREQUESTS. Default 1000.
   */
  maxUploadSessions?: number;
  /** A connection silent this long (no byte received or sent mid-request) is closed. Default 60 s. */
  idleTimeoutMs?: number;
  /** The request line and headers must arrive within this time (else 408). Default 30 s. */
  headersTimeoutMs?: number;
  /**
   * Per client (IPv4 address, IPv6 /64): credential checks that may go unconfirmed within
   * `authWindowMs` before the client gets 429 without a check. Default 10.
   */
  authAttempts?: number;
  /** The window of `authAttempts`; the count decays evenly over it. Default 60 s. */
  authWindowMs?: number;
  /** Worker threads running bcrypt. Default 1, or 2 with 3+ cores. */
  authWorkers?: number;
  /** bcrypt checks allowed to wait for a worker; beyond it 503 with Retry-After. Default 32. */
  authQueue?: number;
  /** Verified credentials remembered (as keyed hashes) so clients do not pay bcrypt per request. Default 1000. */
  authCacheSize?: number;
  /** The clock (ms since the epoch) for upload ages and attempt decay; compared with file mtimes. Tests shift it. */
  now?: () => number;
  /**
   * Behave like this registry on uploads (and blob GETs), to test clients against its rules: `ecr`,
   * `ghcr` or `gar` (emulate.ts lists what each means, with sources). Default: none (the OCI spec).
   */
  emulate?: EmulatedRegistry;
  /**
   * Announce `OCI-Chunk-Min-Length: N` on new sessions and refuse an upload with a part smaller than N
   * that was not its last. Default: none.
   */
  chunkMinLength?: number;
}

/** {@link RegistryOptions} with every default applied. */
export interface ResolvedOptions {
  readonly root: string;
  readonly port: number;
  readonly host: string;
  readonly htpasswd: string | undefined;
  readonly log: ((line: string) => void) | undefined;
  readonly uploadMaxAgeMs: number;
  readonly maxUploadSessions: number;
  readonly idleTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly authAttempts: number;
  readonly authWindowMs: number;
  readonly authWorkers: number;
  readonly authQueue: number;
  readonly authCacheSize: number;
  readonly now: () => number;
  readonly emulate: EmulatedRegistry | undefined;
  /** 0: none. */
  readonly chunkMinLength: number;
}

/** An abandoned session costs a directory and some disk until the purge; an hour covers a client's retries. */
const DEFAULT_UPLOAD_MAX_AGE_MS = 60 * 60 * 1000;
/** Far above any client's parallelism (ferry copies 4–16 blobs at once) yet a bound on directories and memory. */
const DEFAULT_MAX_UPLOAD_SESSIONS = 1000;
/** Uploads may be long but not silent: a minute without a byte is a stalled client, not a slow link. */
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** A request line and headers are a few hundred bytes; 30 s is generous on a slow link and bounds slowloris. */
const DEFAULT_HEADERS_TIMEOUT_MS = 30_000;
/** Room for a few typos and a client's retries; a guesser gets 10 bcrypt checks a minute per address. */
const DEFAULT_AUTH_ATTEMPTS = 10;
const DEFAULT_AUTH_WINDOW_MS = 60_000;
/** bcrypt is rare once credentials are cached; keep a core for the event loop on small machines. */
const DEFAULT_AUTH_WORKERS = Math.max(1, Math.min(2, availableParallelism() - 1));
/** At ~50–100 ms per check (cost 10) 32 waiting checks are a few seconds of work: enough for a burst of logins. */
const DEFAULT_AUTH_QUEUE = 32;
/** One entry per distinct user and password; a registry rarely sees more. */
const DEFAULT_AUTH_CACHE_SIZE = 1000;

/** Node's timers hold at most 2^31 - 1 ms (longer ones fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Applies defaults and checks every number; throws an Error naming the bad option. */
export function resolveOptions(opts: RegistryOptions): ResolvedOptions {
  if (typeof opts.root !== "string" || opts.root === "") throw new Error("ferry serve: root is required");
  if (opts.emulate !== undefined && !EMULATED_REGISTRIES.includes(opts.emulate))
    throw new Error(
      `ferry serve: emulate must be one of ${EMULATED_REGISTRIES.join(", ")}, got ${String(opts.emulate)}`,
    );
  return Object.freeze({
    root: opts.root,
    port: integer("port", opts.port, 0, 0, 65535),
    host: opts.host ?? "127.0.0.1",
    htpasswd: opts.htpasswd,
    log: opts.log,
    uploadMaxAgeMs: integer("uploadMaxAgeMs", opts.uploadMaxAgeMs, DEFAULT_UPLOAD_MAX_AGE_MS, 1),
    maxUploadSessions: integer("maxUploadSessions", opts.maxUploadSessions, DEFAULT_MAX_UPLOAD_SESSIONS, 1),
    idleTimeoutMs: integer("idleTimeoutMs", opts.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS, 1, MAX_TIMER_MS),
    headersTimeoutMs: integer(
      "headersTimeoutMs",
      opts.headersTimeoutMs,
      DEFAULT_HEADERS_TIMEOUT_MS,
      1,
      MAX_TIMER_MS,
    ),
    authAttempts: integer("authAttempts", opts.authAttempts, DEFAULT_AUTH_ATTEMPTS, 1),
    authWindowMs: integer("authWindowMs", opts.authWindowMs, DEFAULT_AUTH_WINDOW_MS, 1),
    authWorkers: integer("authWorkers", opts.authWorkers, DEFAULT_AUTH_WORKERS, 1, 64),
    authQueue: integer("authQueue", opts.authQueue, DEFAULT_AUTH_QUEUE, 0),
    authCacheSize: integer("authCacheSize", opts.authCacheSize, DEFAULT_AUTH_CACHE_SIZE, 0),
    now: opts.now ?? Date.now,
    emulate: opts.emulate,
    chunkMinLength: integer("chunkMinLength", opts.chunkMinLength, 0, 1),
  });
}

function integer(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`ferry serve: ${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}
