/**
 * Step 2b, UploadBlob — everything that writes a blob to the destination registry, each a call to the
 * one transfer core:
 *   direct  source → destination in one step (registry/uploads.ts `pushBlob`: exists → mount → upload),
 *           small blobs;
 *   mount   a cross-repository mount only (big blobs on the same registry); not done → staged;
 *   upload  one run of the upload loop from staging (transfer/staged.ts `uploadStaged`), at most
 *           `job.stepBytes`. The offset, the running hash and an opaque session id go from step to step
 *           in the state; the session's Location (which carries the registry's `_state` or signature)
 *           stays in the blob's open record in staging, never in the state.
 * A resumed session is always reconciled with the registry before anything is sent (a step's answer may
 * have been lost after its bytes arrived).
 */
import { randomBytes } from "node:crypto";
import { formatRepository, parseRepository, type Repository } from "../../registry/reference.ts";
import { cancelUpload, pushBlob, type SavedUpload, tryMount } from "../../registry/uploads.ts";
import { getJson } from "../../staging/types.ts";
import { uploadStaged } from "../../transfer/staged.ts";
import type { StepDeps } from "../deps.ts";
import { ValidationError } from "../errors.ts";
import { openKey } from "../keys.ts";
import { checkRepositoryAllowed } from "../policy.ts";
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

const descriptor = (blob: BlobItem) => ({ digest: blob.digest, size: blob.size, mediaType: blob.mediaType });

async function finish(
  job: Job,
  blob: BlobItem,
  deps: StepDeps,
  action: "copied" | "mounted" | "skipped",
  bytesSent: number,
): Promise<UploadState> {
  await writeBlobRecord(deps.staging, job.prefix, {
    ...descriptor(blob),
    mode: blob.mode,
    action,
    bytesSent,
  });
  await deps.staging.delete(openKey(job.prefix, blob.digest));
  return { offset: Math.max(0, blob.size), done: true, action, bytesSent };
}

async function direct(job: Job, blob: BlobItem, dst: Repository, deps: StepDeps): Promise<UploadState> {
  const src = parseRepository(job.source);
  const desc = descriptor(blob);
  const r = await pushBlob(deps.client, dst, desc, (offset) => deps.client.openBlob(src, desc, offset), {
    mountFrom: [src],
    source: `${job.source} for ${job.image}`,
  });
  return finish(job, blob, deps, r.action === "uploaded" ? "copied" : r.action, r.bytesSent);
}

async function mount(job: Job, blob: BlobItem, dst: Repository, deps: StepDeps): Promise<UploadState> {
  const size = await deps.client.headBlob(dst, blob.digest);
  if (size !== undefined && (size === blob.size || size < 0)) return finish(job, blob, deps, "skipped", 0);
  if (await tryMount(deps.client, dst, blob.digest, [parseRepository(job.source)]))
    return finish(job, blob, deps, "mounted", 0);
  return { offset: 0, done: false };
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
  const repository = formatRepository(dst);
  const recorded = await getJson<OpenRecord>(staging, openKey(job.prefix, blob.digest));
  let session = state.session;
  let saved: SavedUpload | undefined;
  if (session && recorded?.upload?.session === session) {
    // The session this state names. Its Location is in the record; the registry may hold more than the
    // state says (this step ran before and its answer was lost): uncertain, so asked first.
    saved = {
      location: recorded.upload.location,
      offset: state.offset,
      minChunk: state.minChunk ?? 0,
      ...(state.hash ? { hash: state.hash } : {}),
      ...(state.restarts ? { restarts: state.restarts } : {}),
      uncertain: true,
    };
  } else {
    // The first step of this blob, or the record moved on from the state (an attempt that failed before
    // returning opened another session): cancel whatever is recorded, start afresh.
    const size = await client.headBlob(dst, blob.digest);
    if (size !== undefined && (size === blob.size || size < 0)) return finish(job, blob, deps, "skipped", 0);
    if (recorded?.upload?.location)
      await cancelUpload(client, {
        repo: dst,
        location: new URL(recorded.upload.location),
        offset: 0,
        minChunk: 0,
      });
  }
  const outcome = await uploadStaged(client, dst, descriptor(blob), { staging, key: stage.key }, saved, {
    stepBytes: job.stepBytes,
    ...(job.chunkBytes ? { chunkBytes: job.chunkBytes } : {}),
    // Every new session is recorded (for this blob's next step, and for cleanup) before any byte goes to it.
    onSession: async (s) => {
      session = randomBytes(8).toString("hex"); // names it in the state; reveals nothing of the Location
      await recordOpen(staging, job.prefix, {
        digest: blob.digest,
        upload: { repository, location: s.location.href, session, offset: 0 },
      });
    },
  });
  const bytesSent = (state.bytesSent ?? 0) + outcome.bytesSent;
  if (outcome.committed) return finish(job, blob, deps, "copied", bytesSent);
  const { saved: next } = outcome;
  await recordOpen(staging, job.prefix, {
    digest: blob.digest,
    upload: { repository, location: next.location, session: session!, offset: next.offset },
  });
  return {
    offset: next.offset,
    done: false,
    session: session!,
    ...(next.hash ? { hash: next.hash } : {}),
    minChunk: next.minChunk,
    bytesSent,
    ...(next.restarts ? { restarts: next.restarts } : {}),
  };
}
