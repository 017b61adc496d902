/**
 * Errors of the archive module (OCI layouts, docker-archive tars, rootfs extraction). Like the rest of
 * the catalogue (shared/registry/errors.ts) every class has a stable `name` and `code`, and messages
 * name the file or tar entry at fault.
 */
import { FerryError } from "../registry/errors.ts";

/** A malformed, truncated or inconsistent archive, layout or layer (bad JSON, missing file, wrong size). */
export class ArchiveError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("INVALID_ARCHIVE", message, options);
    this.name = "ArchiveError";
  }
}

/**
 * A path in an archive or layer that would leave its root: a `..` component, a symlink or hardlink
 * leading out of the archive. Nothing is written for such an entry.
 */
export class UnsafePathError extends FerryError {
  /** The entry name as it appears in the archive. */
  readonly entry: string;
  constructor(message: string, entry: string) {
    super("UNSAFE_PATH", message);
    this.name = "UnsafePathError";
    this.entry = entry;
  }
}

/** The requested image (tag, RepoTag, index or digest) is not in the layout or archive. */
export class ImageNotFoundError extends FerryError {
  constructor(message: string) {
    super("IMAGE_NOT_FOUND", message);
    this.name = "ImageNotFoundError";
  }
}

/** A blob a caller asked for is not in the layout or archive. */
export class BlobNotFoundError extends FerryError {
  readonly digest: string;
  constructor(message: string, digest: string) {
    super("BLOB_NOT_FOUND", message);
    this.name = "BlobNotFoundError";
    this.digest = digest;
  }
}

/** Extraction went over its byte budget (`maxBytes`): a decompression bomb or a far larger image than allowed. */
export class ExtractLimitError extends FerryError {
  readonly limit: number;
  constructor(message: string, limit: number) {
    super("EXTRACT_LIMIT", message);
    this.name = "ExtractLimitError";
    this.limit = limit;
  }
}

/**
 * A rootfs destination that is not a new or empty directory: ferry unpacks into a fresh tree and puts it
 * in place only once every layer was verified, so it neither merges into nor replaces existing files.
 */
export class DestinationNotEmptyError extends FerryError {
  readonly path: string;
  constructor(message: string, path: string) {
    super("DESTINATION_NOT_EMPTY", message);
    this.name = "DestinationNotEmptyError";
    this.path = path;
  }
}

/** A manifest this destination cannot hold (an index into a docker-archive, a schema 1 manifest). */
export class UnsupportedManifestError extends FerryError {
  constructor(message: string) {
    super("UNSUPPORTED_MANIFEST", message);
    this.name = "UnsupportedManifestError";
  }
}
