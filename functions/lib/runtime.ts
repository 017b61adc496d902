/**
 * What the step functions need, built once per Lambda container from the environment:
 *   STAGING_BUCKET    the staging bucket (S3)
 *   STEP_BYTES        bytes per stage/upload step (default 2 GiB)
 *   DIRECT_MAX_BYTES  blobs up to this size skip staging (default 32 MiB)
 *   REGISTRY_SECRETS  JSON: registry host → Secrets Manager secret ARN ({"username","password"})
 *   ECR_ROLE_ARN      a role to assume for ECR GetAuthorizationToken (optional)
 */
import { ChainCredentials, type CredentialProvider } from "../../shared/registry/auth/credentials.ts";
import { RegistryClient } from "../../shared/registry/client.ts";
import { S3StagingStore } from "../../shared/staging/s3.ts";
import type { StepDeps } from "../../shared/workflow/deps.ts";
import { EcrCredentials, SecretsManagerCredentials } from "./credentials.ts";
import { bytesEnv, type Env, registrySecrets, requireEnv } from "./env.ts";

let cached: StepDeps | undefined;

/** Where ferry's functions find registry credentials: REGISTRY_SECRETS, then ECR (inside ECR_ROLE_ARN). */
export function registryCredentials(env: Env = process.env): CredentialProvider[] {
  return [
    new SecretsManagerCredentials({ secrets: registrySecrets(env) }),
    new EcrCredentials({ roleArn: env.ECR_ROLE_ARN || undefined }),
  ];
}

export function stepDeps(env: Env = process.env): StepDeps {
  if (cached) return cached;
  const stepBytes = bytesEnv(env, "STEP_BYTES");
  const directMaxBytes = bytesEnv(env, "DIRECT_MAX_BYTES");
  cached = {
    staging: new S3StagingStore({ bucket: requireEnv(env, "STAGING_BUCKET") }),
    client: new RegistryClient({
      credentials: new ChainCredentials(...registryCredentials(env)),
      userAgent: "ferry-lambda/0.1",
    }),
    defaults: {
      ...(stepBytes !== undefined ? { stepBytes } : {}),
      ...(directMaxBytes !== undefined ? { directMaxBytes } : {}),
    },
  };
  return cached;
}

/** Tests: forget the cached dependencies. */
export function resetStepDeps(): void {
  cached = undefined;
}
