/**
 * The errors a workflow step can end with. Step Functions' `Retry` and `Catch` match on the error's
 * `name` (Lambda reports it as `errorType`), so these names are a contract with the definitions
 * (copy-image.asl.json, bulk-migrate.asl.json): change them together.
 *
 *   RetryableTransferError  something temporary (5xx, 429, dropped connection, S3 throttling, a short
 *                           read): the definition retries the step with backoff and jitter, from the
 *                           state it was given (every step is idempotent for its input).
 *   DigestMismatchError     bytes that do not match their digest: never retried, nothing committed.
 *   RegistryAuthError       401/403 from a registry: credentials or permissions; not retried.
 *   RegistryError           any other refusal by a registry (404 NAME_UNKNOWN, 400 MANIFEST_INVALID...).
 *   IncompleteImageError    PutManifests found a referenced blob missing at the destination.
 *   ValidationError         a malformed event or request, or a source or destination the deployment's
 *                           allow-lists refuse (policy.ts): fix the input; not retried.
 *   AddressNotAllowedError  a connection to a loopback, link-local or private address from a deployed
 *                           function (shared/registry/http/network.ts): not retried; declare the registry
 *                           in privateRegistries if it is meant to be reached.
 *   StagingError            a staging store refusal (access denied, missing object) that is not temporary.
 *   RepositoryCreationError ECR refused to describe or create a missing destination repository
 *                           (shared/aws/ecr-repositories.ts): permissions, limits; throttling is
 *                           retryable and arrives as RetryableTransferError.
 */
import { FerryError, isNetworkError, RegistryError, SizeMismatchError } from "../registry/errors.ts";
import { StagingError } from "../staging/types.ts";
import { InvalidStateError } from "../transfer/staged.ts";

/** A step input or API request that does not match its schema. */
export class ValidationError extends FerryError {
  constructor(message: string) {
    super("VALIDATION", message);
    this.name = "ValidationError";
  }
}

/** Something temporary went wrong: run the step again from the same state. */
export class RetryableTransferError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("RETRYABLE", message, { ...options, retryable: true });
    this.name = "RetryableTransferError";
  }
}

/** A manifest would reference a blob the destination does not have (shared/transfer/manifests.ts). */
export { IncompleteImageError } from "../transfer/manifests.ts";

/** Error names the definitions retry (with backoff and full jitter). */
export const RETRYABLE_ERRORS = ["RetryableTransferError"] as const;

/** Lambda service failures worth retrying (not errors of ferry's code). */
export const LAMBDA_SERVICE_ERRORS = [
  "Lambda.ServiceException",
  "Lambda.AWSLambdaException",
  "Lambda.SdkClientException",
  "Lambda.TooManyRequestsException",
  "Lambda.ClientExecutionTimeoutException",
] as const;

/** Every name a step may throw (ferry's own and the underlying classes that keep theirs). */
export const STEP_ERROR_NAMES = [
  "RetryableTransferError",
  "DigestMismatchError",
  "SizeMismatchError",
  "RegistryAuthError",
  "RegistryError",
  "IncompleteImageError",
  "ValidationError",
  "AddressNotAllowedError",
  "StagingError",
  "RepositoryCreationError",
  "InvalidManifestError",
  "InvalidReferenceError",
  "CredentialsError",
  "FerryError",
] as const;

/**
 * Maps anything a step threw to an error whose `name` the definitions know. Temporary failures become
 * RetryableTransferError (message kept, original as `cause`); ferry's typed errors keep their names;
 * anything else becomes a FerryError (a bug or an unexpected condition: not retried).
 */
export function toWorkflowError(err: unknown): Error {
  if (err instanceof RetryableTransferError || err instanceof ValidationError) return err;
  if (err instanceof InvalidStateError) return new ValidationError(err.message);
  if (err instanceof StagingError) {
    return err.retryable ? new RetryableTransferError(err.message, { cause: err }) : err;
  }
  if (err instanceof FerryError) {
    if (err.retryable) return new RetryableTransferError(err.message, { cause: err });
    return err;
  }
  if (isNetworkError(err)) {
    return new RetryableTransferError(`connection failed: ${(err as Error).message}`, { cause: err });
  }
  if (err instanceof Error) {
    const wrapped = new FerryError("INTERNAL", err.message, { cause: err });
    return wrapped;
  }
  return new FerryError("INTERNAL", String(err));
}

/** Whether an error is one a step would report as retryable. */
export function isRetryable(err: unknown): boolean {
  return toWorkflowError(err).name === "RetryableTransferError";
}

export { FerryError, RegistryError, SizeMismatchError, StagingError };
