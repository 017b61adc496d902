/**
 * The base of every error ferry throws: a stable `code` (tests and the CLI use it), a `name` that Step
 * Functions' Retry/Catch match, and whether trying again can help. Each module keeps its own catalogue of
 * subclasses (shared/registry/errors.ts, shared/archive/errors.ts, shared/staging, shared/workflow); this
 * module depends on nothing, so any of them can use it without depending on another.
 */

/** Base class: a ferry error with a stable code. `retryable` tells callers whether trying again can help. */
export class FerryError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  constructor(code: string, message: string, options?: ErrorOptions & { retryable?: boolean }) {
    super(message, options);
    this.name = "FerryError";
    this.code = code;
    this.retryable = options?.retryable ?? false;
  }
}
