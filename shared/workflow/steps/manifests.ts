/**
 * Step 3, PutManifests — the *final manifest PUT*: only when every blob of the plan is present at the
 * destination (each is checked with `HEAD`; one missing → IncompleteImageError, nothing is put), the
 * manifests from the plan (exact bytes), children first, then the root under each tag (or its digest).
 * Writes report.json and returns the summary the execution ends with.
 */
import type { RawManifest } from "../../registry/manifest.ts";
import { parseRepository } from "../../registry/reference.ts";
import { getJson, putJson, StagingError } from "../../staging/types.ts";
import type { BlobReport, ManifestReport } from "../../transfer/report.ts";
import { sumTotals } from "../../transfer/report.ts";
import { mapLimit, type StepDeps } from "../deps.ts";
import { IncompleteImageError } from "../errors.ts";
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

  const missing: string[] = [];
  await mapLimit(plan.blobs, 8, async (b) => {
    const size = await client.headBlob(dst, b.digest);
    if (size === undefined || (size >= 0 && b.size >= 0 && size !== b.size)) missing.push(b.digest);
  });
  if (missing.length > 0) {
    throw new IncompleteImageError(
      `${job.image}: ${missing.length} of ${plan.blobs.length} blob(s) missing at ${job.destination} ` +
        `(${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ", …" : ""}); no manifest was pushed`,
    );
  }

  const raw = (i: number): RawManifest => {
    const m = plan.manifests[i]!;
    return { digest: m.digest, mediaType: m.mediaType, bytes: Buffer.from(m.bytes, "base64") };
  };
  const manifests: ManifestReport[] = [];
  const last = plan.manifests.length - 1;
  for (let i = 0; i < last; i++) {
    await client.putManifest(dst, plan.manifests[i]!.digest, raw(i));
    const m = plan.manifests[i]!;
    manifests.push({
      digest: m.digest,
      mediaType: m.mediaType,
      ...(m.platform ? { platform: m.platform } : {}),
      tags: [],
    });
  }
  const root = raw(last);
  if (plan.tags.length === 0) await client.putManifest(dst, root.digest, root);
  for (const tag of plan.tags) await client.putManifest(dst, tag, root);
  manifests.push({ digest: root.digest, mediaType: root.mediaType, tags: plan.tags });

  const blobs: BlobReport[] = await mapLimit(plan.blobs, 8, async (b) => {
    const rec = await readBlobRecord(staging, job.prefix, b.digest);
    const action = rec && rec.action !== "failed" ? rec.action : "skipped";
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
