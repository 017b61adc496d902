/**
 * Step 1, Resolve — the *manifest fetch*: the source's manifests (exact bytes) → the plan in staging;
 * `HEAD` at the destination for every blob; the list of blobs still to copy, each with its mode:
 *   direct  small (≤ directMaxBytes), unknown size, or not sha256: source → destination in one step;
 *   mount   same registry, other repository, big: try a cross-repository mount, else staged;
 *   staged  big: stage loop (source → staging), then upload loop (staging → destination).
 * Blobs already present are reported as skipped here and left out of the list. When the destination tag
 * already points to the source's digest, nothing is planned (`upToDate`); otherwise a missing destination
 * repository is created first when the deployment allows it (`deps.repositories`: ECR).
 */

import { mapLimit } from "../../concurrency.ts";
import { formatPlatform, parsePlatform } from "../../registry/manifest.ts";
import {
  formatReference,
  formatRepository,
  parseReference,
  type Reference,
} from "../../registry/reference.ts";
import { putJson } from "../../staging/types.ts";
import { planTransfer, upToDateDigest } from "../../transfer/plan.ts";
import { RegistrySink, RegistrySource } from "../../transfer/registry-endpoints.ts";
import { blobMode } from "../../transfer/staged.ts";
import {
  DEFAULT_BLOB_CONCURRENCY,
  DEFAULT_DIRECT_MAX_BYTES,
  DEFAULT_STEP_BYTES,
  type StepDeps,
} from "../deps.ts";
import { ValidationError } from "../errors.ts";
import { planKey, reportKey, safeId, transferPrefix } from "../keys.ts";
import { checkTransferAllowed } from "../policy.ts";
import { type StoredPlan, type TransferReport, type TransferSummary, writeBlobRecord } from "../records.ts";
import { type BlobItem, type BlobMode, type Job, ResolveEventSchema, validate } from "../schemas.ts";
import { guard } from "./guard.ts";

export interface ResolveResult {
  job: Job;
  upToDate: boolean;
  /** Blobs still to copy (present ones are left out). */
  blobs: BlobItem[];
  counts: { blobs: number; skipped: number; direct: number; mount: number; staged: number; bytes: number };
  /** Set when `upToDate` (nothing else will run but Cleanup). */
  summary?: TransferSummary;
}

export const resolve = guard(async (event: unknown, deps: StepDeps): Promise<ResolveResult> => {
  const { request, executionName } = validate(ResolveEventSchema, event, "Resolve input");
  // Before any request: a state machine started directly bypasses the triggers' checks.
  checkTransferAllowed(request, deps.policy);
  const src = parseReference(request.source, null);
  const dst = parseReference(request.destination, null);
  if (dst.digest) throw new ValidationError("destination must not be pinned by digest (give a tag or none)");
  const tags = request.tags ?? (dst.tag ? [dst.tag] : src.tag ? [src.tag] : []);
  const platforms = (request.platforms ?? []).map(parsePlatform);
  const d = { ...deps.defaults, ...request.options };
  const srcRepo = { registry: src.registry, repository: src.repository };
  const dstRepo = { registry: dst.registry, repository: dst.repository };
  const id = safeId(executionName);
  const prefix = transferPrefix(id);
  const job: Job = {
    id,
    prefix,
    source: formatRepository(srcRepo),
    destination: formatRepository(dstRepo),
    image: `${formatReference(src)} → ${formatRepository(dstRepo)}${tags.length ? `:${tags.join(",")}` : ""}`,
    stepBytes: d.stepBytes ?? DEFAULT_STEP_BYTES,
    ...(d.partBytes ? { partBytes: d.partBytes } : {}),
    ...(d.chunkBytes ? { chunkBytes: d.chunkBytes } : {}),
    directMaxBytes: d.directMaxBytes ?? DEFAULT_DIRECT_MAX_BYTES,
    concurrency: d.concurrency ?? DEFAULT_BLOB_CONCURRENCY,
  };
  const { client, staging } = deps;
  const source = new RegistrySource(client, src as Reference);
  const sink = new RegistrySink(client, dstRepo);

  // Already there? (one HEAD each side; not with a platform selection, which rewrites the index)
  const want = await upToDateDigest(source, sink, tags, { platforms });
  if (want) {
    const summary: TransferSummary = {
      source: formatReference(src),
      destination: formatRepository(dstRepo),
      digest: want,
      tags,
      upToDate: true,
      manifests: 0,
      blobs: { total: 0, copied: 0, mounted: 0, skipped: 0 },
      bytes: 0,
      bytesSent: 0,
    };
    const report: TransferReport = {
      id,
      status: "SUCCEEDED",
      source: summary.source,
      destination: summary.destination,
      digest: want,
      tags,
      upToDate: true,
      manifests: [],
      blobs: [],
      notes: ["already up to date: the destination tags point to the source's digest"],
      finishedAt: new Date().toISOString(),
    };
    await putJson(staging, reportKey(prefix), report);
    return {
      job,
      upToDate: true,
      blobs: [],
      counts: { blobs: 0, skipped: 0, direct: 0, mount: 0, staged: 0, bytes: 0 },
      summary,
    };
  }

  const plan = await planTransfer(source, platforms.length ? { platforms } : {});
  // Not up to date and the source is copyable: something will be written, and ECR refuses writes to a
  // missing repository. Every blob step comes after this one (shared/transfer/repositories.ts: why here
  // and not on the first NAME_UNKNOWN).
  const repository = await deps.repositories?.ensure(dstRepo);
  if (repository === "created") plan.notes.push(`created the repository ${formatRepository(dstRepo)}`);
  const stored: StoredPlan = {
    version: 1,
    source: formatReference(src),
    destination: formatRepository(dstRepo),
    tags,
    digest: plan.root.raw.digest,
    manifests: plan.manifests.map((m) => ({
      digest: m.raw.digest,
      mediaType: m.raw.mediaType,
      bytes: Buffer.from(m.raw.bytes).toString("base64"),
      ...(m.platform ? { platform: formatPlatform(m.platform) } : {}),
    })),
    blobs: plan.blobs.map((b) => ({ digest: b.digest, size: b.size, mediaType: b.mediaType })),
    notes: plan.notes,
    createdAt: new Date().toISOString(),
  };
  await putJson(staging, planKey(prefix), stored);

  const sameRegistry = srcRepo.registry === dstRepo.registry && srcRepo.repository !== dstRepo.repository;
  const counts = {
    blobs: plan.blobs.length,
    skipped: 0,
    direct: 0,
    mount: 0,
    staged: 0,
    bytes: plan.totalBytes,
  };
  const decided = await mapLimit(plan.blobs, 8, async (b): Promise<BlobItem | undefined> => {
    if (await sink.hasBlob(b)) {
      counts.skipped++;
      await writeBlobRecord(staging, prefix, {
        digest: b.digest,
        size: b.size,
        mediaType: b.mediaType,
        mode: "skip",
        action: "skipped",
        bytesSent: 0,
      });
      return undefined;
    }
    const mode: BlobMode = blobMode(b, { sameRegistry, directMaxBytes: job.directMaxBytes });
    counts[mode]++;
    return { digest: b.digest, size: b.size, mediaType: b.mediaType, mode };
  });
  return { job, upToDate: false, blobs: decided.filter((b): b is BlobItem => b !== undefined), counts };
});
