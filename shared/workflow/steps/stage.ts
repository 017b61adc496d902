/**
 * Step 2a, StageBlob — one bounded step of a big blob's copy into staging: source `GET` with `Range`
 * from the recorded offset → staging multipart parts, hashing as the bytes stream by. A step moves at most
 * `stepBytes` (rounded down to whole parts) and returns the new offset, the upload id and the running hash
 * state; the definition loops until `done`. On the last step the digest is checked *before* the
 * multipart upload is completed: a blob whose bytes do not match never becomes a staged object.
 *
 * Idempotent for its input: a retried step re-reads the source from the same offset and re-uploads the
 * same part numbers (S3 keeps the newest), so a fault anywhere in a step costs at most that step.
 * Memory: two parts (one being read while the previous one uploads).
 */
import { blobHash } from "../../registry/digest.ts";
import { DigestMismatchError, SizeMismatchError } from "../../registry/errors.ts";
import { parseRepository } from "../../registry/reference.ts";
import { getJson, partSizeFor, putJson, type StagedPart, StagingError } from "../../staging/types.ts";
import type { StepDeps } from "../deps.ts";
import { ValidationError } from "../errors.ts";
import { dataKey, openKey, partsKey } from "../keys.ts";
import { checkRepositoryAllowed } from "../policy.ts";
import { ExactReader } from "../reader.ts";
import { recordOpen } from "../records.ts";
import { StageEventSchema, type StageState, validate } from "../schemas.ts";
import { guard } from "./guard.ts";

export const stageBlob = guard(async (event: unknown, deps: StepDeps): Promise<StageState> => {
  const { job, blob, stage } = validate(StageEventSchema, event, "StageBlob input");
  checkRepositoryAllowed(deps.policy, "sources", job.source);
  const { staging, client } = deps;
  if (stage.done) return stage;
  const size = blob.size;
  if (size <= 0) throw new ValidationError(`blob ${blob.digest}: staging needs a known, non-zero size`);
  const key = dataKey(job.prefix, blob.digest);
  const partBytes = stage.partBytes ?? partSizeFor(size, job.partBytes);
  let st: StageState = stage;

  // A previous attempt may have finished without its answer arriving: staged objects exist only once
  // their digest matched, so one that is there and whole is done.
  if ((await staging.size(key)) === size) return { offset: size, done: true, key, partBytes };
  if (!st.uploadId) {
    if (st.offset !== 0) throw new ValidationError("StageBlob: an offset without an upload id");
    const uploadId = await staging.createMultipart(key);
    await recordOpen(staging, job.prefix, { digest: blob.digest, stage: { key, uploadId } });
    st = { offset: 0, done: false, key, uploadId, partBytes, parts: 0 };
  }
  const uploadId = st.uploadId!;
  if (st.offset % partBytes !== 0 || st.offset > size)
    throw new ValidationError(`StageBlob: offset ${st.offset} is not a part boundary of ${partBytes} bytes`);

  const budget = Math.max(partBytes, Math.floor(job.stepBytes / partBytes) * partBytes);
  const from = st.offset;
  const end = Math.min(size, from + budget);
  const hash = blobHash(blob.digest, { from, to: end, size, state: st.hash });
  const firstPart = from / partBytes + 1;
  const prior =
    from > 0
      ? ((await getJson<StagedPart[]>(staging, partsKey(job.prefix, blob.digest))) ?? []).filter(
          (p) => p.partNumber < firstPart,
        )
      : [];
  if (prior.length !== firstPart - 1)
    throw new StagingError(
      `staged parts of ${blob.digest} are missing (${prior.length} recorded, ${firstPart - 1} expected)`,
    );

  const srcRepo = parseRepository(job.source);
  const desc = { digest: blob.digest, size, mediaType: blob.mediaType };
  // a bounded Range: the registry sends this step's bytes only
  const reader = new ExactReader(await client.openBlob(srcRepo, desc, from, end - from));
  const parts: StagedPart[] = [];
  let pending: Promise<StagedPart> | undefined;
  try {
    for (let pos = from; pos < end; ) {
      const len = Math.min(partBytes, end - pos);
      const buf = await reader.read(len);
      if (buf.length !== len)
        throw new SizeMismatchError(`blob ${desc.digest} from ${job.source}`, size, pos + buf.length);
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
    await putJson(staging, partsKey(job.prefix, blob.digest), all);
    return {
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
  if (actual !== blob.digest) {
    // Nothing is committed: the multipart upload is abandoned, its parts and records removed.
    await staging.abortMultipart(key, uploadId);
    await staging.delete(partsKey(job.prefix, blob.digest));
    await staging.delete(openKey(job.prefix, blob.digest));
    throw new DigestMismatchError(
      `blob ${blob.digest} read from ${job.source} for ${job.image}`,
      blob.digest,
      actual,
    );
  }
  await staging.completeMultipart(key, uploadId, all);
  const staged = await staging.size(key);
  if (staged !== size)
    throw new StagingError(`staged ${key} is ${staged ?? "missing"} bytes, expected ${size}`, {
      retryable: true,
    });
  await staging.delete(partsKey(job.prefix, blob.digest));
  await recordOpen(staging, job.prefix, { digest: blob.digest, stage: { key } });
  return { offset: size, done: true, key, partBytes, parts: all.length };
});
