/**
 * A blob too big for one run, moved through staging in pieces that each take a byte budget and return
 * their state (plain JSON) — what a workflow step runs and records, to be continued by the next step:
 *
 *   stageBlob     source `GET` with `Range` from the recorded offset → staging multipart parts, hashing
 *                 as the bytes stream by; the digest is checked *before* the multipart upload is
 *                 completed, so a blob whose bytes do not match never becomes a staged object. A bad read
 *                 is staged once more from the start (a flaky proxy or CDN), then fails naming the source.
 *   uploadStaged  staging ranged reads → the destination, by the one upload loop (registry/uploads.ts
 *                 runUpload: chunks, recovery, verify before `PUT ?digest=`).
 *
 * Both are idempotent for their input: a retried stage re-reads the source from the same offset and
 * re-uploads the same part numbers (S3 keeps the newest); a retried upload first asks the registry where
 * its session stands. Memory: two parts (one read while the previous one uploads).
 */
import type { RegistryClient } from "../registry/client.ts";
import { blobHash, carriesDigest } from "../registry/digest.ts";
import { DigestMismatchError, FerryError, SizeMismatchError } from "../registry/errors.ts";
import { ExactReader } from "../registry/exact-reader.ts";
import type { Descriptor } from "../registry/manifest.ts";
import type { Repository } from "../registry/reference.ts";
import {
  pushBlob,
  runUpload,
  type SavedUpload,
  type UploadOutcome,
  type UploadSession,
} from "../registry/uploads.ts";
import { partSizeFor, type StagedPart, StagingError, type StagingStore } from "../staging/types.ts";

/**
 * How a blob that is not at the destination moves when every run has a byte budget:
 *   direct  small (≤ directMaxBytes), unknown size, or not sha256 (its hash cannot be carried between
 *           runs): source → destination in one run (pushBlob);
 *   mount   same registry, other repository, big: a cross-repository mount, else staged;
 *   staged  big: the stage loop (source → staging), then the upload loop (staging → destination).
 */
export function blobMode(
  desc: Descriptor,
  opts: { sameRegistry: boolean; directMaxBytes: number },
): "direct" | "mount" | "staged" {
  if (desc.size < 0 || desc.size <= opts.directMaxBytes || !carriesDigest(desc.digest)) return "direct";
  return opts.sameRegistry ? "mount" : "staged";
}

/** Where a blob is staged, and the records that let a later run continue. */
export interface StagingPlace {
  staging: StagingStore;
  /** The staged object's key. */
  key: string;
  /** Reads and writes the list of parts staged so far (between runs). */
  parts: {
    get(): Promise<StagedPart[] | undefined>;
    put(parts: StagedPart[]): Promise<void>;
    delete(): Promise<void>;
  };
  /**
   * Records what cleanup must remove should the transfer fail: the open multipart upload, or (no id)
   * the staged object alone.
   */
  recordOpen(uploadId: string | undefined): Promise<void>;
  /** The multipart upload recorded as open, if any (an attempt that failed before returning its state). */
  recordedUpload(): Promise<string | undefined>;
}

/** The stage loop's state between runs. */
export interface StageProgress {
  offset: number;
  done: boolean;
  key?: string;
  uploadId?: string;
  /** Running sha256 state of the bytes staged so far. */
  hash?: string;
  partBytes?: number;
  parts?: number;
  /** Reads from the start after bytes that did not match (at most one). */
  rereads?: number;
}

/** A state no run of this piece could have returned (a forged or corrupted workflow state). */
export class InvalidStateError extends FerryError {
  constructor(message: string) {
    super("INVALID_STATE", message);
    this.name = "InvalidStateError";
  }
}

/**
 * One run of the stage loop: at most `stepBytes` (rounded down to whole parts, at least one part) from
 * `state.offset`. Returns the new state; `done` once the staged object is complete and verified.
 */
export async function stageBlob(
  client: RegistryClient,
  source: { repo: Repository; name: string },
  desc: Descriptor,
  place: StagingPlace,
  state: StageProgress,
  opts: { stepBytes: number; partBytes?: number },
): Promise<StageProgress> {
  const { staging, key } = place;
  if (state.done) return state;
  const size = desc.size;
  if (size <= 0) throw new InvalidStateError(`blob ${desc.digest}: staging needs a known, non-zero size`);
  const partBytes = state.partBytes ?? partSizeFor(size, opts.partBytes, staging.minPartBytes);
  let st = state;

  // A previous attempt may have finished without its answer arriving: staged objects exist only once
  // their digest matched, so one that is there and whole is done.
  if ((await staging.size(key)) === size) return { offset: size, done: true, key, partBytes };
  if (!st.uploadId) {
    if (st.offset !== 0) throw new InvalidStateError("StageBlob: an offset without an upload id");
    // An attempt that failed before returning its state may have opened one: abandon it, start afresh.
    const left = await place.recordedUpload();
    if (left) await staging.abortMultipart(key, left);
    const uploadId = await staging.createMultipart(key);
    await place.recordOpen(uploadId);
    st = {
      offset: 0,
      done: false,
      key,
      uploadId,
      partBytes,
      parts: 0,
      ...(st.rereads ? { rereads: st.rereads } : {}),
    };
  }
  const uploadId = st.uploadId!;
  if (st.offset % partBytes !== 0 || st.offset > size)
    throw new InvalidStateError(
      `StageBlob: offset ${st.offset} is not a part boundary of ${partBytes} bytes`,
    );

  const budget = Math.max(partBytes, Math.floor(opts.stepBytes / partBytes) * partBytes);
  const from = st.offset;
  const end = Math.min(size, from + budget);
  const hash = blobHash(desc.digest, { from, to: end, size, state: st.hash });
  const firstPart = from / partBytes + 1;
  const prior = from > 0 ? ((await place.parts.get()) ?? []).filter((p) => p.partNumber < firstPart) : [];
  if (prior.length !== firstPart - 1)
    throw new StagingError(
      `staged parts of ${desc.digest} are missing (${prior.length} recorded, ${firstPart - 1} expected)`,
    );

  // a bounded Range: the registry sends this run's bytes only
  const reader = new ExactReader(await client.openBlob(source.repo, desc, from, end - from));
  const parts: StagedPart[] = [];
  let pending: Promise<StagedPart> | undefined;
  try {
    for (let pos = from; pos < end; ) {
      const len = Math.min(partBytes, end - pos);
      const buf = await reader.read(len);
      if (buf.length !== len)
        throw new SizeMismatchError(`blob ${desc.digest} from ${source.name}`, size, pos + buf.length);
      hash.update(buf);
      if (pending) parts.push(await pending);
      pending = staging.uploadPart(key, uploadId, pos / partBytes + 1, buf);
      // It may fail while the next part is read: marked handled now, its error surfaces at the await.
      pending.catch(() => {});
      pos += len;
    }
    if (pending) {
      const last = pending;
      pending = undefined;
      parts.push(await last);
    }
  } finally {
    reader.destroy();
    // A read that failed while a part was uploading: let the upload settle, its error is secondary.
    if (pending) await pending.catch(() => {});
  }
  const all = [...prior, ...parts];

  if (end < size) {
    await place.parts.put(all);
    return {
      ...st,
      offset: end,
      done: false,
      key,
      uploadId,
      partBytes,
      hash: hash.exportState(),
      parts: all.length,
    };
  }

  const actual = hash.digest();
  if (actual !== desc.digest) {
    // Nothing is committed: the multipart upload is abandoned, its parts and records removed.
    await staging.abortMultipart(key, uploadId);
    await place.parts.delete();
    await place.recordOpen(undefined);
    // One bad response should not fail a migration: stage it once more from the start.
    if (!st.rereads) return { offset: 0, done: false, partBytes, rereads: 1 };
    throw new DigestMismatchError(
      `blob ${desc.digest} read from ${source.name} (twice)`,
      desc.digest,
      actual,
      {
        source: true,
      },
    );
  }
  await staging.completeMultipart(key, uploadId, all);
  const staged = await staging.size(key);
  if (staged !== size)
    throw new StagingError(`staged ${key} is ${staged ?? "missing"} bytes, expected ${size}`, {
      retryable: true,
    });
  await place.parts.delete();
  await place.recordOpen(undefined);
  return { offset: size, done: true, key, partBytes, parts: all.length };
}

/**
 * One run of the upload loop from staging to `dst`: at most `stepBytes` (whole chunks), continuing
 * `saved` or opening a session (`onSession` records it before anything is sent). Monolithic-only
 * registries take the staged blob in one verified `PUT` (pushBlob), whatever its size.
 */
export async function uploadStaged(
  client: RegistryClient,
  dst: Repository,
  desc: Descriptor,
  staged: { staging: StagingStore; key: string },
  saved: SavedUpload | undefined,
  opts: { stepBytes: number; chunkBytes?: number; onSession: (s: UploadSession) => Promise<void> },
): Promise<UploadOutcome> {
  const read = (from: number, to: number) => staged.staging.openRange(staged.key, from, to);
  const source = `staging (${staged.key})`;
  const rules = client.options.uploadRules(dst.registry);
  if (rules.monolithicOnly) {
    const r = await pushBlob(client, dst, desc, (from) => read(from, desc.size), {
      skipExistsCheck: true,
      source,
    });
    return { committed: true, bytesSent: r.bytesSent };
  }
  return runUpload(client, dst, desc, saved, {
    read,
    chunkSize: Math.min(opts.chunkBytes ?? rules.chunkSize, rules.chunkSize),
    maxBytes: opts.stepBytes,
    source,
    onSession: opts.onSession,
  });
}
