/** The small JSON documents a transfer keeps in staging (layout: keys.ts). */

import type { StagingStore } from "../staging/types.ts";
import { getJson, putJson } from "../staging/types.ts";
import type { BlobOutcome, BlobReport, ManifestReport, Totals } from "../transfer/report.ts";
import { blobReportKey, openKey } from "./keys.ts";
import type { BlobMode } from "./schemas.ts";

export interface StoredManifest {
  digest: string;
  mediaType: string;
  /** Exact bytes, base64. */
  bytes: string;
  platform?: string;
}

/** plan.json: what Resolve decided. */
export interface StoredPlan {
  version: 1;
  source: string;
  destination: string;
  tags: string[];
  /** The digest the destination tags will point to. */
  digest: string;
  /** Children first, root last. */
  manifests: StoredManifest[];
  blobs: { digest: string; size: number; mediaType: string }[];
  notes: string[];
  createdAt: string;
}

/** blobs/<digest>.json: one blob's outcome. */
export interface BlobRecord {
  digest: string;
  size: number;
  mediaType: string;
  mode?: BlobMode | "skip";
  action: BlobOutcome | "failed";
  bytesSent: number;
  error?: string;
  finishedAt: string;
}

/** open/<digest>.json: what must be cancelled if the transfer fails now. */
export interface OpenRecord {
  digest: string;
  /** The staged object and its multipart upload (while staging). */
  stage?: { key: string; uploadId?: string };
  /**
   * The destination's upload session (while uploading): its newest Location and the offset that Location
   * stands at, kept here rather than in the workflow state (schemas.ts UploadState.session names it).
   */
  upload?: { repository: string; location: string; session?: string; offset?: number };
}

/** What the execution returns, and what GET /transfers/{id} shows next to the status. */
export interface TransferSummary {
  source: string;
  destination: string;
  digest: string;
  tags: string[];
  upToDate: boolean;
  manifests: number;
  blobs: { total: number; copied: number; mounted: number; skipped: number };
  bytes: number;
  bytesSent: number;
}

/** report.json: the whole story, per blob. */
export interface TransferReport {
  id: string;
  status: "SUCCEEDED" | "FAILED";
  source: string;
  destination: string;
  digest?: string;
  tags: string[];
  upToDate: boolean;
  manifests: ManifestReport[];
  blobs: BlobReport[];
  notes: string[];
  totals?: Totals;
  error?: { Error: string; Cause: string };
  finishedAt: string;
}

export async function writeBlobRecord(
  staging: StagingStore,
  prefix: string,
  rec: Omit<BlobRecord, "finishedAt">,
) {
  await putJson(staging, blobReportKey(prefix, rec.digest), { ...rec, finishedAt: new Date().toISOString() });
}

export function readBlobRecord(staging: StagingStore, prefix: string, digest: string) {
  return getJson<BlobRecord>(staging, blobReportKey(prefix, digest));
}

/** Merges `patch` into the blob's open record (creating it). */
export async function recordOpen(staging: StagingStore, prefix: string, patch: OpenRecord): Promise<void> {
  const key = openKey(prefix, patch.digest);
  const current = (await getJson<OpenRecord>(staging, key)) ?? { digest: patch.digest };
  await putJson(staging, key, { ...current, ...patch });
}
