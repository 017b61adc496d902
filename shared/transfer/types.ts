/**
 * The two ends of a transfer. A registry, an OCI layout directory and a docker-archive tar all
 * implement these, so the engine copies between any pair with one algorithm.
 */
import type { Readable } from "node:stream";
import type { Digest } from "../registry/digest.ts";
import type { Descriptor, RawManifest } from "../registry/manifest.ts";

/** Where images are read from. */
export interface ImageSource {
  /** Human-readable name for messages and reports, e.g. `localhost:5000/app:1.0` or `oci:/tmp/x:1.0`. */
  readonly name: string;
  /** The root manifest (index or image manifest) as exact bytes. */
  resolve(): Promise<RawManifest>;
  /** A child manifest of an index, by digest (verified against the digest). */
  getManifest(desc: Pick<Descriptor, "digest" | "mediaType">): Promise<RawManifest>;
  /**
   * A blob's bytes from `offset` (default 0). The stream must fail rather than end early when the
   * source breaks. Verification of the digest is the caller's job (it sees every byte).
   */
  openBlob(desc: Descriptor, offset?: number): Promise<Readable>;
  /**
   * The digest the source names now, cheaply (a registry's HEAD or its root's GET), for the up-to-date
   * check. Sources without it are always copied.
   */
  headDigest?(): Promise<Digest | undefined>;
  /** The digest the source is pinned to (`@sha256:…`), if any. */
  readonly pinnedDigest?: Digest;
  /** The tag the source names (`app:1.0`): the destination's tag when the caller gives none. */
  readonly tag?: string;
  /** Releases files or connections. */
  close?(): Promise<void>;
}

/** Where images are written to. */
export interface ImageSink {
  readonly name: string;
  /** False for sinks that hold a single image manifest (docker-archive): the engine picks one platform. */
  readonly acceptsIndex?: boolean;
  /** True when the blob is already present (nothing to copy). */
  hasBlob(desc: Descriptor): Promise<boolean>;
  /**
   * Stores a blob. `open(offset)` returns the bytes from `offset`; a sink that resumes after a fault
   * calls it again with the offset it has. The sink verifies size and digest before committing, and
   * never commits bytes that do not match `desc.digest` (a mismatch names `opts.source`). Returns what it
   * did and the bytes it sent.
   */
  putBlob(
    desc: Descriptor,
    open: (offset: number) => Promise<Readable>,
    opts?: BlobPutOptions,
  ): Promise<BlobPutResult>;
  /**
   * Optional: checks presence and stores in one go, overlapping the round trips (small blobs, where
   * latency dominates). Returns "skipped" when the blob was already there.
   */
  putBlobEager?(
    desc: Descriptor,
    open: (offset: number) => Promise<Readable>,
    opts?: BlobPutOptions,
  ): Promise<BlobPutResult>;
  /**
   * Sinks that share blobs through cross-repository mounts (repositories of one registry) name their
   * shared store here: the engine then moves a blob's bytes into one of them once per run, and `mountBlob`
   * gives it to the others.
   */
  readonly blobScope?: string;
  /** Gets a blob that `from` (a sink of the same `blobScope`) holds, without moving bytes; false if refused. */
  mountBlob?(desc: Descriptor, from: ImageSink): Promise<boolean>;
  /**
   * Stores a blob whose digest is only known at the end (a layer compressed on the fly).
   * Optional: sinks without it cannot take `--compress`.
   */
  putBlobStream?(
    mediaType: string,
    stream: Readable,
    progress?: (bytes: number) => void,
  ): Promise<Descriptor>;
  /** Stores a manifest after every blob it references is present. `tag` tags it; without it, by digest only. */
  putManifest(manifest: RawManifest, tag?: string): Promise<void>;
  /** The digest a tag points to now, if the sink can tell (for `--no-clobber` and up-to-date checks). */
  tagDigest?(tag: string): Promise<Digest | undefined>;
  /** Starts what can start before the plan is known (a registry's auth challenge). Must not throw. */
  prepare?(): void;
  /** Finishes the sink (writes an archive's trailer, an index.json). */
  close?(): Promise<void>;
  /**
   * Gives up after a failure: a file sink removes what it wrote, so a failed copy leaves no partial
   * output (a registry sink has nothing to take back: blobs are content-addressed, no manifest was put).
   */
  abort?(reason?: Error): Promise<void>;
}

export interface BlobPutOptions {
  /** Called with the number of bytes each time some are sent. */
  progress?: (bytes: number) => void;
  /** Where the bytes come from, named in a digest mismatch: `localhost:5000/app:v1`. */
  source?: string;
}

export interface BlobPutResult {
  action: "skipped" | "mounted" | "uploaded";
  bytesSent: number;
}

export type { Descriptor, Digest, RawManifest };
