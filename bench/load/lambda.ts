/**
 * Lambda entry points for distributed `ferry bench` (the CDK app may wire them to the Task states of
 * fanout.asl.json): plain async functions taking and returning JSON.
 *
 * - workerHandler(WorkerInput) → WorkerResult: runs one worker's share of the load; the result carries
 *   serialised HDR histograms (encodeIntoCompressedBase64) and counters, never raw samples.
 * - aggregateHandler({ results }) → WorkerResult: the exact merge (histograms add bucket by bucket,
 *   counters add); its output has the same shape, so aggregations can be merged again.
 *
 * Credentials in Lambda come from the environment (FERRY_USERNAME / FERRY_PASSWORD, limited to
 * FERRY_REGISTRY) or a Docker config file; they are never part of the state machine's input.
 */
import {
  ChainCredentials,
  DockerConfigCredentials,
  EnvCredentials,
} from "../../shared/registry/auth/credentials.ts";
import {
  mergeWorkerResults,
  runWorker,
  type WorkerDeps,
  type WorkerInput,
  type WorkerResult,
} from "./runner.ts";

export type { WorkerInput, WorkerResult };

export interface AggregateInput {
  results: WorkerResult[];
}

/** A worker handler bound to local dependencies (credentials, live view): used by the local fan-out. */
export function makeWorkerHandler(deps: WorkerDeps): (input: WorkerInput) => Promise<WorkerResult> {
  return (input) => runWorker(input, deps);
}

export async function workerHandler(input: WorkerInput): Promise<WorkerResult> {
  return runWorker(input, {
    clientOptions: { credentials: new ChainCredentials(new EnvCredentials(), new DockerConfigCredentials()) },
  });
}

export async function aggregateHandler(input: AggregateInput): Promise<WorkerResult> {
  if (!Array.isArray(input?.results))
    throw new TypeError("aggregateHandler: expected { results: WorkerResult[] }");
  return mergeWorkerResults(input.results);
}
