/**
 * The Lambda handlers of distributed `ferry bench` (the Task states of fanout.asl.json, deployed by the CDK
 * app with `benchWorkers`): JSON in, JSON out; results go to the staging bucket (results.ts).
 *
 * Environment: STAGING_BUCKET (STAGING_ENDPOINT for an S3-compatible endpoint). Registry credentials, in
 * order: the stack's registry secrets (REGISTRY_SECRETS, as for the transfer steps), ECR tokens (inside
 * ECR_ROLE_ARN when set: the worker has no ECR permission of its own), FERRY_USERNAME / FERRY_PASSWORD
 * (limited to FERRY_REGISTRY), a Docker config file. They are never part of the state machine's input.
 * As every registry client in a Lambda function, the worker's connects to public addresses only, and to
 * the registries of PRIVATE_REGISTRIES (shared/aws/lambda.ts lambdaConnection): a target, a redirect
 * or a token realm on loopback, link-local or a private range is refused.
 */
import { requireEnv } from "../shared/aws/env.ts";
import { lambdaConnection, registryCredentials } from "../shared/aws/lambda.ts";
import {
  ChainCredentials,
  DockerConfigCredentials,
  EnvCredentials,
} from "../shared/registry/auth/credentials.ts";
import { S3StagingStore } from "../shared/staging/s3.ts";
import type { StagingStore } from "../shared/staging/types.ts";
import {
  type AggregateInput,
  makeAggregateHandler,
  makeWorkerHandler,
  type StoredResult,
} from "./results.ts";
import type { WorkerInput } from "./runner.ts";

let lambdaStore: StagingStore | undefined;
function stagingFromEnv(env: NodeJS.ProcessEnv = process.env): StagingStore {
  lambdaStore ??= new S3StagingStore({
    bucket: requireEnv(env, "STAGING_BUCKET"),
    ...(env.STAGING_ENDPOINT ? { endpoint: env.STAGING_ENDPOINT } : {}),
  });
  return lambdaStore;
}

/** Built once per sandbox, as the transfer steps' dependencies are (functions/lib/runtime.ts). */
let worker: ((input: WorkerInput) => Promise<StoredResult>) | undefined;

/** Lambda: one worker, its result to the staging bucket. */
export async function workerHandler(input: WorkerInput): Promise<StoredResult> {
  worker ??= makeWorkerHandler({
    clientOptions: {
      credentials: new ChainCredentials(
        ...registryCredentials(process.env),
        new EnvCredentials(),
        new DockerConfigCredentials(),
      ),
      ...lambdaConnection(process.env),
    },
    store: stagingFromEnv(),
  });
  return worker(input);
}

/** Lambda: the merge of the workers' results, to the staging bucket. */
export async function aggregateHandler(input: AggregateInput): Promise<StoredResult> {
  return makeAggregateHandler(stagingFromEnv())(input);
}
