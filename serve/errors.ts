/**
 * OCI distribution error codes and the error type the handlers throw.
 * Body format: `{"errors":[{"code","message","detail"}]}` (distribution-spec, "Error Codes").
 */

/**
 * Error codes of the OCI distribution spec, plus a few from CNCF distribution used where the spec has none,
 * and GHCR's REQUESTED_RANGE_NOT_SATISFIABLE (emulate.ts).
 */
export type ErrorCode =
  | "BLOB_UNKNOWN"
  | "BLOB_UPLOAD_INVALID"
  | "BLOB_UPLOAD_UNKNOWN"
  | "DIGEST_INVALID"
  | "MANIFEST_BLOB_UNKNOWN"
  | "MANIFEST_INVALID"
  | "MANIFEST_UNKNOWN"
  | "NAME_INVALID"
  | "NAME_UNKNOWN"
  | "SIZE_INVALID"
  | "UNAUTHORIZED"
  | "DENIED"
  | "UNSUPPORTED"
  | "PAGINATION_NUMBER_INVALID"
  | "RANGE_INVALID"
  | "REQUESTED_RANGE_NOT_SATISFIABLE"
  | "NOT_FOUND"
  | "TOOMANYREQUESTS"
  | "UNAVAILABLE"
  | "UNKNOWN";

const DEFAULT_STATUS: Record<ErrorCode, number> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  PAGINATION_NUMBER_INVALID: 400,
  RANGE_INVALID: 416,
  REQUESTED_RANGE_NOT_SATISFIABLE: 416,
  NOT_FOUND: 404,
  TOOMANYREQUESTS: 429,
  UNAVAILABLE: 503,
  UNKNOWN: 500,
};

const MESSAGES: Record<ErrorCode, string> = {
  BLOB_UNKNOWN: "blob unknown to registry",
  BLOB_UPLOAD_INVALID: "blob upload invalid",
  BLOB_UPLOAD_UNKNOWN: "blob upload unknown to registry",
  DIGEST_INVALID: "provided digest did not match uploaded content",
  MANIFEST_BLOB_UNKNOWN: "manifest references a blob unknown to the repository",
  MANIFEST_INVALID: "manifest invalid",
  MANIFEST_UNKNOWN: "manifest unknown",
  NAME_INVALID: "invalid repository name",
  NAME_UNKNOWN: "repository name not known to registry",
  SIZE_INVALID: "provided length did not match content length",
  UNAUTHORIZED: "authentication required",
  DENIED: "requested access to the resource is denied",
  UNSUPPORTED: "the operation is unsupported",
  PAGINATION_NUMBER_INVALID: "invalid number of results requested",
  RANGE_INVALID: "invalid content range",
  REQUESTED_RANGE_NOT_SATISFIABLE: "requested range not satisfiable",
  NOT_FOUND: "not found",
  TOOMANYREQUESTS: "too many requests",
  UNAVAILABLE: "service unavailable",
  UNKNOWN: "unknown error",
};

export interface RegistryErrorOptions {
  /** HTTP status; defaults to the code's usual status. */
  status?: number;
  /** Free-form detail (a string or a small JSON value). */
  detail?: unknown;
  /** Extra response headers, e.g. `Range` on a 416. */
  headers?: Record<string, string>;
  /** Overrides the code's default message. */
  message?: string;
}

/** An error answered to the client as an OCI error body with a given status. */
export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, opts: RegistryErrorOptions = {}) {
    super(opts.message ?? MESSAGES[code]);
    this.name = "RegistryError";
    this.code = code;
    this.status = opts.status ?? DEFAULT_STATUS[code];
    this.detail = opts.detail;
    this.headers = opts.headers ?? {};
  }

  /** The JSON body for this error. */
  body(): string {
    const entry: Record<string, unknown> = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return JSON.stringify({ errors: [entry] });
  }
}
