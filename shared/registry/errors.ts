/**
 * One catalogue of ferry's errors. Every class has a stable `name` and `code`: Step Functions
 * Retry/Catch match on `name`, the CLI prints `message`, and tests assert on `code`.
 * Messages never contain credentials: URLs are redacted before they reach an error.
 */

import { FerryError } from "../errors.ts";

export { FerryError };

/** A malformed image reference, digest or repository name. */
export class InvalidReferenceError extends FerryError {
  constructor(message: string) {
    super("INVALID_REFERENCE", message);
    this.name = "InvalidReferenceError";
  }
}

/** A manifest that cannot be parsed, is too large, or has an unknown media type. */
export class InvalidManifestError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("INVALID_MANIFEST", message, options);
    this.name = "InvalidManifestError";
  }
}

/** Bytes whose digest (or size) differs from the descriptor's. Never committed anywhere. */
export class DigestMismatchError extends FerryError {
  readonly expected: string;
  readonly actual: string;
  /** The bytes came from the source of a copy (read again once before this is thrown for good). */
  readonly source: boolean;
  constructor(what: string, expected: string, actual: string, opts: { source?: boolean } = {}) {
    super("DIGEST_MISMATCH", `${what}: content digest ${actual} does not match expected ${expected}`);
    this.name = "DigestMismatchError";
    this.expected = expected;
    this.actual = actual;
    this.source = opts.source ?? false;
  }
}

export class SizeMismatchError extends FerryError {
  readonly expected: number;
  readonly actual: number;
  constructor(what: string, expected: number, actual: number) {
    super("SIZE_MISMATCH", `${what}: got ${actual} bytes, expected ${expected}`, {
      retryable: actual < expected,
    });
    this.name = "SizeMismatchError";
    this.expected = expected;
    this.actual = actual;
  }
}

/** One entry of an OCI error body: `{"errors":[{"code","message","detail"}]}`. */
export interface OciErrorEntry {
  code: string;
  message?: string;
  detail?: unknown;
}

/**
 * An HTTP answer the operation did not expect. Carries the status, the OCI error codes from the body,
 * and a redacted `METHOD url` so the message names registry and repository but never a secret.
 */
export class RegistryError extends FerryError {
  readonly status: number;
  readonly method: string;
  readonly url: string;
  readonly errors: OciErrorEntry[];
  /** What was being done (`pull manifest host/app:v1`), the message's prefix. */
  readonly context?: string;
  /** The registry (`host[:port]` as references name it) the request was for, when known. */
  readonly registry?: string;
  /**
   * For 401/403: whether the request carried credentials the user gave (a password, a token from
   * config.json), as opposed to none or an anonymous token — so a refusal can say which it was.
   */
  readonly credentialsSent?: boolean;
  constructor(init: {
    status: number;
    method: string;
    url: string;
    errors?: OciErrorEntry[];
    context?: string;
    registry?: string;
    credentialsSent?: boolean;
  }) {
    const errors = init.errors ?? [];
    const codes = errors.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join("; ");
    const what = init.context ? `${init.context}: ` : "";
    super(
      errors[0]?.code ?? `HTTP_${init.status}`,
      `${what}${init.method} ${init.url} answered ${init.status} ${statusText(init.status)}${codes ? ` (${codes})` : ""}`,
      { retryable: isTemporaryStatus(init.status) },
    );
    this.name = init.status === 401 || init.status === 403 ? "RegistryAuthError" : "RegistryError";
    this.status = init.status;
    this.method = init.method;
    this.url = init.url;
    this.errors = errors;
    if (init.context !== undefined) this.context = init.context;
    if (init.registry !== undefined) this.registry = init.registry;
    if (init.credentialsSent !== undefined) this.credentialsSent = init.credentialsSent;
  }

  /** True when one of the OCI error codes in the body equals `code`. */
  hasCode(code: string): boolean {
    return this.errors.some((e) => e.code === code);
  }
}

/** A connection that failed or dropped (reset, refused, timed out) after the retries ran out. */
export class TransportError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("TRANSPORT", message, { ...options, retryable: true });
    this.name = "TransportError";
  }
}

/** Credentials could not be found or used (bad config file, failing credential helper). */
export class CredentialsError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("CREDENTIALS", message, options);
    this.name = "CredentialsError";
  }
}

/** Statuses worth retrying: throttling, timeouts and server-side failures (not 501 Not Implemented). */
export function isTemporaryStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  413: "Payload Too Large",
  416: "Range Not Satisfiable",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

function statusText(status: number): string {
  return STATUS_TEXT[status] ?? "";
}

/** Removes userinfo and credential-looking query parameters from a URL before it appears in a message. */
export function redactUrl(url: string | URL): string {
  // Fast path (every exchange is reported to the observer with its URL): nothing to redact.
  if (typeof url !== "string" && !url.username && !url.password && !url.search) return url.href;
  let u: URL;
  try {
    u = new URL(url.toString());
  } catch {
    return "<invalid url>";
  }
  u.username = "";
  u.password = "";
  for (const key of [...u.searchParams.keys()]) {
    if (/token|signature|credential|secret|password|x-amz-|sig$|^_state$/i.test(key))
      u.searchParams.set(key, "REDACTED");
  }
  return u.toString();
}

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENOTFOUND",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
]);

/** True for failures of the connection itself, worth a retry. */
export function isNetworkError(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: string }).code;
    if (code && NETWORK_CODES.has(code)) return true;
    if (e instanceof TransportError) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Describes a low-level error without leaking request details. */
export function describeError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e?.code ?? e?.cause?.code;
  const msg = e?.message ?? String(err);
  return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

/**
 * Text from outside (a registry's error message, a tag, a label) made safe to print: every control
 * character — C0, DEL, C1 (U+0080–U+009F, where an 8-bit CSI hides) — and every bidirectional override
 * becomes a visible escape (`\x1b`, `\u202e`), so an ANSI or OSC sequence is shown, never executed by the
 * terminal. `keepNewlines` keeps `\n` for multi-line output; a one-line message escapes it too.
 */
export function printable(text: string, keepNewlines = false): string {
  return text.replace(UNPRINTABLE, (c) => {
    if (keepNewlines && c === "\n") return c;
    const n = c.charCodeAt(0);
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u${n.toString(16).padStart(4, "0")}`;
  });
}

// C0 controls, DEL, C1 controls, and the bidi embeddings/overrides/isolates (U+202A–U+202E, U+2066–U+2069).
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
