/**
 * Dry runs (`ferry copy --dry-run`, `ferry sync --dry-run`): what a copy of each image would do, decided
 * by the rules the copy itself applies — the up-to-date check (upToDateDigest), the plan (planTransfer),
 * `--no-clobber` (clobberedTag) — and a `HEAD` of every blob at the destination. Nothing is written: the
 * destination sees only `GET /v2/`, `HEAD` of manifests and blobs, and (ECR repository creation) a
 * read-only `DescribeRepositories`.
 *
 * Bytes are counted as the engine moves them: once per blob and destination registry in a run. A blob
 * missing from a repository is *copied* by the first image that needs it and *mounted* by the others
 * (and when the source is on the destination registry, or another image's destination repository of
 * that registry already has it); only copied blobs move bytes. Images are decided concurrently, then
 * blobs are attributed in list order, so the same list always gives the same numbers. (The workflow
 * copies each image in its own execution: two images sharing a missing blob that run at the same time
 * may each move it.)
 */
import { mapLimit } from "../concurrency.ts";
import type { Descriptor, Platform } from "../registry/manifest.ts";
import { formatRepository } from "../registry/reference.ts";
import { clobberedTag, planTransfer, upToDateDigest } from "./plan.ts";
import { type RegistrySink, RegistrySource } from "./registry-endpoints.ts";
import { formatBytes } from "./report.ts";
import type { DestinationRepositories } from "./repositories.ts";
import type { ImageSource } from "./types.ts";

export type DryRunAction = "copy" | "up-to-date" | "skipped" | "refused" | "failed";

export interface DryRunImage {
  /** As the input named them. */
  source: string;
  destination: string;
  action: DryRunAction;
  /** The digest the destination tags would point to (copy, up-to-date). */
  digest?: string;
  tags: string[];
  /** Why skipped, refused or failed. */
  reason?: string;
  /** The destination repository is missing and would be created (repository creation on). */
  createsRepository?: boolean;
  blobs: { total: number; present: number; mount: number; copy: number };
  /** Bytes of every blob the image references. */
  size: number;
  /** Bytes this image would send to the destination. */
  bytes: number;
  notes: string[];
}

export interface DryRunTotals {
  images: number;
  copy: number;
  upToDate: number;
  skipped: number;
  refused: number;
  failed: number;
  /** Blobs that would be copied (bytes moved), and those bytes. */
  blobs: number;
  bytes: number;
  /** Destination repositories that would be created. */
  repositories: number;
}

/** One image to decide, or one already decided by the caller (immutable tags, allow-lists). */
export type DryRunItem =
  | {
      source: ImageSource;
      sink: RegistrySink;
      sourceText: string;
      destinationText: string;
      tags: string[];
      platforms?: Platform[];
      noClobber?: boolean;
      force?: boolean;
    }
  | {
      sourceText: string;
      destinationText: string;
      tags: string[];
      decided: { action: "skipped" | "refused" | "failed"; reason: string };
    };

export interface DryRunOptions {
  /** Repository creation (ECR): missing repositories are reported as created, never created. */
  repositories?: DestinationRepositories;
  /** Images decided at once. Default 8. */
  concurrency?: number;
}

interface Decided {
  image: DryRunImage;
  /** Blobs missing from the image's destination repository, before attribution. */
  missing: Descriptor[];
  present: Descriptor[];
  registry?: string;
  sameRegistrySource: boolean;
}

/** Decides every item; never throws for one image (it is `failed`, with the reason). */
export async function dryRun(items: readonly DryRunItem[], opts: DryRunOptions = {}): Promise<DryRunImage[]> {
  const heads = new Map<string, Promise<boolean>>();
  const repoChecks = new Map<string, Promise<string>>();
  const decided = await mapLimit(items, opts.concurrency ?? 8, (item) =>
    decide(item, opts.repositories, heads, repoChecks),
  );
  // Attribution in list order: the first image needing a blob on a registry copies it, the rest mount.
  const claimed = new Set<string>();
  for (const d of decided) {
    if (!d.registry) continue;
    for (const b of d.present) claimed.add(`${d.registry}\n${b.digest}`);
  }
  for (const d of decided) {
    if (d.image.action !== "copy" || !d.registry) continue;
    for (const b of d.missing) {
      const key = `${d.registry}\n${b.digest}`;
      if (d.sameRegistrySource || claimed.has(key)) d.image.blobs.mount++;
      else {
        d.image.blobs.copy++;
        d.image.bytes += Math.max(0, b.size);
        claimed.add(key);
      }
    }
  }
  return decided.map((d) => d.image);
}

async function decide(
  item: DryRunItem,
  repositories: DestinationRepositories | undefined,
  heads: Map<string, Promise<boolean>>,
  repoChecks: Map<string, Promise<string>>,
): Promise<Decided> {
  const image: DryRunImage = {
    source: item.sourceText,
    destination: item.destinationText,
    action: "copy",
    tags: item.tags,
    blobs: { total: 0, present: 0, mount: 0, copy: 0 },
    size: 0,
    bytes: 0,
    notes: [],
  };
  if ("decided" in item) {
    Object.assign(image, item.decided);
    return { image, missing: [], present: [], sameRegistrySource: false };
  }
  const { source, sink } = item;
  const repoKey = formatRepository(sink.repo);
  const out: Decided = {
    image,
    missing: [],
    present: [],
    registry: sink.repo.registry,
    sameRegistrySource:
      source instanceof RegistrySource &&
      source.ref.registry === sink.repo.registry &&
      source.ref.repository !== sink.repo.repository,
  };
  try {
    let missingRepository = false;
    if (repositories) {
      let check = repoChecks.get(repoKey);
      if (!check) {
        check = repositories.check(sink.repo);
        repoChecks.set(repoKey, check);
      }
      missingRepository = (await check) === "missing";
      if (missingRepository) image.createsRepository = true;
    }
    const opts = { ...(item.platforms?.length ? { platforms: item.platforms } : {}), force: item.force };
    const upToDate = missingRepository ? undefined : await upToDateDigest(source, sink, item.tags, opts);
    if (upToDate) {
      image.action = "up-to-date";
      image.digest = upToDate;
      return out;
    }
    const plan = await planTransfer(source, item.platforms?.length ? { platforms: item.platforms } : {});
    image.digest = plan.root.raw.digest;
    image.notes.push(...plan.notes);
    image.blobs.total = plan.blobs.length;
    image.size = plan.totalBytes;
    if (item.noClobber && !missingRepository) {
      const c = await clobberedTag(sink, item.tags, image.digest);
      if (c) {
        image.action = "refused";
        image.reason = `${sink.name}:${c.tag} already points to ${c.existing} (not ${image.digest}); --no-clobber`;
        return out;
      }
    }
    const present = await Promise.all(
      plan.blobs.map((b) => {
        if (missingRepository) return false;
        const key = `${repoKey}\n${b.digest}`;
        let head = heads.get(key);
        if (!head) {
          head = sink.hasBlob(b);
          heads.set(key, head);
        }
        return head;
      }),
    );
    plan.blobs.forEach((b, i) => {
      if (present[i]) out.present.push(b);
      else out.missing.push(b);
    });
    image.blobs.present = out.present.length;
  } catch (e) {
    image.action = "failed";
    image.reason = (e as Error).message;
  }
  return out;
}

export function dryRunTotals(images: readonly DryRunImage[]): DryRunTotals {
  const t: DryRunTotals = {
    images: images.length,
    copy: 0,
    upToDate: 0,
    skipped: 0,
    refused: 0,
    failed: 0,
    blobs: 0,
    bytes: 0,
    repositories: 0,
  };
  const repos = new Set<string>();
  for (const i of images) {
    if (i.action === "up-to-date") t.upToDate++;
    else t[i.action]++;
    t.blobs += i.blobs.copy;
    t.bytes += i.bytes;
    if (i.createsRepository) repos.add(i.destination.replace(/[:@][^/]*$/, ""));
  }
  t.repositories = repos.size;
  return t;
}

const short = (d: string) => d.replace(/^sha256:/, "").slice(0, 12);

/** The human table: one line per image (action first), then the totals. */
export function formatDryRun(images: readonly DryRunImage[]): string {
  const lines = ["dry run: nothing was written; what a copy would do with each image"];
  for (const i of images) {
    const what = `${i.action.padEnd(10)}  ${i.source} → ${i.destination}`;
    if (i.action === "copy") {
      const b = i.blobs;
      lines.push(
        `${what}  ${short(i.digest ?? "")}  ${b.total} blob(s): ${b.present} present, ${b.mount} to mount, ${b.copy} to copy; ${formatBytes(i.bytes)} to move` +
          (i.createsRepository ? "; creates the repository" : ""),
      );
    } else if (i.action === "up-to-date") lines.push(`${what}  ${short(i.digest ?? "")}`);
    else lines.push(`${what}  ${i.reason ?? ""}`);
    for (const n of i.notes) lines.push(`            note: ${n}`);
  }
  const t = dryRunTotals(images);
  lines.push(
    `${t.images} image(s): ${t.copy} to copy, ${t.upToDate} up to date, ${t.skipped} skipped, ${t.refused} refused, ${t.failed} failed; ` +
      `${t.blobs} blob(s), ${formatBytes(t.bytes)} would move` +
      (t.repositories ? `; ${t.repositories} repository(ies) to create` : ""),
  );
  return lines.join("\n");
}
