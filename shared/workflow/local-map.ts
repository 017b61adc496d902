/**
 * The Distributed Map's AWS-side pieces, emulated for local runs: what Step Functions itself does around
 * a Map's items on AWS — the ItemReader (an object of the staging bucket) with its ItemBatcher, the
 * ResultWriter (manifest.json, SUCCEEDED_0.json / FAILED_0.json) and the tolerated-failure check.
 *
 * aws-local-stepfunctions runs Map states inline only; local-runner.ts's `localizeDefinition` (the one
 * place a definition is changed) turns each Distributed Map into `<Map>ReadItems` → inline Map →
 * `<Map>WriteResults`, two Task states named here as SyntheticTask kinds and bound by `mapStandIns`.
 */
import { putJson, type StagingStore } from "../staging/types.ts";
import { LOCAL_ACCOUNT, LOCAL_REGION, localExecutionArn } from "./definitions.ts";

/** A JSON value: what a Task state's handler takes and returns. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A Task state's handler, as aws-local-stepfunctions calls it. */
export type LocalHandler = (input: Json) => Promise<Json>;

/** The two stand-ins a Distributed Map becomes, around its inline Map. */
export type SyntheticTask = "read-items" | "write-results";

/**
 * Where the inline Map records each item's outcome (`{Status, Output}` or the caught `{Error, Cause}`):
 * localizeDefinition wraps the item processor so, and WriteResults reads it.
 */
export const OUTCOME = "__localOutcome";

/**
 * Binds each synthetic state of a localised definition to its stand-in. `execution` is the execution's
 * name (the ResultWriter's prefix and the child executions' names derive from it).
 */
export function mapStandIns(
  synthetic: Record<string, SyntheticTask>,
  staging: StagingStore | undefined,
  execution: string,
): Record<string, LocalHandler> {
  const handlers: Record<string, LocalHandler> = {};
  for (const [state, kind] of Object.entries(synthetic)) {
    handlers[state] = (i) => {
      if (!staging)
        throw new TypeError(
          "runBulkWorkflow with `invoke` needs `staging` (the functions' bucket) for its Map",
        );
      return kind === "read-items" ? readItems(i, staging) : writeResults(i, staging, execution);
    };
  }
  return handlers;
}

interface ReadItemsInput {
  reader?: {
    Resource?: string;
    ReaderConfig?: { InputType?: string; MaxItems?: number };
    Parameters?: { Bucket?: string; Key?: string };
  };
  items?: Json[];
  batcher?: { MaxItemsPerBatch?: number; BatchInput?: Json };
}

/** The ItemReader (S3 getObject of the staging bucket) and ItemBatcher, locally. */
async function readItems(input: Json, staging: StagingStore): Promise<Json> {
  const { reader, batcher } = input as ReadItemsInput;
  let items: Json[];
  if (reader) {
    const key = reader.Parameters?.Key;
    if (!key) throw new Error("ItemReader without Parameters.Key");
    const bytes = await staging.getObject(key);
    if (!bytes)
      throw Object.assign(new Error(`ItemReader: ${key} does not exist in staging`), {
        name: "States.ItemReaderFailed",
      });
    const text = bytes.toString("utf8");
    const type = reader.ReaderConfig?.InputType ?? "JSON";
    if (type === "JSONL")
      items = text
        .split("\n")
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as Json);
    else if (type === "JSON") items = JSON.parse(text) as Json[];
    else if (type === "CSV") {
      const [head, ...lines] = text.split(/\r?\n/).filter((l) => l.trim());
      const cols = (head ?? "").split(",");
      items = lines.map((l) => Object.fromEntries(l.split(",").map((v, i) => [cols[i] ?? `${i}`, v])));
    } else throw new Error(`ItemReader InputType ${type} is not supported locally`);
    const max = reader.ReaderConfig?.MaxItems;
    if (max) items = items.slice(0, max);
  } else items = ((input as ReadItemsInput).items ?? []) as Json[];
  if (batcher) {
    const size = Math.max(1, batcher.MaxItemsPerBatch ?? items.length);
    const batches: Json[] = [];
    for (let i = 0; i < items.length; i += size)
      batches.push({
        Items: items.slice(i, i + size),
        ...(batcher.BatchInput ? { BatchInput: batcher.BatchInput } : {}),
      });
    items = batches;
  }
  return items;
}

interface WriteResultsInput {
  results: ({ [OUTCOME]?: { Status?: string; Output?: Json; Error?: string; Cause?: string } } & Record<
    string,
    Json
  >)[];
  writer?: { Parameters?: { Bucket?: string; Prefix?: string } };
  ToleratedFailurePercentage?: number;
  ToleratedFailureCount?: number;
}

/** The ResultWriter (same files as Step Functions writes) and the tolerated-failure check, locally. */
async function writeResults(input: Json, staging: StagingStore, execution: string): Promise<Json> {
  const {
    results,
    writer,
    ToleratedFailurePercentage: pct,
    ToleratedFailureCount: count,
  } = input as unknown as WriteResultsInput;
  const mapRunArn = `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:mapRun:local/${execution}`;
  const succeeded: Json[] = [];
  const failed: Json[] = [];
  const outputs: Json[] = [];
  results.forEach((r, i) => {
    const { [OUTCOME]: outcome, ...item } = r;
    const entry = {
      Name: `${execution}-${i}`,
      ExecutionArn: localExecutionArn("ferry-bulk-migrate-map", `${execution}-${i}`),
      Input: JSON.stringify(item),
      ...(outcome?.Status === "SUCCEEDED"
        ? { Status: "SUCCEEDED", Output: JSON.stringify(outcome.Output ?? null) }
        : { Status: "FAILED", Error: outcome?.Error ?? "States.Unknown", Cause: outcome?.Cause ?? "" }),
    };
    (entry.Status === "SUCCEEDED" ? succeeded : failed).push(entry as Json);
    outputs.push(outcome?.Status === "SUCCEEDED" ? (outcome.Output ?? null) : null);
  });
  let details: Json = null;
  if (writer?.Parameters?.Prefix !== undefined) {
    const base = `${writer.Parameters.Prefix.replace(/\/?$/, "/")}local-${execution}/`;
    const files: Record<string, { Key: string; Size: number }[]> = { SUCCEEDED: [], FAILED: [], PENDING: [] };
    for (const [status, list] of [
      ["SUCCEEDED", succeeded],
      ["FAILED", failed],
    ] as const) {
      if (!list.length) continue;
      const key = `${base}${status}_0.json`;
      const body = JSON.stringify(list);
      await staging.putObject(key, body, "application/json");
      files[status]!.push({ Key: key, Size: Buffer.byteLength(body) });
    }
    const manifestKey = `${base}manifest.json`;
    await putJson(staging, manifestKey, {
      DestinationBucket: writer.Parameters.Bucket,
      MapRunArn: mapRunArn,
      ResultFiles: files,
    });
    details = { Bucket: writer.Parameters.Bucket ?? null, Key: manifestKey };
  }
  // As Step Functions: no tolerance given → any failure fails the Map; either threshold exceeded fails it.
  const total = results.length;
  const exceeded =
    (count !== undefined && failed.length > count) ||
    (pct !== undefined && failed.length * 100 > pct * total) ||
    (count === undefined && pct === undefined && failed.length > 0);
  if (exceeded) {
    const e = new Error(
      `${failed.length} of ${total} item(s) failed, more than the ${pct ?? 0}% / ${count ?? 0} tolerated`,
    );
    e.name = "States.ExceedToleratedFailureThreshold";
    throw e;
  }
  if (details) return { MapRunArn: mapRunArn, ResultWriterDetails: details };
  return outputs;
}
