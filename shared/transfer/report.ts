/** What a transfer did, per blob, per manifest and in total; printed as a table or as JSON. */

export type BlobOutcome = "copied" | "mounted" | "skipped";

export interface BlobReport {
  digest: string;
  mediaType: string;
  size: number;
  action: BlobOutcome;
  /** Bytes sent to the destination (retries included; 0 when skipped or mounted). */
  bytesSent: number;
  seconds: number;
  /** The blob was handled by another image of the same run (single-flight). */
  shared?: boolean;
}

export interface ManifestReport {
  digest: string;
  mediaType: string;
  platform?: string;
  /** Tags put on it (the root only). */
  tags: string[];
}

export interface ImageReport {
  source: string;
  destination: string;
  /** Digest of what the destination tags now point to. */
  digest: string;
  /** Nothing had to be moved: the destination already had this digest under the tag. */
  upToDate: boolean;
  manifests: ManifestReport[];
  blobs: BlobReport[];
  referrers: ImageReport[];
  notes: string[];
  totals: Totals;
}

/**
 * Counts, the same in the table and in JSON. `blobs` counts every image's blobs; each is counted once
 * more under what happened to it: `copied`, `mounted`, `skipped` (already present at the destination),
 * or `shared` — handled for another image of the same run (its action is that image's, counted there).
 */
export interface Totals {
  images: number;
  blobs: number;
  copied: number;
  mounted: number;
  skipped: number;
  shared: number;
  /** Bytes of all blobs referenced. */
  bytes: number;
  /** Bytes sent to destinations. */
  bytesSent: number;
  seconds: number;
}

export function emptyTotals(): Totals {
  return {
    images: 0,
    blobs: 0,
    copied: 0,
    mounted: 0,
    skipped: 0,
    shared: 0,
    bytes: 0,
    bytesSent: 0,
    seconds: 0,
  };
}

export function sumTotals(blobs: BlobReport[], seconds: number, images = 1): Totals {
  const t = emptyTotals();
  t.images = images;
  t.seconds = seconds;
  for (const b of blobs) {
    t.blobs++;
    if (b.shared) t.shared++;
    else t[b.action]++;
    t.bytes += Math.max(0, b.size);
    t.bytesSent += b.bytesSent;
  }
  return t;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

const short = (d: string) => d.replace(/^sha256:/, "").slice(0, 12);

/** A human table of one or more image reports. */
export function formatReport(reports: ImageReport[], totalSeconds?: number): string {
  const lines: string[] = [];
  for (const r of reports) {
    lines.push(`${r.source} → ${r.destination}`);
    lines.push(`  digest ${r.digest}${r.upToDate ? "  (already up to date: no blob bytes moved)" : ""}`);
    for (const n of r.notes) lines.push(`  note: ${n}`);
    for (const m of r.manifests) {
      lines.push(
        `  manifest ${short(m.digest)}  ${m.mediaType}${m.platform ? `  ${m.platform}` : ""}${m.tags.length ? `  tags: ${m.tags.join(", ")}` : ""}`,
      );
    }
    if (r.blobs.length) {
      lines.push("  blob          size        action    sent        time");
      for (const b of r.blobs) {
        lines.push(
          `  ${short(b.digest)}  ${formatBytes(b.size).padEnd(10)}  ${(b.action + (b.shared ? "*" : "")).padEnd(8)}  ${formatBytes(b.bytesSent).padEnd(10)}  ${b.seconds.toFixed(2)}s`,
        );
      }
    }
    for (const ref of r.referrers)
      lines.push(`  referrer ${ref.digest} (${ref.manifests[0]?.mediaType ?? ""})`);
  }
  const t = runTotals(reports, totalSeconds);
  const secs = t.seconds;
  const rate = secs > 0 ? ` (${formatBytes(t.bytesSent / secs)}/s)` : "";
  lines.push(
    `${t.images} image(s), ${t.blobs} blob(s): ${t.copied} copied, ${t.mounted} mounted, ${t.skipped} skipped (already present)` +
      `${t.shared ? `, ${t.shared} shared*` : ""}; ${formatBytes(t.bytesSent)} sent in ${secs.toFixed(2)}s${rate}`,
  );
  if (t.shared) lines.push("  * shared: handled once, for an earlier image of this run (counted there)");
  return lines.join("\n");
}

/** The totals of a run of several images (the table's last line; `totals` of `--json`). */
export function runTotals(reports: ImageReport[], totalSeconds?: number): Totals {
  const secs = totalSeconds ?? Math.max(0, ...reports.map((r) => r.totals.seconds));
  return sumTotals(
    reports.flatMap((r) => r.blobs),
    secs,
    reports.length,
  );
}
