/**
 * How the workers of a distributed `ferry bench` hand their results over: through a staging store, not
 * through the state machine, whose payloads are capped at 256 KiB (a long run's per-second series and
 * histograms can exceed that).
 *
 * - worker(WorkerInput) → { worker, resultKey }: runs one worker's share of the load and writes its
 *   result (serialised HDR histograms, counters, created images) to `bench/<runId>/worker-<n>.json`;
 * - aggregate({ results: [{ resultKey }, …] }) → { resultKey, bucket? }: reads them, merges them exactly
 *   (histograms add bucket by bucket, counters add) and writes `bench/<runId>/result.json`, which the CLI
 *   reads back to print the same report as a local run. The objects stay for the bucket's lifecycle rule.
 *
 * Locally the store is a temporary directory (run.ts); on AWS the staging bucket (lambda.ts).
 */
import { posix } from "node:path";
import { FerryError } from "../shared/registry/errors.ts";
import { getJson, putJson, type StagingStore } from "../shared/staging/types.ts";
import { mergeWorkerResults, type WorkerDeps, type WorkerInput, type WorkerResult } from "./runner.ts";
import { runAnyWorker } from "./worker.ts";

/** Where a result rests in the staging store (and, for the merged one, in which bucket). */
export interface StoredResult {
  resultKey: string;
  worker?: number;
  bucket?: string;
}

export interface AggregateInput {
  results: StoredResult[];
}

/** The staging prefix of one run's results. */
export const benchPrefix = (runId: string): string => `bench/${runId}/`;

/** Where worker `worker` of run `runId` writes its result. */
export const workerResultKey = (runId: string, worker: number): string =>
  `${benchPrefix(runId)}worker-${worker}.json`;

/** A worker handler writing its result to `store` (local fan-out: a temporary directory). */
export function makeWorkerHandler(
  deps: WorkerDeps & { store: StagingStore },
): (input: WorkerInput) => Promise<StoredResult> {
  return async (input) => {
    const ok =
      typeof input?.config?.runId === "string" &&
      /^[a-z0-9]+$/.test(input.config.runId) &&
      Number.isInteger(input.worker) &&
      Number.isInteger(input.workers) &&
      input.worker >= 0 &&
      input.worker < input.workers &&
      Array.isArray(input.targets);
    if (!ok)
      throw new FerryError(
        "USAGE",
        "bench worker: expected { config (with runId), worker, workers, targets } as the fan-out passes it",
      );
    const result = await runAnyWorker(input, deps);
    const resultKey = workerResultKey(input.config.runId, input.worker);
    await putJson(deps.store, resultKey, result);
    return { worker: input.worker, resultKey };
  };
}

/** An aggregate handler reading the workers' results from `store` and writing their exact merge. */
export function makeAggregateHandler(store: StagingStore): (input: AggregateInput) => Promise<StoredResult> {
  return async (input) => {
    const keys = Array.isArray(input?.results) ? input.results.map((r) => r?.resultKey) : [];
    if (keys.length === 0 || keys.some((k) => typeof k !== "string"))
      throw new FerryError("USAGE", "bench aggregate: expected { results: [{ resultKey }, …] }");
    const dirs = new Set(keys.map((k) => posix.dirname(k!)));
    if (dirs.size !== 1 || !`${[...dirs][0]}/`.startsWith("bench/"))
      throw new FerryError("USAGE", `bench aggregate: results of one run under bench/<runId>/ expected`);
    const results = await Promise.all(
      keys.map(async (key) => {
        const r = await getJson<WorkerResult>(store, key!);
        if (!r) throw new FerryError("WORKFLOW", `bench aggregate: ${store.location}/${key} does not exist`);
        return r;
      }),
    );
    const resultKey = `${[...dirs][0]}/result.json`;
    await putJson(store, resultKey, mergeWorkerResults(results));
    return { resultKey, ...(store.bucket ? { bucket: store.bucket } : {}) };
  };
}

/** Reads a result written by the handlers above. */
export async function readResult(store: StagingStore, key: string): Promise<WorkerResult> {
  const r = await getJson<WorkerResult>(store, key);
  if (!r) throw new FerryError("WORKFLOW", `bench result ${store.location}/${key} does not exist`);
  return r;
}
