/**
 * ECR repositories created on demand (shared/transfer/repositories.ts says when and why before the first
 * write): `DescribeRepositories` — found: nothing to do; `RepositoryNotFoundException`: `CreateRepository`
 * with the deployment's settings (shared/workflow/repository-settings.ts), then `PutLifecyclePolicy` when
 * a policy is configured. A `RepositoryAlreadyExistsException` (another run or Lambda created it
 * meanwhile) is success. Each repository is asked about once per process (a Lambda container, a CLI
 * run); a failed question is asked again next time.
 *
 * Which registries: `<account>.dkr.ecr[-fips].<region>.amazonaws.com` hosts (that account and region), and
 * hosts the caller declares ECR (`--registry-kind HOST=ecr`: ECR behind another name; the account and
 * region are then those of the AWS credentials and configuration). With `roleArn` (ECR_ROLE_ARN),
 * repositories in that role's account are created as the role — as EcrCredentials gets their tokens.
 *
 * The SDK stays behind the small EcrControl interface: tests pass a fake, the real one makes its
 * `@aws-sdk/client-ecr` clients on first use (and finds the endpoint as the SDK does: AWS_ENDPOINT_URL_ECR).
 * Named static imports, not `import()`: see credentials.ts.
 */
import {
  CreateRepositoryCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  PutLifecyclePolicyCommand,
} from "@aws-sdk/client-ecr";
import { FerryError } from "../registry/errors.ts";
import { formatRepository, type Repository } from "../registry/reference.ts";
import type {
  DestinationRepositories,
  RepositoryCheck,
  RepositoryEnsured,
} from "../transfer/repositories.ts";
import type { RepositorySettings } from "../workflow/repository-settings.ts";
import { assumedRole, parseEcrHost } from "./credentials.ts";

/** Where a repository lives: undefined fields are the SDK's defaults (configured region, own account). */
export interface EcrTarget {
  region?: string;
  registryId?: string;
}

/** The three ECR calls, by what they mean to ferry. */
export interface EcrControl {
  /** True when the repository exists; false on RepositoryNotFoundException. */
  describeRepository(target: EcrTarget, name: string): Promise<boolean>;
  /** True when created; false on RepositoryAlreadyExistsException. */
  createRepository(target: EcrTarget, name: string, settings: RepositorySettings): Promise<boolean>;
  putLifecyclePolicy(target: EcrTarget, name: string, policyText: string): Promise<void>;
}

export class RepositoryCreationError extends FerryError {
  constructor(message: string, options: ErrorOptions & { retryable: boolean }) {
    super("REPOSITORY_CREATION", message, options);
    this.name = "RepositoryCreationError";
  }
}

/** AWS error names worth another attempt (throttling, the service's own failures). */
const TEMPORARY =
  /Throttl|TooManyRequests|RequestLimitExceeded|ServiceUnavailable|InternalFailure|ServerException|TimeoutError|ECONNRESET/;

export class EcrRepositories implements DestinationRepositories {
  readonly settings: RepositorySettings;
  private readonly control: EcrControl;
  private readonly roleControl: EcrControl | undefined;
  private readonly roleAccount: string | undefined;
  private readonly declaredEcr: (registry: string) => boolean;
  private readonly ensured = new Map<string, Promise<RepositoryEnsured>>();

  constructor(opts: {
    settings: RepositorySettings;
    control?: EcrControl;
    roleArn?: string | undefined;
    roleControl?: EcrControl;
    /** Registries declared ECR although their name does not say so (`--registry-kind HOST=ecr`). */
    declaredEcr?: (registry: string) => boolean;
  }) {
    this.settings = opts.settings;
    this.control = opts.control ?? sdkEcrControl(undefined);
    this.declaredEcr = opts.declaredEcr ?? (() => false);
    if (opts.roleArn) {
      const account = /^arn:aws[a-z-]*:iam::(\d{12}):role\//.exec(opts.roleArn)?.[1];
      if (!account) throw new FerryError("CONFIG", `ECR_ROLE_ARN ${opts.roleArn} is not an IAM role ARN`);
      this.roleAccount = account;
      this.roleControl = opts.roleControl ?? sdkEcrControl(opts.roleArn);
    }
  }

  /** The ECR registry of `registry`, or undefined for any other registry. */
  target(registry: string): EcrTarget | undefined {
    const host = parseEcrHost(registry);
    if (host) return { region: host.region, registryId: host.registryId };
    return this.declaredEcr(registry) ? {} : undefined;
  }

  async check(repo: Repository): Promise<RepositoryCheck> {
    const t = this.target(repo.registry);
    if (!t) return "unmanaged";
    return (await this.call("DescribeRepositories", repo, () =>
      this.controlFor(t).describeRepository(t, repo.repository),
    ))
      ? "exists"
      : "missing";
  }

  ensure(repo: Repository): Promise<RepositoryEnsured> {
    const key = formatRepository(repo);
    let p = this.ensured.get(key);
    if (!p) {
      p = this.create(repo);
      this.ensured.set(key, p);
      p.catch(() => this.ensured.delete(key));
    }
    return p;
  }

  private async create(repo: Repository): Promise<RepositoryEnsured> {
    const t = this.target(repo.registry);
    if (!t) return "unmanaged";
    const control = this.controlFor(t);
    const name = repo.repository;
    if (await this.call("DescribeRepositories", repo, () => control.describeRepository(t, name)))
      return "exists";
    const created = await this.call("CreateRepository", repo, () =>
      control.createRepository(t, name, this.settings),
    );
    if (!created) return "exists"; // created meanwhile by another run: its settings are its creator's
    const policy = this.settings.lifecyclePolicy;
    if (policy)
      await this.call("PutLifecyclePolicy", repo, () =>
        control.putLifecyclePolicy(t, name, JSON.stringify(policy)),
      );
    return "created";
  }

  private controlFor(t: EcrTarget): EcrControl {
    return this.roleControl && t.registryId === this.roleAccount ? this.roleControl : this.control;
  }

  /** Runs one call; an AWS failure becomes a RepositoryCreationError naming the call and repository. */
  private async call<T>(what: string, repo: Repository, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const err = e as Error & { $metadata?: { httpStatusCode?: number } };
      const status = err.$metadata?.httpStatusCode;
      throw new RepositoryCreationError(
        `ECR ${what} for ${formatRepository(repo)} failed: ${err.name ?? "Error"}: ${err.message}`,
        {
          cause: e,
          retryable:
            TEMPORARY.test(`${err.name} ${(err as { code?: string }).code ?? ""}`) || (status ?? 0) >= 500,
        },
      );
    }
  }
}

/** The SDK behind EcrControl; with `roleArn`, as that role (STS AssumeRole, refreshed before expiry). */
export function sdkEcrControl(roleArn: string | undefined): EcrControl {
  const clients = new Map<string, ECRClient>();
  const credentials = roleArn ? assumedRole(roleArn) : undefined;
  const send = async (t: EcrTarget, command: unknown) => {
    // made on first use: a process that never creates a repository never makes an ECR client
    const key = t.region ?? "";
    let c = clients.get(key);
    if (!c) {
      c = new ECRClient({
        ...(t.region ? { region: t.region } : {}),
        ...(credentials ? { credentials } : {}),
      });
      clients.set(key, c);
    }
    return c.send(command as never);
  };
  const id = (t: EcrTarget) => (t.registryId ? { registryId: t.registryId } : {});
  return {
    async describeRepository(t, name) {
      try {
        await send(t, new DescribeRepositoriesCommand({ ...id(t), repositoryNames: [name] }));
        return true;
      } catch (e) {
        if ((e as Error).name === "RepositoryNotFoundException") return false;
        throw e;
      }
    },
    async createRepository(t, name, s) {
      try {
        await send(
          t,
          new CreateRepositoryCommand({
            ...id(t),
            repositoryName: name,
            imageTagMutability: s.tagMutability,
            imageScanningConfiguration: { scanOnPush: s.scanOnPush },
            encryptionConfiguration: {
              encryptionType: s.encryption,
              ...(s.kmsKey ? { kmsKey: s.kmsKey } : {}),
            },
          }),
        );
        return true;
      } catch (e) {
        if ((e as Error).name === "RepositoryAlreadyExistsException") return false;
        throw e;
      }
    },
    async putLifecyclePolicy(t, name, policyText) {
      await send(
        t,
        new PutLifecyclePolicyCommand({
          ...id(t),
          repositoryName: name,
          lifecyclePolicyText: policyText,
        }),
      );
    },
  };
}
