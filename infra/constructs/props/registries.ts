/**
 * Registry credentials and TLS settings, kept in Secrets Manager (credentials.ts grants and creates the
 * secrets).
 */
import { fail, matchesUnlessToken, REGISTRY_HOST } from "./common.ts";

/**
 * A registry's TLS settings in Secrets Manager, as JSON `{"ca": PEM, "cert": PEM, "key": PEM}`: `ca` the
 * CAs to trust for this registry (on top of the system's), `cert` + `key` a client certificate (mutual
 * TLS); each optional, `cert` and `key` together (shared/aws/tls.ts; docs/networks.md).
 */
export interface RegistryTlsSecret {
  /** ARN of an existing secret (complete or partial, as `RegistryCredentials.secretArn`). */
  readonly secretArn: string;
  /**
   * Customer-managed KMS key that encrypts it: the readers get `kms:Decrypt` on it.
   * @default the AWS managed key `aws/secretsmanager`
   */
  readonly encryptionKeyArn?: string;
}

/**
 * Credentials of one registry, kept in Secrets Manager as `{"username": "...", "password": "..."}`, and
 * its TLS settings.
 */
export interface RegistryCredentials {
  /**
   * ARN of an existing secret. A complete ARN (ending in the 6-character suffix Secrets Manager adds)
   * is granted exactly; a partial ARN is granted with a `-??????` suffix.
   * @default a new secret is created; fill it after deploying (`aws secretsmanager put-secret-value`) —
   * unless `tls` is given: a registry listed for its TLS settings alone is reached without credentials
   */
  readonly secretArn?: string;
  /**
   * The registry's TLS settings (a client certificate, its CAs), read from Secrets Manager (REGISTRY_TLS).
   * A registry with them is spoken to over https.
   * @default none: the system's CAs, no client certificate
   */
  readonly tls?: RegistryTlsSecret;
  /**
   * Customer-managed KMS key that encrypts the existing secret: the readers get `kms:Decrypt` on it.
   * @default the secret uses the AWS managed key `aws/secretsmanager` (no key grant needed)
   */
  readonly encryptionKeyArn?: string;
}

export interface RegistrySettings {
  /**
   * Registry credentials, by registry as image references name it (`docker.io` for Docker Hub,
   * `ghcr.io`, `quay.io`, `registry.example.com:5000`). Each secret is readable only by the functions
   * that talk to registries. ECR registries need none: ferry uses IAM (see `ecr`, `ecrRoleArn`).
   * @default none: anonymous access (and IAM for ECR)
   */
  readonly registries?: Readonly<Record<string, RegistryCredentials>>;
}

export interface ResolvedRegistries {
  readonly registries: Readonly<Record<string, RegistryCredentials>>;
}

const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;

export function resolveRegistries(props: RegistrySettings): ResolvedRegistries {
  const registries = props.registries ?? {};
  for (const [host, creds] of Object.entries(registries)) {
    if (!REGISTRY_HOST.test(host)) {
      fail(`registries: "${host}" is not a registry host (lower-case host name with an optional :port)`);
    }
    if (creds.secretArn !== undefined && !matchesUnlessToken(SECRET_ARN, creds.secretArn)) {
      fail(`registries["${host}"].secretArn is not a Secrets Manager secret ARN: ${creds.secretArn}`);
    }
    const tls = creds.tls;
    if (tls !== undefined) {
      if (typeof tls !== "object" || tls === null || typeof tls.secretArn !== "string")
        fail(`registries["${host}"].tls needs a secretArn: a secret with {"ca", "cert", "key"} in PEM`);
      if (!matchesUnlessToken(SECRET_ARN, tls.secretArn))
        fail(`registries["${host}"].tls.secretArn is not a Secrets Manager secret ARN: ${tls.secretArn}`);
      if (tls.encryptionKeyArn !== undefined && !matchesUnlessToken(KMS_KEY_ARN, tls.encryptionKeyArn))
        fail(`registries["${host}"].tls.encryptionKeyArn is not a KMS key ARN: ${tls.encryptionKeyArn}`);
    }
    if (creds.encryptionKeyArn !== undefined) {
      if (creds.secretArn === undefined) {
        fail(`registries["${host}"].encryptionKeyArn is only meaningful with an existing secretArn`);
      }
      if (!matchesUnlessToken(KMS_KEY_ARN, creds.encryptionKeyArn)) {
        fail(`registries["${host}"].encryptionKeyArn is not a KMS key ARN: ${creds.encryptionKeyArn}`);
      }
    }
  }
  return { registries };
}
