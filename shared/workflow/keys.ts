/**
 * Where a transfer keeps its things in staging. Everything of one execution lives under one prefix, so
 * cleanup is a prefix delete and the bucket's lifecycle rule (infra) catches whatever is left.
 *
 *   transfers/<id>/plan.json            manifests (exact bytes, base64) and blobs — the plan
 *   transfers/<id>/report.json          the final report (status, per-blob outcome)
 *   transfers/<id>/blobs/<alg>-<hex>.json   one blob's outcome, written when it is done
 *   transfers/<id>/open/<alg>-<hex>.json    an open multipart upload / registry session (for cleanup)
 *   transfers/<id>/parts/<alg>-<hex>.json   the parts staged so far (ETags, for CompleteMultipartUpload)
 *   transfers/<id>/data/<alg>-<hex>         the staged blob (keyed by digest)
 *   bulk/<id>/items.jsonl               a bulk migration's images, one copy request per line
 *   bulk/<id>/results/                  the Distributed Map's ResultWriter output
 *   bulk/<id>/summary.json              the migration's summary
 *   bulk/<id>/failures.txt              the images that failed, in `ferry copy --from-file` format
 */

/** A Step Functions execution name made safe as one key segment (≤ 80 characters). */
export function safeId(name: string): string {
  const id = name.replace(/[^A-Za-z0-9._=+@-]/g, "_").slice(0, 80);
  if (!id || id === "." || id === "..")
    throw new TypeError(`unusable execution name ${JSON.stringify(name)}`);
  return id;
}

export function digestSegment(digest: string): string {
  return digest.replace(":", "-");
}

export const transferPrefix = (id: string): string => `transfers/${safeId(id)}/`;
export const planKey = (prefix: string): string => `${prefix}plan.json`;
export const reportKey = (prefix: string): string => `${prefix}report.json`;
export const blobReportKey = (prefix: string, digest: string): string =>
  `${prefix}blobs/${digestSegment(digest)}.json`;
export const openKey = (prefix: string, digest: string): string =>
  `${prefix}open/${digestSegment(digest)}.json`;
export const openPrefix = (prefix: string): string => `${prefix}open/`;
export const partsKey = (prefix: string, digest: string): string =>
  `${prefix}parts/${digestSegment(digest)}.json`;
export const dataKey = (prefix: string, digest: string): string => `${prefix}data/${digestSegment(digest)}`;

export const bulkPrefix = (id: string): string => `bulk/${safeId(id)}/`;
export const itemsKey = (prefix: string): string => `${prefix}items.jsonl`;
export const resultsPrefix = (prefix: string): string => `${prefix}results/`;
export const summaryKey = (prefix: string): string => `${prefix}summary.json`;
export const failuresKey = (prefix: string): string => `${prefix}failures.txt`;
