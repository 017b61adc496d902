/**
 * Step 4, Cleanup:
 *   success     the staged objects, part lists and open records go (plan, per-blob reports and
 *               report.json stay for GET /transfers/{id} until the bucket's lifecycle rule expires them);
 *   abort-blob  one blob failed (its Map iteration's Catch): its registry session is cancelled, its
 *               multipart upload aborted, its staged object deleted; returns `{Error, Cause}` for the
 *               iteration's Fail state, the cause naming image, blob and registry;
 *   failed      the transfer failed (Resolve, the blob Map, or PutManifests): every upload still open
 *               (open/ records) is cancelled, staging is cleaned, report.json says FAILED; returns
 *               `{Error, Cause}` for the execution's Fail state.
 * Best effort everywhere: a cleanup failure never hides the original error.
 */
import { mapLimit } from "../../concurrency.ts";
import { parseRepository } from "../../registry/reference.ts";
import { cancelUpload } from "../../registry/uploads.ts";
import { getJson, putJson, type StagingStore } from "../../staging/types.ts";
import type { StepDeps } from "../deps.ts";
import { dataKey, openKey, openPrefix, partsKey, reportKey } from "../keys.ts";
import { isRepositoryAllowed } from "../policy.ts";
import { type OpenRecord, type TransferReport, writeBlobRecord } from "../records.ts";
import { CleanupEventSchema, type Job, validate } from "../schemas.ts";
import { describeCause } from "./cause.ts";
import { guard } from "./guard.ts";

export interface FailureInfo {
  Error: string;
  Cause: string;
}

export const cleanup = guard(async (event: unknown, deps: StepDeps): Promise<unknown> => {
  const ev = validate(CleanupEventSchema, event, "Cleanup input");
  switch (ev.action) {
    case "success":
      await removeStaged(deps.staging, ev.job.prefix);
      return ev.summary ?? {};
    case "abort-blob": {
      const { job, blob, stage, upload, error } = ev;
      // What the state knows (the last successful step), completed by the open record (what a failed
      // step opened or moved on to before it failed).
      const recorded = await best(() => getJson<OpenRecord>(deps.staging, openKey(job.prefix, blob.digest)));
      const uploadId = recorded?.stage?.uploadId ?? stage?.uploadId;
      // The session's Location lives in the record only (never in the state).
      const location = recorded?.upload?.location;
      await cancelOpen(deps, job, {
        digest: blob.digest,
        stage: {
          key: recorded?.stage?.key ?? stage?.key ?? dataKey(job.prefix, blob.digest),
          ...(uploadId ? { uploadId } : {}),
        },
        ...(location ? { upload: { repository: job.destination, location } } : {}),
      });
      const cause = describeCause(error);
      await best(() =>
        writeBlobRecord(deps.staging, job.prefix, {
          digest: blob.digest,
          size: blob.size,
          mediaType: blob.mediaType,
          mode: blob.mode,
          action: "failed",
          bytesSent: upload?.bytesSent ?? 0,
          error: `${error.Error}: ${cause}`,
        }),
      );
      return {
        Error: error.Error,
        Cause: `${job.image}: blob ${blob.digest} (${blob.size} bytes) failed: ${error.Error}: ${cause}`,
      } satisfies FailureInfo;
    }
    case "failed": {
      const { job, error } = ev.state;
      const name = error?.Error ?? "States.Unknown";
      let cause = describeCause(error ?? { Error: name });
      if (!job) {
        const s = ev.state as { source?: unknown; destination?: unknown };
        const image = typeof s.source === "string" ? `${s.source} → ${String(s.destination)}` : "transfer";
        return { Error: name, Cause: `${image}: ${cause}` } satisfies FailureInfo;
      }
      if (!cause.startsWith(job.image)) cause = `${job.image}: ${cause}`;
      const open = await best(() => deps.staging.list(openPrefix(job.prefix)));
      await mapLimit(open ?? [], 8, async (key) => {
        const rec = await best(() => getJson<OpenRecord>(deps.staging, key));
        if (rec) await cancelOpen(deps, job, rec);
      });
      await removeStaged(deps.staging, job.prefix);
      const report: TransferReport = {
        id: job.id,
        status: "FAILED",
        source: job.source,
        destination: job.destination,
        tags: [],
        upToDate: false,
        manifests: [],
        blobs: [],
        notes: [],
        error: { Error: name, Cause: cause },
        finishedAt: new Date().toISOString(),
      };
      await best(() => putJson(deps.staging, reportKey(job.prefix), report));
      return { Error: name, Cause: cause } satisfies FailureInfo;
    }
  }
});

/**
 * Cancels a blob's registry session and multipart upload, deletes its staged object and records. The
 * session is cancelled only at a destination the policy allows (records are ferry's own, but a state
 * machine started directly could name another transfer's prefix); staging is cleaned regardless.
 */
async function cancelOpen(deps: StepDeps, job: Job, rec: OpenRecord): Promise<void> {
  const { staging, client } = deps;
  const repo = rec.upload?.location ? parseRepository(rec.upload.repository) : undefined;
  if (rec.upload?.location && repo && isRepositoryAllowed(deps.policy, "destinations", repo)) {
    await best(() =>
      cancelUpload(client, {
        repo,
        location: new URL(rec.upload!.location),
        offset: 0,
        minChunk: 0,
      }),
    );
  }
  const key = rec.stage?.key ?? dataKey(job.prefix, rec.digest);
  if (rec.stage?.uploadId) await staging.abortMultipart(key, rec.stage.uploadId);
  await best(() => staging.delete(key));
  await best(() => staging.delete(partsKey(job.prefix, rec.digest)));
  await best(() => staging.delete(openKey(job.prefix, rec.digest)));
}

async function removeStaged(staging: StagingStore, prefix: string): Promise<void> {
  for (const sub of ["data/", "parts/", "open/"]) await best(() => staging.deletePrefix(`${prefix}${sub}`));
}

async function best<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch {
    return undefined;
  }
}
