/**
 * What the step functions need, built once per Lambda container from the environment:
 *   STAGING_BUCKET        the staging bucket (S3)
 *   STEP_BYTES            bytes per stage/upload step (default 2 GiB)
 *   DIRECT_MAX_BYTES      blobs up to this size skip staging (default 32 MiB)
 *   REGISTRY_SECRETS      JSON: registry host → Secrets Manager secret ARN ({"username","password"})
 *   ECR_ROLE_ARN          a role to assume for ECR GetAuthorizationToken (optional)
 *   ALLOWED_SOURCES       JSON array of host[/repository] patterns a copy may read; missing: none
 *   ALLOWED_DESTINATIONS  JSON array of patterns a copy may write; missing: none
 *   PRIVATE_REGISTRIES    JSON array of registries that may be reached on private addresses; missing: none
 *   REGISTRY_TLS          JSON: registry host → secret ARN of its TLS settings ({"ca","cert","key"} PEM;
 *                         shared/aws/tls.ts); such a registry is spoken to over https
 *   HTTPS_PROXY, HTTP_PROXY, NO_PROXY   a forward proxy for registry traffic (shared/registry/http/proxy.ts);
 *                         the AWS SDK's own calls (S3, Secrets Manager) do not use it
 *   ECR_CREATE_REPOSITORIES  JSON settings of ECR repositories to create when a destination repository is
 *                         missing (Resolve only); missing: never create one
 * The AWS clients find their endpoints as the SDK does: AWS_ENDPOINT_URL_S3 / _SECRETS_MANAGER / _ECR point them
 * at local stand-ins (how test/integration/workflow/lambda.test.ts runs these functions, bundled).
 * The registry client refuses every connection to a non-public address (loopback — the Lambda runtime
 * API —, link-local — instance metadata —, private ranges) except to PRIVATE_REGISTRIES, whether the
 * address comes from a reference, a redirect or a token realm. Through a proxy, the proxy may be private
 * (it is configuration) and the target is checked by name before the proxy is asked (see network.ts).
 */

import { EcrRepositories } from "../../shared/aws/ecr-repositories.ts";
import { bytesEnv, type Env, policyFromEnv, repositorySettings, requireEnv } from "../../shared/aws/env.ts";
import { lambdaConnection, registryCredentials } from "../../shared/aws/lambda.ts";
import { ChainCredentials } from "../../shared/registry/auth/credentials.ts";
import { RegistryClient } from "../../shared/registry/client.ts";
import { S3StagingStore } from "../../shared/staging/s3.ts";
import type { StepDeps } from "../../shared/workflow/deps.ts";

let cached: StepDeps | undefined;
let cachedStaging: Pick<StepDeps, "staging"> | undefined;

/** Staging alone (STAGING_BUCKET), for the steps that touch no registry (Summarize). */
export function stagingDeps(env: Env = process.env): Pick<StepDeps, "staging"> {
  cachedStaging ??= { staging: new S3StagingStore({ bucket: requireEnv(env, "STAGING_BUCKET") }) };
  return cachedStaging;
}

export function stepDeps(env: Env = process.env): StepDeps {
  if (cached) return cached;
  const stepBytes = bytesEnv(env, "STEP_BYTES");
  const directMaxBytes = bytesEnv(env, "DIRECT_MAX_BYTES");
  const create = repositorySettings(env);
  const deps: StepDeps = {
    ...stagingDeps(env),
    client: new RegistryClient({
      credentials: new ChainCredentials(...registryCredentials(env)),
      userAgent: "ferry-lambda/0.1",
      ...lambdaConnection(env),
    }),
    defaults: {
      ...(stepBytes !== undefined ? { stepBytes } : {}),
      ...(directMaxBytes !== undefined ? { directMaxBytes } : {}),
    },
    policy: policyFromEnv(env),
    ...(create
      ? { repositories: new EcrRepositories({ settings: create, roleArn: env.ECR_ROLE_ARN || undefined }) }
      : {}),
  };
  cached = deps;
  return deps;
}

/** Tests: forget the cached dependencies. */
export function resetStepDeps(): void {
  cached = undefined;
  cachedStaging = undefined;
}
