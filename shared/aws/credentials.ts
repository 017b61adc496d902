/**
 * Registry credentials for the Lambda functions, as shared/registry CredentialProviders (the AWS SDK stays
 * out of shared/registry):
 *   SecretsManagerCredentials  REGISTRY_SECRETS maps a registry host to a secret whose JSON is
 *                              `{"username","password"}`;
 *   EcrCredentials             `*.dkr.ecr.<region>.amazonaws.com` hosts: ECR GetAuthorizationToken in
 *                              that region (`AWS:<token>`, valid 12 h), optionally inside a role assumed
 *                              with STS (ECR_ROLE_ARN) — promotion into another account.
 * Both cache what they fetch (per Lambda container) and never put a secret in a message. The AWS clients
 * sit behind two tiny interfaces so tests use fakes; the real ones are made on first use.
 *
 * The SDK clients are imported statically, by name. An `import()` of the package loaded it only on first
 * use, but in a single-file bundle esbuild keeps everything a dynamically imported module reaches
 * unshaken (every command, schema and error of the client, and the @smithy/core modules it reaches): named
 * static imports leave ~90 KiB out of every function with a registry client (docs/benchmarks.md).
 */
import { ECRClient, GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import type { Credential, CredentialProvider } from "../registry/auth/credentials.ts";
import { CredentialsError } from "../registry/errors.ts";

/** Reads a secret's string value. */
export interface SecretReader {
  getSecretString(secretId: string): Promise<string | undefined>;
}

/** ECR's GetAuthorizationToken for one region (the token is base64 `AWS:<password>`). */
export interface EcrTokenSource {
  getAuthorizationToken(region: string, registryId: string): Promise<{ token: string; expiresAt?: Date }>;
}

interface Cached {
  credential: Credential;
  until: number;
}

export class SecretsManagerCredentials implements CredentialProvider {
  private readonly secrets: Record<string, string>;
  private readonly reader: SecretReader;
  private readonly ttlMs: number;
  private readonly cache = new Map<string, Promise<Cached>>();

  constructor(opts: { secrets: Record<string, string>; reader?: SecretReader; ttlMs?: number }) {
    this.secrets = opts.secrets;
    this.reader = opts.reader ?? sdkSecretReader();
    this.ttlMs = opts.ttlMs ?? 5 * 60_000;
  }

  async get(registry: string): Promise<Credential | undefined> {
    const arn = this.secrets[registry];
    if (!arn) return undefined;
    const hit = this.cache.get(registry);
    if (hit) {
      const c = await hit.catch(() => undefined);
      if (c && c.until > Date.now()) return c.credential;
    }
    const p = this.fetch(registry, arn);
    this.cache.set(registry, p);
    p.catch(() => this.cache.delete(registry));
    return (await p).credential;
  }

  private async fetch(registry: string, arn: string): Promise<Cached> {
    let text: string | undefined;
    try {
      text = await this.reader.getSecretString(arn);
    } catch (e) {
      throw new CredentialsError(
        `cannot read the credentials of ${registry} from Secrets Manager (${arn}): ${(e as Error).name ?? "Error"}: ${(e as Error).message}`,
      );
    }
    let parsed: { username?: unknown; password?: unknown };
    try {
      parsed = JSON.parse(text ?? "") as typeof parsed;
    } catch {
      throw new CredentialsError(
        `secret ${arn} (credentials of ${registry}) is not JSON {"username","password"}`,
      );
    }
    if (typeof parsed?.username !== "string" || typeof parsed.password !== "string" || !parsed.password)
      throw new CredentialsError(
        `secret ${arn} (credentials of ${registry}) needs string "username" and "password"`,
      );
    return {
      credential: { username: parsed.username, password: parsed.password },
      until: Date.now() + this.ttlMs,
    };
  }
}

/** `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]` → account and region. */
export function parseEcrHost(registry: string): { registryId: string; region: string } | undefined {
  const m = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/.exec(registry);
  return m ? { registryId: m[1]!, region: m[2]! } : undefined;
}

/**
 * ECR credentials. With `roleArn` (ECR_ROLE_ARN), registries of *that role's account* get their token
 * as the assumed role (promotion into another account); every other ECR registry gets it with the
 * function's own credentials.
 */
export class EcrCredentials implements CredentialProvider {
  private readonly source: EcrTokenSource;
  private readonly roleSource: EcrTokenSource | undefined;
  private readonly roleAccount: string | undefined;
  private readonly cache = new Map<string, Promise<Cached>>();
  /** Refresh this long before the token expires. */
  private readonly marginMs = 10 * 60_000;

  constructor(
    opts: { source?: EcrTokenSource; roleArn?: string | undefined; roleSource?: EcrTokenSource } = {},
  ) {
    this.source = opts.source ?? sdkEcrTokenSource(undefined);
    if (opts.roleArn) {
      const account = /^arn:aws[a-z-]*:iam::(\d{12}):role\//.exec(opts.roleArn)?.[1];
      if (!account) throw new CredentialsError(`ECR_ROLE_ARN ${opts.roleArn} is not an IAM role ARN`);
      this.roleAccount = account;
      this.roleSource = opts.roleSource ?? sdkEcrTokenSource(opts.roleArn);
    }
  }

  async get(registry: string): Promise<Credential | undefined> {
    const ecr = parseEcrHost(registry);
    if (!ecr) return undefined;
    const hit = this.cache.get(registry);
    if (hit) {
      const c = await hit.catch(() => undefined);
      if (c && c.until > Date.now()) return c.credential;
    }
    const p = this.fetch(registry, ecr.region, ecr.registryId);
    this.cache.set(registry, p);
    p.catch(() => this.cache.delete(registry));
    return (await p).credential;
  }

  private async fetch(registry: string, region: string, registryId: string): Promise<Cached> {
    let t: { token: string; expiresAt?: Date };
    const source = this.roleSource && registryId === this.roleAccount ? this.roleSource : this.source;
    try {
      t = await source.getAuthorizationToken(region, registryId);
    } catch (e) {
      throw new CredentialsError(
        `ECR GetAuthorizationToken for ${registry} failed: ${(e as Error).name ?? "Error"}: ${(e as Error).message}`,
      );
    }
    const decoded = Buffer.from(t.token, "base64").toString("utf8");
    const i = decoded.indexOf(":");
    if (i <= 0) throw new CredentialsError(`ECR returned a malformed authorization token for ${registry}`);
    const expires = t.expiresAt?.getTime() ?? Date.now() + 12 * 3600_000;
    return {
      credential: { username: decoded.slice(0, i), password: decoded.slice(i + 1) },
      until: expires - this.marginMs,
    };
  }
}

/** Secrets Manager GetSecretValue through the SDK, the client made on first use. */
export function sdkSecretReader(): SecretReader {
  let client: SecretsManagerClient | undefined;
  return {
    async getSecretString(secretId) {
      client ??= new SecretsManagerClient({});
      const res = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
      return res.SecretString;
    },
  };
}

/** ECR tokens through the SDK; with `roleArn`, as that role (STS AssumeRole, refreshed before expiry). */
function sdkEcrTokenSource(roleArn: string | undefined): EcrTokenSource {
  const clients = new Map<string, ECRClient>();
  const credentials = roleArn ? assumedRole(roleArn) : undefined;
  return {
    async getAuthorizationToken(region, registryId) {
      // made on first use: functions that never meet an ECR registry never make an ECR client
      let c = clients.get(region);
      if (!c) {
        c = new ECRClient({ region, ...(credentials ? { credentials } : {}) });
        clients.set(region, c);
      }
      const res = await c.send(new GetAuthorizationTokenCommand({ registryIds: [registryId] }));
      const d = res.authorizationData?.[0];
      if (!d?.authorizationToken) throw new Error("no authorizationData in the answer");
      return { token: d.authorizationToken, ...(d.expiresAt ? { expiresAt: d.expiresAt } : {}) };
    },
  };
}

/** A credential provider function for the SDK: STS AssumeRole, cached until 5 minutes before expiry. */
export function assumedRole(
  roleArn: string,
  assume?: (
    roleArn: string,
  ) => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: Date }>,
) {
  let current:
    | Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: Date }>
    | undefined;
  const doAssume =
    assume ??
    (async (arn: string) => {
      const res = await new STSClient({}).send(
        new AssumeRoleCommand({
          RoleArn: arn,
          RoleSessionName: `ferry-${Date.now()}`,
          DurationSeconds: 3600,
        }),
      );
      const c = res.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration)
        throw new CredentialsError(`STS AssumeRole ${arn} returned no credentials`);
      return {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiration: c.Expiration,
      };
    });
  return async () => {
    const c = current ? await current.catch(() => undefined) : undefined;
    if (!c || c.expiration.getTime() - Date.now() < 5 * 60_000) {
      current = doAssume(roleArn);
      return current;
    }
    return c;
  };
}
