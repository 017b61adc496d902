/**
 * Other registries' upload rules, emulated so that clients can be tested against them without an
 * account: `startRegistry({ emulate: "ecr" })`, `ferry serve --emulate ecr`. The upload and blob
 * handlers consult one {@link Emulation}; without one configured they get the plain OCI behaviour.
 *
 * What is emulated, and the evidence for each answer (see also ../shared/platform-notes.md):
 * - `ecr` (Amazon ECR)
 *   - every part but the last must be ≥ 5 MiB. ECR judges it when the upload completes
 *     (`CompleteLayerUpload` lists LayerPartTooSmallException); clients saw `400 BLOB_UPLOAD_INVALID` on
 *     the closing `PUT`, and CloudTrail named "All layer parts except the last part should be at least
 *     5MB" (dotnet/sdk-container-builds#424). The emulation answers that `400` with ECR's message.
 *   - `PATCH` answers `201`, not `202` (openai/tart#273, regclient/regclient#82).
 *   - the `Range` of every `PATCH` answer after the first stays at the first chunk's end
 *     (aws/containers-roadmap#2831: "stuck at the first chunk boundary").
 *   - a chunk that does not start at the session's offset (a client restarting at byte 0) gets
 *     `416 BLOB_UPLOAD_INVALID` "First byte of the layer part is 0 instead of N" (apple/containerization#790).
 * - `ghcr` (GitHub): a `PATCH` declaring a body over 4 MiB gets `416 REQUESTED_RANGE_NOT_SATISFIABLE`
 *   "the request body is too large and exceeds the maximum permissible limit of 4.00MiB"
 *   (oras-project/rust-oci-client#35, wasmCloud/wash#268). A streamed `PATCH` without Content-Length
 *   (Docker's push) and monolithic `PUT`s are not capped: Docker and containerd push big layers there.
 * - `gar` (Google Artifact Registry): no chunked uploads (its Docker API reference, quoted in
 *   dotnet/sdk-container-builds#287): every `PATCH` gets `405 UNSUPPORTED` (the status of the spec's
 *   code for an unsupported operation; GAR's exact answer is not on record); `POST ?digest=` and
 *   `PUT ?digest=` with the body work. Blob `GET`s answer `302` with a relative `Location`.
 * - `chunkMinLength: N` (any registry): the `POST` answer carries `OCI-Chunk-Min-Length: N`, and an
 *   upload with a part smaller than N that was not its last one is refused when it completes
 *   (`400 BLOB_UPLOAD_INVALID`), as ECR does with its own minimum.
 *
 * The part sizes of a session are kept in memory: an emulation judges uploads made while it runs.
 */
import type { IncomingMessage } from "node:http";
import { RegistryError } from "./errors.ts";
import { rangeHeader, type UploadSession } from "./storage/uploads.ts";

/** The registries `ferry serve` can emulate. */
export type EmulatedRegistry = "ecr" | "ghcr" | "gar";
export const EMULATED_REGISTRIES: readonly EmulatedRegistry[] = ["ecr", "ghcr", "gar"];

const MiB = 1024 * 1024;
/** ECR: "Layer parts must be at least 5 MiB in size" (LayerPartTooSmallException). */
const ECR_MIN_PART = 5 * MiB;
/** GHCR: "the maximum permissible limit of 4.00MiB" per PATCH. */
const GHCR_MAX_PATCH = 4 * MiB;
/**
 * A refused request body is read (and dropped) up to this much before the answer, so that the client,
 * still sending, gets the answer rather than a reset connection; beyond it the connection is closed.
 * Room for a whole layer that a client without the registry's rules sends in one PATCH.
 */
const DISCARD_MAX = 256 * MiB;

/** Where each session's parts stand. */
interface Parts {
  /** The session's offset after its first part (ECR's stale `Range`). */
  firstEnd?: number;
  /** The most recent part. */
  last?: { start: number; size: number };
  /** The first part found too small and followed by another: the upload will be refused. */
  tooSmall?: { start: number; size: number };
}

/** How the upload endpoints behave; the plain OCI behaviour when nothing is emulated. */
export class Emulation {
  readonly registry: EmulatedRegistry | undefined;
  /** Parts smaller than this may only be the last one (0: no minimum). */
  private readonly minPart: number;
  private readonly chunkMinLength: number;
  private readonly parts = new WeakMap<UploadSession, Parts>();

  constructor(registry?: EmulatedRegistry, chunkMinLength = 0) {
    this.registry = registry;
    this.chunkMinLength = chunkMinLength;
    this.minPart = Math.max(registry === "ecr" ? ECR_MIN_PART : 0, chunkMinLength);
  }

  /** Headers of the `202` that opens a session. */
  startHeaders(): Record<string, string> {
    return this.chunkMinLength > 0 ? { "OCI-Chunk-Min-Length": String(this.chunkMinLength) } : {};
  }

  /** Checks a `PATCH` before its body is read; a refusal reads the body first (see DISCARD_MAX). */
  async checkPatch(req: IncomingMessage): Promise<void> {
    if (this.registry === "gar") {
      await discard(req);
      throw new RegistryError("UNSUPPORTED", {
        message:
          "chunked uploads are not supported: upload the blob in one PUT (emulating Artifact Registry)",
        headers: { Allow: "GET, PUT, DELETE" },
      });
    }
    const declared = Number(req.headers["content-length"] ?? 0);
    if (this.registry === "ghcr" && declared > GHCR_MAX_PATCH) {
      await discard(req);
      throw new RegistryError("REQUESTED_RANGE_NOT_SATISFIABLE", {
        message: "the request body is too large and exceeds the maximum permissible limit of 4.00MiB",
      });
    }
  }

  /**
   * Appends one part (a `PATCH` body, or the body of the closing `PUT`) with `append`, under the
   * session's lock, and records its size.
   */
  async part(
    session: UploadSession,
    range: { start: number } | undefined,
    append: () => Promise<void>,
  ): Promise<void> {
    if (this.registry === "ecr" && range && range.start !== session.offset) {
      throw new RegistryError("BLOB_UPLOAD_INVALID", {
        status: 416,
        message: `First byte of the layer part is ${range.start} instead of ${session.offset}`,
      });
    }
    const start = session.offset;
    try {
      await append();
    } finally {
      // An interrupted body keeps what arrived: that is a part too.
      const size = session.offset - start;
      if (size > 0) {
        const p = this.parts.get(session) ?? {};
        if (p.last && p.last.size < this.minPart) p.tooSmall ??= p.last;
        p.last = { start, size };
        p.firstEnd ??= session.offset;
        this.parts.set(session, p);
      }
    }
  }

  /** Status and `Range` of the answer to an accepted `PATCH`. */
  patchAnswer(session: UploadSession): { status: number; range: string } {
    if (this.registry !== "ecr") return { status: 202, range: rangeHeader(session.offset) };
    const first = this.parts.get(session)?.firstEnd ?? session.offset;
    return { status: 201, range: rangeHeader(first) };
  }

  /** Checks a session before it is committed: a part below the minimum that was not the last. */
  checkComplete(session: UploadSession): void {
    const small = this.parts.get(session)?.tooSmall;
    if (!small) return;
    const ecr = this.registry === "ecr" && small.size < ECR_MIN_PART;
    throw new RegistryError("BLOB_UPLOAD_INVALID", {
      message: ecr
        ? "All layer parts except the last part should be at least 5MB"
        : `the chunk at ${small.start} has ${small.size} bytes, fewer than OCI-Chunk-Min-Length ${this.chunkMinLength}, and is not the last`,
    });
  }

  /**
   * Where a blob `GET` is sent instead (GAR: a `302` with a path-only, relative `Location`), or
   * undefined to serve it here. The redirected request carries `?download` and is served.
   */
  blobRedirect(
    method: string | undefined,
    name: string,
    digest: string,
    query: URLSearchParams,
  ): string | undefined {
    if (this.registry !== "gar" || method !== "GET" || query.has("download")) return undefined;
    return `/v2/${name}/blobs/${digest}?download`;
  }
}

/** Reads and drops a request body of up to DISCARD_MAX bytes; resolves when it ended or was cut short. */
function discard(req: IncomingMessage): Promise<void> {
  if (req.complete) return Promise.resolve();
  return new Promise((resolve) => {
    let total = 0;
    const done = () => {
      req.off("data", onData);
      req.off("end", done);
      req.off("error", done);
      req.off("close", done);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      // Too much to wait for: answer now; the router closes the connection (the body is unread).
      if (total > DISCARD_MAX) {
        req.pause();
        done();
      }
    };
    req.on("data", onData);
    req.on("end", done);
    req.on("error", done);
    req.on("close", done);
  });
}
