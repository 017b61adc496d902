/**
 * Bulk step 1, Enumerate — the catalog (or the given repositories) under the source prefix, filtered by
 * name; each repository's tags, filtered (include/exclude, semver range, latest N); tags matching an
 * immutable pattern are left out when the destination already has them (never overwritten); repositories
 * whose source or destination the deployment's allow-lists refuse are left out (recorded, never listed).
 * Writes the
 * copy requests as JSONL (`bulk/<id>/items.jsonl`: one copy-image execution input per line) for the
 * Distributed Map's ItemReader, and returns the keys, not the items.
 */
import { mapLimit } from "../../concurrency.ts";
import { formatRepository, parseRepository, type Repository } from "../../registry/reference.ts";
import { putJson } from "../../staging/types.ts";
import type { StepDeps } from "../deps.ts";
import { ValidationError } from "../errors.ts";
import { matchesAny, nameSelected, parseRange, selectTags } from "../filters.ts";
import { bulkPrefix, itemsKey, resultsPrefix, safeId } from "../keys.ts";
import { POLICY_ENV } from "../names.ts";
import { checkLocationAllowed, isRepositoryAllowed } from "../policy.ts";
import {
  type BulkJob,
  type BulkRequest,
  type CopyRequest,
  EnumerateEventSchema,
  validate,
} from "../schemas.ts";
import { guard } from "./guard.ts";

export interface EnumerateResult {
  job: BulkJob;
  itemsKey: string;
  resultsPrefix: string;
  count: number;
  repositories: number;
  /** Immutable tags the destination already had. */
  skipped: number;
  /** Repositories left out because the allow-lists refuse their source or destination. */
  refused: number;
  concurrency: number;
  toleratedFailurePercentage: number;
}

export interface EnumerationRecord {
  repositories: string[];
  items: number;
  skipped: { source: string; destination: string; reason: string }[];
  /** Repositories (not tags: their tags are never listed) the allow-lists refuse. */
  refused?: { source: string; destination: string; reason: string }[];
}

/** `host[/prefix]` → host and prefix ("" when none). */
export function splitLocation(s: string): { host: string; prefix: string } {
  const i = s.indexOf("/");
  return i < 0
    ? { host: s, prefix: "" }
    : { host: s.slice(0, i), prefix: s.slice(i + 1).replace(/\/+$/, "") };
}

export const enumerate = guard(async (event: unknown, deps: StepDeps): Promise<EnumerateResult> => {
  const { request, executionName } = validate(EnumerateEventSchema, event, "Enumerate input");
  const { staging } = deps;
  const id = safeId(executionName);
  const prefix = bulkPrefix(id);
  const job: BulkJob = { id, prefix, source: request.source, destination: request.destination };
  const { items, record } = await enumerateImages(request, deps);
  const key = itemsKey(prefix);
  await staging.putObject(
    key,
    items.map((i) => JSON.stringify(i)).join("\n") + (items.length ? "\n" : ""),
    "application/jsonl",
  );
  await putJson(staging, `${prefix}enumeration.json`, record);
  return {
    job,
    itemsKey: key,
    resultsPrefix: resultsPrefix(prefix),
    count: items.length,
    repositories: record.repositories.length,
    skipped: record.skipped.length,
    refused: record.refused!.length,
    concurrency: budgetedConcurrency(request.concurrency ?? 10, request.source, deps),
    toleratedFailurePercentage: request.toleratedFailurePercentage ?? 0,
  };
});

/**
 * The Distributed Map's concurrency, bounded by the source's rate limit as Enumerate's own requests saw it
 * (registry/http/rate-budget.ts): no more images at once than pulls left — each image's copy takes at
 * least one. Without rate-limit headers, the request's concurrency.
 */
export function budgetedConcurrency(asked: number, source: string, deps: Pick<StepDeps, "client">): number {
  const registry = source.split("/")[0]!;
  const seen = deps.client.options.rateBudget?.summary().find((b) => b.registry === registry);
  return seen ? Math.max(1, Math.min(asked, seen.remaining)) : asked;
}

/**
 * The images of a bulk migration, changing nothing: the copy requests (one per selected tag) and what
 * was left out (immutable tags already at the destination, repositories the allow-lists refuse). The
 * Enumerate step writes them to staging; `ferry sync --dry-run` decides each one (shared/transfer/dry-run.ts).
 */
export async function enumerateImages(
  request: BulkRequest,
  deps: Pick<StepDeps, "client" | "policy">,
): Promise<{ items: CopyRequest[]; record: EnumerationRecord }> {
  const { client } = deps;
  if (request.tags?.semver !== undefined) {
    try {
      parseRange(request.tags.semver);
    } catch (e) {
      throw new ValidationError(`invalid tags.semver: ${(e as Error).message}`);
    }
  }
  // Before any request: no catalog of a registry the deployment may not read, nothing for one it may
  // not write to (a state machine started directly bypasses the schedule function's check).
  checkLocationAllowed(deps.policy, "sources", request.source);
  checkLocationAllowed(deps.policy, "destinations", request.destination);
  const src = splitLocation(request.source);
  const dst = splitLocation(request.destination);

  let names: string[];
  if (request.repositories) names = request.repositories.map((r) => r.replace(/^\/+|\/+$/g, ""));
  else {
    names = [];
    const under = src.prefix ? `${src.prefix}/` : "";
    for await (const full of client.catalog(src.host))
      if (full.startsWith(under)) names.push(full.slice(under.length));
  }
  names = names.filter((n) => n && nameSelected(n, request.include, request.exclude)).sort();

  const repo = (loc: { host: string; prefix: string }, rel: string): Repository =>
    parseRepository(`${loc.host}/${loc.prefix ? `${loc.prefix}/` : ""}${rel}`);
  const record: EnumerationRecord = { repositories: names, items: 0, skipped: [], refused: [] };
  const perRepo = await mapLimit(names, 8, async (rel) => {
    const from = repo(src, rel);
    const to = repo(dst, rel);
    const refusedBy = !isRepositoryAllowed(deps.policy, "sources", from)
      ? "sources"
      : !isRepositoryAllowed(deps.policy, "destinations", to)
        ? "destinations"
        : undefined;
    if (refusedBy) {
      record.refused!.push({
        source: formatRepository(from),
        destination: formatRepository(to),
        reason: `not allowed by ${POLICY_ENV[refusedBy]}`,
      });
      return [];
    }
    const all: string[] = [];
    for await (const t of client.tags(from)) all.push(t);
    const tags = selectTags(all, request.tags ?? {});
    const items: CopyRequest[] = [];
    for (const tag of tags) {
      const source = `${formatRepository(from)}:${tag}`;
      const destination = `${formatRepository(to)}:${tag}`;
      if (matchesAny(tag, request.tags?.immutable) && (await client.headManifest({ ...to, tag }))) {
        record.skipped.push({ source, destination, reason: "immutable tag already at the destination" });
        continue;
      }
      items.push({ source, destination, ...(request.options ? { options: request.options } : {}) });
    }
    return items;
  });
  const items = perRepo.flat();
  record.items = items.length;
  return { items, record };
}
