/**
 * Step 3, PutManifests — the *final manifest PUT*: only when every blob of the plan is present at the
 * destination (confirmed by this execution's blob records — found by Resolve, or mounted or uploaded by
 * its steps —, else checked with `HEAD`; one missing → IncompleteImageError, nothing is put), the
 * manifests from the plan (exact bytes), children first, then the root under each tag (or its digest).
 * Writes report.json and returns the summary the execution ends with.
 */
import { mapLimit } from "../../concurrency.ts";
import { parseRepository } from "../../registry/reference.ts";
import { getJson, putJson, StagingError } from "../../staging/types.ts";
import { putManifests as putAll, requireBlobs } from "../../transfer/manifests.ts";
import { RegistrySink } from "../../transfer/registry-endpoints.ts";
import type { BlobReport } from "../../transfer/report.ts";
import { sumTotals } from "../../transfer/report.ts";
import type { StepDeps } from "../deps.ts";
import { planKey, reportKey } from "../keys.ts";
import { checkRepositoryAllowed } from "../policy.ts";
import { readBlobRecord, type StoredPlan, type TransferReport, type TransferSummary } from "../records.ts";
import { PutManifestsEventSchema, validate } from "../schemas.ts";
import { guard } from "./guard.ts";

export const putManifests = guard(async (event: unknown, deps: StepDeps): Promise<TransferSummary> => {
  const { job } = validate(PutManifestsEventSchema, event, "PutManifests input");
  checkRepositoryAllowed(deps.policy, "destinations", job.destination);
  const { client, staging } = deps;
  const plan = await getJson<StoredPlan>(staging, planKey(job.prefix));
  if (!plan)
    throw new StagingError(`the plan of ${job.image} is missing from ${staging.location}/${job.prefix}`);
  const dst = parseRepository(job.destination);
  client.declarePush(dst);

  // Never a manifest before every blob it references is at the destination (other steps moved them).
  // A record counts when this execution wrote it — on or after its plan, for the plan's size: a later
  // execution of the same name (or one whose name maps to the same prefix) finds the records of an earlier
  // one still there, and those confirm nothing. Without a record that counts, a blob gets a HEAD.
  const planned = Date.parse(plan.createdAt);
  const records = await mapLimit(plan.blobs, 8, async (b) => {
    const r = await readBlobRecord(staging, job.prefix, b.digest);
    if (!r || r.action === "failed" || r.size !== b.size || !(Date.parse(r.finishedAt) >= planned))
      return undefined;
    return { ...r, action: r.action };
  });
  const confirmed = new Set(records.flatMap((r) => (r ? [r.digest] : [])));
  const sink = new RegistrySink(client, dst);
  await requireBlobs(sink, plan.blobs, job.image, confirmed);
  const manifests = await putAll(
    sink,
    plan.manifests.map((m) => ({
      raw: { digest: m.digest, mediaType: m.mediaType, bytes: Buffer.from(m.bytes, "base64") },
      ...(m.platform ? { platform: m.platform } : {}),
    })),
    plan.tags,
  );

  const blobs: BlobReport[] = plan.blobs.map((b, i) => {
    const rec = records[i];
    const action = rec ? rec.action : "skipped";
    return {
      digest: b.digest,
      mediaType: b.mediaType,
      size: b.size,
      action,
      bytesSent: rec?.bytesSent ?? 0,
      seconds: 0,
    };
  });
  const totals = sumTotals(blobs, 0);
  const report: TransferReport = {
    id: job.id,
    status: "SUCCEEDED",
    source: plan.source,
    destination: plan.destination,
    digest: plan.digest,
    tags: plan.tags,
    upToDate: false,
    manifests,
    blobs,
    notes: plan.notes,
    totals,
    finishedAt: new Date().toISOString(),
  };
  await putJson(staging, reportKey(job.prefix), report);
  return {
    source: plan.source,
    destination: plan.destination,
    digest: plan.digest,
    tags: plan.tags,
    upToDate: false,
    manifests: manifests.length,
    blobs: { total: totals.blobs, copied: totals.copied, mounted: totals.mounted, skipped: totals.skipped },
    bytes: totals.bytes,
    bytesSent: totals.bytesSent,
  };
});
