/**
 * How a registry client built in a Lambda function (the workflow steps, the load tester's worker) finds
 * credentials and connects: REGISTRY_SECRETS then ECR (inside ECR_ROLE_ARN); public addresses only but
 * PRIVATE_REGISTRIES; per-registry TLS from Secrets Manager (REGISTRY_TLS); the environment's proxy.
 */
import type { CredentialProvider } from "../registry/auth/credentials.ts";
import type { NetworkPolicy } from "../registry/http/network.ts";
import { proxyFromEnv } from "../registry/http/proxy.ts";
import type { ClientOptions } from "../registry/options.ts";
import { EcrCredentials, type SecretReader, SecretsManagerCredentials } from "./credentials.ts";
import { ConfigError, type Env, privateRegistries, registrySecrets, registryTlsSecrets } from "./env.ts";
import { secretsManagerTls } from "./tls.ts";

/** Where ferry's functions find registry credentials: REGISTRY_SECRETS, then ECR (inside ECR_ROLE_ARN). */
export function registryCredentials(env: Env = process.env): CredentialProvider[] {
  return [
    new SecretsManagerCredentials({ secrets: registrySecrets(env) }),
    new EcrCredentials({ roleArn: env.ECR_ROLE_ARN || undefined }),
  ];
}

/** The network policy of every registry client built in a Lambda function (steps and bench worker). */
export function lambdaNetwork(env: Env = process.env): NetworkPolicy {
  return { publicOnly: true, allowPrivateHosts: privateRegistries(env) };
}

/**
 * How every registry client built in a Lambda function connects (steps and bench worker): the network
 * policy, per-registry TLS from Secrets Manager (REGISTRY_TLS) and the proxy of the environment.
 */
export function lambdaConnection(
  env: Env = process.env,
  deps: { secretReader?: SecretReader } = {},
): Pick<ClientOptions, "network" | "registryTls" | "proxy"> {
  let proxy: ClientOptions["proxy"];
  try {
    proxy = proxyFromEnv(env);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const registryTls = secretsManagerTls({
    secrets: registryTlsSecrets(env),
    ...(deps.secretReader ? { reader: deps.secretReader } : {}),
  });
  return {
    network: lambdaNetwork(env),
    ...(registryTls ? { registryTls } : {}),
    ...(proxy ? { proxy } : {}),
  };
}
