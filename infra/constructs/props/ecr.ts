/**
 * ECR repositories ferry reaches with its own roles: the ones it pulls from, pushes to and may create, and a
 * role in another account to assume for them.
 */
import {
  checkRepositorySettings,
  type RepositorySettings,
} from "../../../shared/workflow/repository-settings.ts";
import { fail, matchesUnlessToken, optionalList } from "./common.ts";

/** ECR repositories ferry may read from or write to with its own roles (same account). */
export interface EcrAccess {
  /**
   * Repositories ferry pulls from: names in this account and region (a `*` matches any characters, as
   * in IAM), or full repository ARNs.
   * @default none (promotion adds its own source repositories)
   */
  readonly pullRepositories?: readonly string[];
  /**
   * Repositories ferry pushes to (and reads manifests from, to skip up-to-date copies).
   * @default none
   */
  readonly pushRepositories?: readonly string[];
  /**
   * Create a missing destination repository before ferry's first push to it (promotions, bulk migrations
   * and API copies into ECR: ECR refuses pushes to a repository that does not exist), with these settings;
   * `{}` takes the defaults. Only repositories that `pushRepositories` names can be created: the resolve
   * function, the one step that creates them, gets `ecr:DescribeRepositories` and `ecr:CreateRepository`
   * (`ecr:PutLifecyclePolicy` with a lifecycle policy; `kms:CreateGrant`, `kms:DescribeKey` and
   * `kms:RetireGrant` through ECR on a `kmsKey`) on those repositories only. Repositories in the account of
   * `ecrRoleArn` are created as that role, which needs the same permissions there.
   * @default none: ferry never creates a repository; a push to a missing one fails with NAME_UNKNOWN
   */
  readonly createRepositories?: EcrRepositoryCreation;
}

/** What an ECR repository that ferry creates gets (CreateRepository, then PutLifecyclePolicy). */
export interface EcrRepositoryCreation {
  /**
   * Tag mutability. IMMUTABLE refuses to move an existing tag: a promotion or migration that re-tags
   * (`latest`) then fails on that tag.
   * @default "MUTABLE" (ECR's own default)
   */
  readonly tagMutability?: "MUTABLE" | "IMMUTABLE";
  /**
   * Basic scanning of every image pushed.
   * @default true
   */
  readonly scanOnPush?: boolean;
  /**
   * Encryption at rest: AES256 (S3-managed keys) or KMS (`kmsKey`, or the AWS managed key `aws/ecr`).
   * @default "AES256"
   */
  readonly encryption?: "AES256" | "KMS";
  /**
   * A customer-managed KMS key ARN, with `encryption: "KMS"`.
   * @default the AWS managed key `aws/ecr`
   */
  readonly kmsKey?: string;
  /**
   * An ECR lifecycle policy (`{"rules": [...]}`, ECR's lifecycle policy document as an object) put on every
   * repository ferry creates; checked at synthesis. Existing repositories are left as they are.
   * @default none
   */
  readonly lifecyclePolicy?: { readonly rules: readonly Record<string, unknown>[] };
}

export interface EcrSettings {
  /**
   * ECR repositories ferry reaches with its own roles.
   * @default none
   */
  readonly ecr?: EcrAccess;
  /**
   * A role in another account that the registry-facing functions assume for ECR credentials
   * (ECR_ROLE_ARN); its trust policy must allow this account. See README "Cross-account".
   * @default none
   */
  readonly ecrRoleArn?: string;
}

export interface ResolvedEcr {
  readonly pullRepositories: readonly string[];
  readonly pushRepositories: readonly string[];
  /** Settings of the ECR repositories the resolve function creates (ECR_CREATE_REPOSITORIES); none: never. */
  readonly createRepositories: RepositorySettings | undefined;
  readonly ecrRoleArn: string | undefined;
}

const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[A-Za-z0-9+=,.@_/-]+$/;
const ECR_REPOSITORY_ARN = /^arn:aws[a-z-]*:ecr:[a-z0-9-]+:\d{12}:repository\/[a-z0-9._/*-]+$/;
/** ECR repository names (lower case, `/`-separated path components), plus `*` wildcards. */
export const ECR_REPOSITORY_PATTERN = /^[a-z0-9*](?:[a-z0-9._/*-]{0,254})$/;
/**
 * ECR_CREATE_REPOSITORIES' share of the resolve function's 4 KB environment: the allow-lists may take
 * 2,048 (allow-lists.ts), the other variables take a few hundred.
 */
const CREATE_SETTINGS_MAX_CHARACTERS = 1200;
const ECR_KEYS = ["pullRepositories", "pushRepositories", "createRepositories"];

export function resolveEcr(props: EcrSettings): ResolvedEcr {
  const checkRepositories = (name: string, list: readonly string[]) => {
    for (const repo of list) {
      if (!ECR_REPOSITORY_PATTERN.test(repo) && !ECR_REPOSITORY_ARN.test(repo)) {
        fail(
          `${name}: "${repo}" is neither an ECR repository name (a \`*\` wildcard allowed) nor a repository ARN`,
        );
      }
    }
  };
  const unknownEcr = Object.keys(props.ecr ?? {}).filter((k) => !ECR_KEYS.includes(k));
  if (unknownEcr.length > 0)
    fail(`ecr: unknown setting(s) ${unknownEcr.join(", ")} (known: ${ECR_KEYS.join(", ")})`);
  const pullRepositories = optionalList("ecr.pullRepositories", props.ecr?.pullRepositories);
  const pushRepositories = optionalList("ecr.pushRepositories", props.ecr?.pushRepositories);
  checkRepositories("ecr.pullRepositories", pullRepositories);
  checkRepositories("ecr.pushRepositories", pushRepositories);

  const ecrRoleArn = props.ecrRoleArn;
  if (ecrRoleArn !== undefined && !matchesUnlessToken(ROLE_ARN, ecrRoleArn)) {
    fail(`ecrRoleArn is not an IAM role ARN: ${ecrRoleArn}`);
  }

  let createRepositories: RepositorySettings | undefined;
  if (props.ecr?.createRepositories !== undefined) {
    try {
      createRepositories = checkRepositorySettings(props.ecr.createRepositories, "ecr.createRepositories");
    } catch (e) {
      fail((e as Error).message);
    }
    if (pushRepositories.length === 0 && !ecrRoleArn)
      fail(
        "ecr.createRepositories needs the repositories ferry may create: ecr.pushRepositories (this account) " +
          "or ecrRoleArn (another account, whose role holds the permissions)",
      );
    const size = JSON.stringify(createRepositories).length;
    if (size > CREATE_SETTINGS_MAX_CHARACTERS)
      fail(
        `ecr.createRepositories takes ${size} characters as JSON; the resolve function's environment (4 KB in ` +
          `all, shared with the allow-lists) leaves it ${CREATE_SETTINGS_MAX_CHARACTERS}: shorten the lifecycle policy`,
      );
  }
  return { pullRepositories, pushRepositories, createRepositories, ecrRoleArn };
}
