/**
 * Step 2b, UploadBlob — everything that writes a blob to the destination registry:
 *   direct  the existing pushBlob, source → destination in one step (small blobs; mount tried first on
 *           the same registry);
 *   mount   a cross-repository mount only (big blobs on the same registry); not done → staged;
 *   upload  one bounded step of the *upload loop*: staging ranged read → destination chunked `PATCH`
 *           with `Content-Range`, one session per blob; the offset, the running hash and an opaque
 *           session id go from step to step in the state, the session's Location (which carries the
 *           registry's `_state` or signature) in the blob's open record in staging; the final
 *           `PUT ?digest=` only after the whole blob went through and its digest matched.
 *
 * Chunks follow the destination's rules (client.options.uploadRules: ECR ≥ 5 MiB, GHCR ≤ 4 MiB,
 * OCI-Chunk-Min-Length; monolithic-only registries get one streamed PUT). A step sends whole chunks up to
 * `stepBytes`. If a PATCH is refused because the registry's offset is not ours (a previous attempt's
 * bytes arrived but its answer did not, or the session's state went stale), the session's offset is asked
 * for (`GET <location>`) and the step resumes from there — the hash catches up by re-reading those bytes
 * from staging — or, if the registry lost the session, a new one starts from zero.
 */
import { randomBytes } from "node:crypto";
import { DigestMismatchError, RegistryError, redactUrl, SizeMismatchError } from "../../registry/errors.ts";
import { formatRepository, parseRepository, type Repository } from "../../registry/reference.ts";
import {
  cancelUpload,
  completeUpload,
  patchChunk,
  pushBlob,
  startUpload,
  type UploadSession,
  uploadStatus,
} from "../../registry/uploads.ts";
import { getJson } from "../../staging/types.ts";
import type { StepDeps } from "../deps.ts";
import { ValidationError } from "../errors.ts";
import { type StepHash, stepHash } from "../hashing.ts";
import { openKey } from "../keys.ts";
import { checkRepositoryAllowed } from "../policy.ts";
import { ExactReader } from "../reader.ts";
import { type OpenRecord, recordOpen, writeBlobRecord } from "../records.ts";
import {
  type BlobItem,
  type Job,
  type StageState,
  UploadEventSchema,
  type UploadState,
  validate,
} from "../schemas.ts";
import { guard } from "./guard.ts";

export const uploadBlob = guard(async (event: unknown, deps: StepDeps): Promise<UploadState> => {
  const ev = validate(UploadEventSchema, event, "UploadBlob input");
  const dst = parseRepository(ev.job.destination);
  // Before any request: a state machine started directly bypasses the triggers' checks.
  checkRepositoryAllowed(deps.policy, "destinations", dst);
  // Direct copies and mounts read the source (a mount makes the registry read it).
  if (ev.action !== "upload") checkRepositoryAllowed(deps.policy, "sources", ev.job.source);
  deps.client.declarePush(dst);
  switch (ev.action) {
    case "direct":
      return direct(ev.job, ev.blob, dst, deps);
    case "mount":
      return mount(ev.job, ev.blob, dst, deps);
    case "upload":
      return uploadStep(ev.job, ev.blob, ev.stage, ev.upload, dst, deps);
  }
});

async function finish(
  job: Job,
  blob: BlobItem,
  deps: StepDeps,
  action: "copied" | "mounted" | "skipped",
  bytesSent: number,
  extra: Partial<UploadState> = {},
): Promise<UploadState> {
  await writeBlobRecord(deps.staging, job.prefix, {
    digest: blob.digest,
    size: blob.size,
    mediaType: blob.mediaType,
    mode: blob.mode,
    action,
    bytesSent,
  });
  await deps.staging.delete(openKey(job.prefix, blob.digest));
  return { offset: Math.max(0, blob.size), done: true, action, bytesSent, ...extra };
}

async function direct(job: Job, blob: BlobItem, dst: Repository, deps: StepDeps): Promise<UploadState> {
  const src = parseRepository(job.source);
  const desc = { digest: blob.digest, size: blob.size, mediaType: blob.mediaType };
  const sameRegistry = src.registry === dst.registry && src.repository !== dst.repository;
  const r = await pushBlob(deps.client, dst, desc, (offset) => deps.client.openBlob(src, desc, offset), {
    ...(sameRegistry ? { mountFrom: [src] } : {}),
  });
  return finish(job, blob, deps, r.action === "uploaded" ? "copied" : r.action, r.bytesSent);
}

async function mount(job: Job, blob: BlobItem, dst: Repository, deps: StepDeps): Promise<UploadState> {
  const { client } = deps;
  const src = parseRepository(job.source);
  if (await present(deps, dst, blob)) return finish(job, blob, deps, "skipped", 0);
  await client.transport.ensureChallenge(dst.registry, client.base(dst.registry));
  const s = await startUpload(client, dst, { digest: blob.digest, from: src });
  if (s === "mounted") return finish(job, blob, deps, "mounted", 0);
  await cancelUpload(client, s);
  return { offset: 0, done: false };
}

async function present(deps: StepDeps, dst: Repository, blob: BlobItem): Promise<boolean> {
  const size = await deps.client.headBlob(dst, blob.digest);
  return size !== undefined && (size === blob.size || size < 0);
}

/** Sessions a blob may lose (and restart from zero) before its copy fails. */
const MAX_RESTARTS = 3;

/** Registry answers meaning "your offset or session is not mine": reconcile, do not just retry. */
function offsetConflict(err: unknown): err is RegistryError {
  return (
    err instanceof RegistryError &&
    (err.status === 416 || err.status === 404 || (err.status === 400 && err.hasCode("BLOB_UPLOAD_INVALID")))
  );
}

async function uploadStep(
  job: Job,
  blob: BlobItem,
  stage: StageState,
  state: UploadState,
  dst: Repository,
  deps: StepDeps,
): Promise<UploadState> {
  const { client, staging } = deps;
  if (state.done) return state;
  if (!stage.done || !stage.key) throw new ValidationError("UploadBlob: the blob is not staged yet");
  const key = stage.key;
  const size = blob.size;
  const where = `blob ${blob.digest} for ${formatRepository(dst)} (${job.image})`;
  let st: UploadState = state;
  let sent = st.bytesSent ?? 0;

  const recorded = await getJson<OpenRecord>(staging, openKey(job.prefix, blob.digest));
  let session: UploadSession;
  /** Where the recorded Location stands, when it is ahead of the state (see below). */
  let recordedAhead: number | undefined;
  if (st.session && recorded?.upload?.session === st.session) {
    // The session this state names; its Location is in the record, written before the state that names
    // it was returned — so never behind the state, but ahead of it when that state's answer was lost.
    session = {
      repo: dst,
      location: new URL(recorded.upload.location),
      offset: st.offset,
      minChunk: st.minChunk ?? 0,
    };
    const at = recorded.upload.offset;
    if (at !== undefined && at !== st.offset) recordedAhead = at;
  } else {
    // The first step of this blob, or the record moved on from the state (an attempt that failed before
    // returning opened another session): cancel whatever is recorded, start afresh from zero.
    if (await present(deps, dst, blob)) return finish(job, blob, deps, "skipped", 0);
    if (recorded?.upload?.location)
      await cancelUpload(client, {
        repo: dst,
        location: new URL(recorded.upload.location),
        offset: 0,
        minChunk: 0,
      });
    ({ st, session } = await newSession(deps, job, blob, dst, st));
  }
  const rules = client.options.uploadRules(dst.registry);

  if (rules.monolithicOnly) {
    // No chunked uploads here (Google Artifact Registry): one streamed PUT of the whole staged blob.
    // The registry checks the digest as it commits; ferry checks the bytes it sent too.
    const hash = stepHash({ from: 0, to: size, size });
    const reader = new ExactReader(await staging.openRange(key, 0, size));
    try {
      await completeUpload(client, session, blob.digest, {
        stream: reader.take(size, (b) => hash.update(b)),
        length: size,
      });
    } finally {
      reader.destroy();
    }
    const actual = hash.digest();
    if (reader.lastTaken !== size || actual !== blob.digest)
      throw new DigestMismatchError(`${where}: staged bytes`, blob.digest, actual);
    return finish(job, blob, deps, "copied", sent + size);
  }

  const chunk = Math.max(
    rules.minChunk,
    session.minChunk,
    Math.min(job.chunkBytes ?? rules.chunkSize, rules.chunkSize, job.stepBytes),
  );
  const budget = Math.max(chunk, Math.floor(job.stepBytes / chunk) * chunk);
  const end = Math.min(size, st.offset + budget);
  let hash: StepHash = stepHash({ from: st.offset, to: end, size, state: st.hash });

  /** Cancels the session and starts a new one; the next step begins at 0. Bounded by MAX_RESTARTS. */
  const restart = async (status: number): Promise<UploadState> => {
    await cancelUpload(client, session);
    if ((st.restarts ?? 0) >= MAX_RESTARTS)
      throw new RegistryError({
        status,
        method: "PATCH",
        url: redactUrl(session.location),
        context: `${where}: the registry lost the upload session ${MAX_RESTARTS + 1} times`,
      });
    const fresh = await newSession(deps, job, blob, dst, { offset: 0, done: false });
    return { ...fresh.st, bytesSent: sent, restarts: (st.restarts ?? 0) + 1 };
  };
  /**
   * Asks the registry where the session stands, `start` being where we stand: the offset to go on from
   * (the bytes in between, which the registry has but whose answer we never got, hashed from staging), or
   * undefined when the session is lost or behind what we know.
   */
  const resumeFrom = async (start: number): Promise<number | undefined> => {
    let reported: number;
    try {
      reported = await uploadStatus(client, session);
    } catch (e) {
      if (!offsetConflict(e)) throw e;
      return undefined; // the registry lost the session
    }
    if (reported < start || reported > size) return undefined;
    if (reported > start) {
      const catchUp = new ExactReader(await staging.openRange(key, start, reported));
      try {
        for await (const _ of catchUp.take(reported - start, (b) => hash.update(b))) {
          // hashed in the callback
        }
      } finally {
        catchUp.destroy();
      }
      if (catchUp.lastTaken !== reported - start)
        throw new SizeMismatchError(`${where}: staged object ${key}`, size, start + catchUp.lastTaken);
      sent += reported - start; // sent by the attempt whose answer was lost
    }
    return reported;
  };

  if (recordedAhead !== undefined) {
    // An earlier attempt of this step sent bytes and recorded the session's newer Location, but its
    // answer never arrived, so the state is behind the registry. Never PATCH from a stale offset: some
    // registries ignore Content-Range (distribution 2.x appends at its own offset) and the bytes would go
    // in twice. Ask where the session stands and go on from there.
    const at = await resumeFrom(session.offset);
    if (at === undefined) return restart(416);
    session.offset = at;
  }

  let reader = new ExactReader(await staging.openRange(key, session.offset, Math.max(session.offset, end)));
  let reconciled = false;
  try {
    while (session.offset < end) {
      const start = session.offset;
      const length = Math.min(chunk, end - start);
      const checkpoint = hash.copy();
      try {
        await patchChunk(
          client,
          session,
          reader.take(length, (b) => hash.update(b)),
          length,
        );
        if (reader.lastTaken !== length)
          throw new SizeMismatchError(`${where}: staged object ${key}`, size, start + reader.lastTaken);
        sent += length;
        reconciled = false;
      } catch (err) {
        if (!offsetConflict(err) || reconciled) throw err;
        reconciled = true;
        reader.destroy();
        hash = checkpoint;
        // Lost, or behind what we know: start over with a new session.
        const at = await resumeFrom(start);
        if (at === undefined) return restart(err.status);
        session.offset = at;
        reader = new ExactReader(await staging.openRange(key, at, Math.max(at, end)));
      }
    }
  } finally {
    reader.destroy();
  }

  if (session.offset < size) {
    // The newest Location and the offset it stands at: for the next step, and for cleanup should the
    // transfer fail before then.
    await recordOpen(staging, job.prefix, {
      digest: blob.digest,
      upload: {
        repository: formatRepository(dst),
        location: session.location.href,
        session: st.session,
        offset: session.offset,
      },
    });
    return {
      offset: session.offset,
      done: false,
      session: st.session,
      hash: hash.exportState(),
      minChunk: session.minChunk,
      bytesSent: sent,
      ...(st.restarts ? { restarts: st.restarts } : {}),
    };
  }

  const actual = hash.digest();
  if (actual !== blob.digest) {
    // Never committed: the session is cancelled before any PUT ?digest=.
    await cancelUpload(client, session);
    await staging.delete(openKey(job.prefix, blob.digest));
    throw new DigestMismatchError(`${where}: staged bytes`, blob.digest, actual);
  }
  try {
    await completeUpload(client, session, blob.digest);
  } catch (err) {
    // A lost answer to an earlier PUT: the session is gone but the blob is there.
    if (!(err instanceof RegistryError && err.status === 404 && (await present(deps, dst, blob)))) throw err;
  }
  return finish(job, blob, deps, "copied", sent);
}

/** Opens an upload session, records it (Location in staging), returns the state naming it and the session. */
async function newSession(
  deps: StepDeps,
  job: Job,
  blob: BlobItem,
  dst: Repository,
  st: UploadState,
): Promise<{ st: UploadState; session: UploadSession }> {
  const { client } = deps;
  // Uploads stream one-shot bodies: learn the auth challenge first so no body meets a 401.
  await client.transport.ensureChallenge(dst.registry, client.base(dst.registry));
  const s = await startUpload(client, dst);
  if (s === "mounted")
    throw new RegistryError({ status: 201, method: "POST", url: "", context: "unexpected mount" });
  // Names the session in the state; not derived from the Location, so it reveals nothing of it.
  const id = randomBytes(8).toString("hex");
  await recordOpen(deps.staging, job.prefix, {
    digest: blob.digest,
    upload: { repository: formatRepository(dst), location: s.location.href, session: id, offset: 0 },
  });
  const { hash: _dropped, ...rest } = st;
  return {
    st: { ...rest, offset: 0, done: false, session: id, minChunk: s.minChunk },
    session: s,
  };
}
