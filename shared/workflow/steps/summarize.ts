/**
 * Bulk step 3, Summarize — reads the Distributed Map's ResultWriter output (manifest.json and the
 * SUCCEEDED_n / FAILED_n files: one entry per image, `Input`/`Output` as JSON strings, `Error`/`Cause` for
 * failures), writes `bulk/<id>/summary.json` and returns a bounded summary. When images failed, it also
 * writes their list, `bulk/<id>/failures.txt`, in the `ferry copy --from-file` format (each line's error
 * as a comment above it: shared/transfer/copy-list.ts), and the summary links it (`failureList`):
 * `ferry copy --from-file failures.txt` retries exactly those. When the Map itself failed (more failures
 * than tolerated), the summary carries `failed: true` and the `{Error, Cause}` the definition's Fail
 * state reports.
 */
import { getJson, putJson, type StagingStore } from "../../staging/types.ts";
import { formatFailureList } from "../../transfer/copy-list.ts";
import type { StepDeps } from "../deps.ts";
import { failuresKey, resultsPrefix, summaryKey } from "../keys.ts";
import type { TransferSummary } from "../records.ts";
import { SummarizeEventSchema, validate } from "../schemas.ts";
import { describeCause } from "./cause.ts";
import type { EnumerationRecord } from "./enumerate.ts";
import { guard } from "./guard.ts";

/** One child execution as the ResultWriter records it. */
export interface ResultEntry {
  Name?: string;
  ExecutionArn?: string;
  Status?: string;
  Input?: string;
  Output?: string;
  Error?: string;
  Cause?: string;
}

export interface ResultManifest {
  ResultFiles?: Record<string, { Key: string; Size?: number }[]>;
}

export interface BulkSummary {
  id: string;
  source: string;
  destination: string;
  status: "SUCCEEDED" | "FAILED";
  images: number;
  succeeded: number;
  failedImages: number;
  /** Immutable tags left alone. */
  skipped: number;
  /** Repositories left out because the deployment's allow-lists refuse them (listed in summary.json). */
  refused: number;
  bytesSent: number;
  /** The first failures (all of them are in summary.json). */
  failures: { source?: string; destination?: string; error: string; cause: string }[];
  /**
   * Where the failed images' list is (`ferry copy --from-file` format), when some failed:
   * `s3://<staging bucket>/bulk/<id>/failures.txt` (locally: the staging directory's file).
   */
  failureList?: string;
  failed: boolean;
  Error?: string;
  Cause?: string;
}

const MAX_FAILURES_IN_STATE = 20;

/** Summarize reads and writes staging only (its Lambda function carries no registry client). */
export type SummarizeDeps = Pick<StepDeps, "staging">;

export const summarize = guard(async (event: unknown, deps: SummarizeDeps): Promise<BulkSummary> => {
  const { state } = validate(SummarizeEventSchema, event, "Summarize input");
  const { job } = state;
  const { staging } = deps;
  const manifestKey =
    state.results?.ResultWriterDetails?.Key ?? (await findManifest(staging, resultsPrefix(job.prefix)));
  const entries: ResultEntry[] = [];
  if (manifestKey) {
    const manifest = (await getJson<ResultManifest>(staging, manifestKey)) ?? {};
    for (const files of Object.values(manifest.ResultFiles ?? {}))
      for (const f of files) entries.push(...((await getJson<ResultEntry[]>(staging, f.Key)) ?? []));
  }
  const enumeration = await getJson<EnumerationRecord>(staging, `${job.prefix}enumeration.json`);
  const all: BulkSummary["failures"] = [];
  let succeeded = 0;
  let bytesSent = 0;
  for (const e of entries) {
    const input = parse<{ source?: string; destination?: string }>(e.Input) ?? {};
    if (e.Status === "SUCCEEDED") {
      succeeded++;
      const out = parse<{ output?: TransferSummary }>(e.Output);
      bytesSent += out?.output?.bytesSent ?? 0;
    } else {
      const { error, cause } = unwrapChildFailure(e.Error ?? e.Status ?? "Failed", e.Cause);
      all.push({
        ...(input.source ? { source: input.source } : {}),
        ...(input.destination ? { destination: input.destination } : {}),
        error,
        cause,
      });
    }
  }
  const failed = Boolean(state.error);
  const summary: BulkSummary = {
    id: job.id,
    source: job.source,
    destination: job.destination,
    status: failed ? "FAILED" : "SUCCEEDED",
    images: entries.length,
    succeeded,
    failedImages: all.length,
    skipped: enumeration?.skipped.length ?? 0,
    refused: enumeration?.refused?.length ?? 0,
    bytesSent,
    failures: all,
    failed,
  };
  if (all.length) {
    const key = failuresKey(job.prefix);
    const header = [
      `ferry bulk migration ${job.id} (${job.source} → ${job.destination}): ${all.length} of ${entries.length} image(s) failed`,
      "re-run exactly these with: ferry copy --from-file <this file>",
    ];
    await staging.putObject(
      key,
      formatFailureList(
        all.map((f) => ({ ...f, error: `${f.error}: ${f.cause}` })),
        header,
      ),
      "text/plain; charset=utf-8",
    );
    summary.failureList = `${staging.location}/${key}`;
  }
  if (state.error) {
    summary.Error = state.error.Error;
    summary.Cause =
      `bulk migration ${job.source} → ${job.destination}: ${describeCause(state.error)}` +
      (all.length
        ? `; ${all.length} image(s) failed, first: ${all[0]!.source ?? "?"}: ${all[0]!.cause}`
        : "");
  }
  await putJson(staging, summaryKey(job.prefix), {
    ...summary,
    skippedImages: enumeration?.skipped ?? [],
    refusedRepositories: enumeration?.refused ?? [],
  });
  return { ...summary, failures: all.slice(0, MAX_FAILURES_IN_STATE) };
});

async function findManifest(staging: StagingStore, prefix: string): Promise<string | undefined> {
  const keys = await staging.list(prefix);
  return keys.find((k) => k.endsWith("/manifest.json") || k === `${prefix}manifest.json`);
}

function parse<T>(s: string | undefined): T | undefined {
  if (!s) return undefined;
  try {
    return JSON.parse(s) as T;
  } catch {
    return undefined;
  }
}

/**
 * A failed child execution's own error. `startExecution.sync` fails with `States.TaskFailed` and a Cause
 * holding the child's description (`{"Error","Cause",...}`); a Lambda's Cause is `{"errorType",
 * "errorMessage"}`; a local run gives the message.
 */
export function unwrapChildFailure(
  error: string,
  cause: string | undefined,
): { error: string; cause: string } {
  const j = parse<{ Error?: unknown; Cause?: unknown; errorType?: unknown; errorMessage?: unknown }>(cause);
  if (j && typeof j === "object") {
    if (typeof j.Error === "string" && typeof j.Cause === "string")
      return unwrapChildFailure(j.Error, j.Cause);
    if (typeof j.errorType === "string" && typeof j.errorMessage === "string")
      return { error: j.errorType, cause: j.errorMessage };
  }
  return { error, cause: cause ?? error };
}
