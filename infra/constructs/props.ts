import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { Duration, RemovalPolicy, Token } from "aws-cdk-lib";
import type * as kms from "aws-cdk-lib/aws-kms";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import type * as sns from "aws-cdk-lib/aws-sns";
import { LogLevel } from "aws-cdk-lib/aws-stepfunctions";
import { DEFAULT_DIRECT_MAX_BYTES, MIGRATION_NAME } from "../../shared/workflow/contract.ts";
import {
  checkRepositorySettings,
  type RepositorySettings,
} from "../../shared/workflow/repository-settings.ts";
import { resolveAllowLists } from "./allow-lists.ts";

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

/** A forward proxy for the functions' registry traffic. */
export interface ProxyProps {
  /**
   * The proxy for https registries: `http://host:port` (CONNECT tunnels). No credentials in the URL:
   * they would be stored in clear in the template and the functions' configuration.
   * @default none
   */
  readonly httpsProxy?: string;
  /**
   * The proxy for plain-http registries (absolute-form requests).
   * @default none
   */
  readonly httpProxy?: string;
  /**
   * Hosts reached directly: names (with their subdomains; `.name` subdomains only), IP addresses, CIDR
   * ranges, `host:port`, or `*`.
   * @default none
   */
  readonly noProxy?: readonly string[];
}

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

/** Promotion: every image pushed to a matching ECR repository is copied to `destination`. */
export interface PromotionProps {
  /**
   * Registry host and optional repository prefix the pushed image is copied under, e.g.
   * `123456789012.dkr.ecr.eu-west-1.amazonaws.com/prod` (handlers get it as PROMOTION_DESTINATION).
   */
  readonly destination: string;
  /**
   * ECR repository names whose pushes are promoted (EventBridge `wildcard` matching when a name contains
   * `*`). They also scope ferry's pull permission, in this account and in each of `sourceAccounts`.
   * Required: promoting every repository of an account is a decision to write down (`["*"]`).
   */
  readonly repositories: readonly string[];
  /**
   * Tags whose pushes are promoted (`*` wildcards allowed).
   * @default every tag (pushes by digest only, with no tag, are never promoted)
   */
  readonly tags?: readonly string[];
  /**
   * Accounts whose ECR push events reach this account's default event bus, forwarded by an
   * `EcrEventForwarder` deployed there; the bus policy allows `events:PutEvents` from each.
   * @default none: only this account's pushes are promoted
   */
  readonly sourceAccounts?: readonly string[];
}

/** A bulk migration started on a schedule by EventBridge Scheduler. */
export interface MigrationSchedule {
  /** Unique name: letters, digits, `-`, `_`; at most 40 characters (the migration's executions start with it). */
  readonly name: string;
  /** `rate(1 day)`, `cron(0 3 ? * SUN *)` or `at(2030-01-31T02:00:00)` (EventBridge Scheduler syntax). */
  readonly schedule: string;
  /**
   * IANA time zone for `cron` and `at` expressions.
   * @default "UTC"
   */
  readonly timeZone?: string;
  /** The migration's configuration, handed to the schedule function as `config` in its event. */
  readonly config: Readonly<Record<string, unknown>>;
  /**
   * Whether the schedule is enabled.
   * @default true
   */
  readonly enabled?: boolean;
}

export interface ImageTransferProps {
  /**
   * Sustained throughput, in MiB/s, that one blob step (stage or upload) is assumed to reach. The byte
   * budget per step, STEP_BYTES, is derived from it so that a step finishes in half its timeout at this
   * throughput (the other half absorbs token refreshes, retries with backoff and slow starts).
   * @default 5 — a slow public registry (40 Mbit/s), far below the 200+ MB/s measured between local
   * registries (platform-notes): STEP_BYTES is then 2,240 MiB, close to the 2 GiB the workflow library
   * assumes by default (shared/workflow/deps.ts). A faster pair of registries only finishes steps sooner.
   */
  readonly stepThroughputMiBps?: number;
  /**
   * Timeout of the stage-blob and upload-blob functions.
   * @default Duration.minutes(15) — Lambda's maximum; the longer a step, the fewer state transitions
   */
  readonly blobStepTimeout?: Duration;
  /**
   * Memory of the stage-blob and upload-blob functions, in MiB (CPU and network scale with it).
   * @default 1769 — one full vCPU, enough for streaming with sha256 at ~1.7 GB/s
   */
  readonly blobStepMemoryMiB?: number;
  /**
   * Blobs up to this size go from source to destination in one step, without staging in S3
   * (DIRECT_MAX_BYTES). Must not exceed STEP_BYTES.
   * @default 32 MiB — the workflow library's default (shared/workflow/deps.ts): a direct copy restarts
   * from zero when it fails, a staged one resumes
   */
  readonly directMaxBytes?: number;
  /**
   * Days after which staged objects expire. Incomplete multipart uploads are always aborted after 1 day.
   * @default 1
   */
  readonly stagingExpirationDays?: number;
  /**
   * Removal policy of the staging bucket. It only holds transient copies that expire, so `DESTROY` is
   * safe; `RETAIN` (the default) keeps it after `cdk destroy` and its lifecycle rule empties it.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Empty the staging bucket when the stack is deleted (a CDK custom resource; needs `DESTROY`).
   * @default false
   */
  readonly autoDeleteObjects?: boolean;
  /**
   * Where the staging bucket's S3 server access logs go. `false` disables them (cdk-nag S1 is then
   * suppressed with that reason).
   * @default a dedicated, encrypted, SSL-only log bucket whose objects expire after 90 days
   */
  readonly accessLogsBucket?: s3.IBucket | false;
  /**
   * Customer-managed KMS key for the staging bucket.
   * @default SSE-S3 (S3-managed keys)
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Retention of every log group the construct creates (functions, state machines, API access logs).
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Registry credentials, by registry as image references name it (`docker.io` for Docker Hub,
   * `ghcr.io`, `quay.io`, `registry.example.com:5000`). Each secret is readable only by the functions
   * that talk to registries. ECR registries need none: ferry uses IAM (see `ecr`, `ecrRoleArn`).
   * @default none: anonymous access (and IAM for ECR)
   */
  readonly registries?: Readonly<Record<string, RegistryCredentials>>;
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
  /**
   * Promote images pushed to ECR: an EventBridge rule on `ECR Image Action` PUSH SUCCESS events.
   * @default no promotion rule
   */
  readonly promotion?: PromotionProps;
  /**
   * Bulk migrations on a schedule (EventBridge Scheduler → schedule function → bulk state machine).
   * @default none
   */
  readonly migrations?: readonly MigrationSchedule[];
  /**
   * Where copies may read from: `host[/repository]` patterns (shared/workflow/allow-list.ts: a host alone
   * is the whole registry, a repository is a prefix on `/` boundaries, `*` stays within one DNS label in the
   * host and crosses `/` in the repository), e.g. `ghcr.io/team`, `*.dkr.ecr.us-east-1.amazonaws.com/prod/*`.
   * The API, the promotion and schedule functions refuse anything else before starting a copy, and every
   * step that talks to a registry refuses it again (ALLOWED_SOURCES). Given, it replaces the default; `[]`
   * allows nothing.
   * @default the registries of `registries`, `ecr.pullRepositories` and the promotion's repositories (in
   * this account and each of `promotion.sourceAccounts`, in the stack's region), each migration's source
   */
  readonly allowedSources?: readonly string[];
  /**
   * Where copies may write to, as `allowedSources` (ALLOWED_DESTINATIONS). Given, it replaces the default.
   * @default `ecr.pushRepositories`, the promotion's destination and each migration's destination — not the
   * registries of `registries`: holding a registry's credentials does not make it a destination
   */
  readonly allowedDestinations?: readonly string[];
  /**
   * Registries (`host` for any port, or `host:port`) the functions may reach on private, loopback or
   * link-local addresses (PRIVATE_REGISTRIES). Every other connection — to a registry, a redirect target
   * or a token realm — must go to a public address, checked on the address actually connected to; a
   * private registry must be declared here (and allowed by the lists above).
   * @default none: public addresses only
   */
  readonly privateRegistries?: readonly string[];
  /**
   * A forward proxy for registry traffic (a VPC whose egress goes through one): HTTPS_PROXY, HTTP_PROXY and
   * NO_PROXY of every function with a registry client, read as curl and Go read them
   * (shared/registry/http/proxy.ts). The proxy may be on a private address; targets are still checked
   * against the network policy by name (docs/networks.md). The AWS SDK's own calls do not use it.
   * @default none: direct connections
   */
  readonly proxy?: ProxyProps;
  /**
   * What the state machines log to CloudWatch Logs.
   * @default LogLevel.ERROR — failures only; ALL logs every state transition (cost: see README)
   */
  readonly stateMachineLogLevel?: LogLevel;
  /**
   * Whether those logs include each state's input and output. The workflows keep no secrets and no upload
   * session in their state, but the state names images and registries.
   * @default false
   */
  readonly logExecutionData?: boolean;
  /**
   * Alarms notify this topic (alarm and OK).
   * @default alarms without actions (visible in the console and the dashboard)
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Create a CloudWatch dashboard.
   * @default true
   */
  readonly dashboard?: boolean;
  /**
   * Deploy the load-test fan-out functions (load/lambda.ts: worker and aggregate).
   * @default false
   */
  readonly benchWorkers?: boolean;
  /**
   * Prefix of the state machine and schedule names (letters, digits, `-`, `_`; at most 48 characters).
   * Names are fixed so that IAM can name the bulk machine's own executions without a dependency cycle.
   * @default `<stack name>-<construct id>`
   */
  readonly namePrefix?: string;
  /**
   * ferry's package: the built Lambda code (`dist/lambda/`, written by `npm run build` and shipped in
   * the package) and the workflow definitions (`shared/workflow/*.asl.json`, `load/fanout.asl.json`).
   * @default the package this construct is part of (the repository, or the installed `ferry` package)
   */
  readonly sourceRoot?: string;
}

/** Lambda's limits (platform-notes, AWS section). */
const LAMBDA_MAX_TIMEOUT_SECONDS = 15 * 60;
const LAMBDA_MIN_MEMORY = 128;
const LAMBDA_MAX_MEMORY = 10_240;
/** A blob step aims to finish in this fraction of its timeout at the stated throughput. */
export const STEP_TIME_FRACTION = 0.5;
/** STEP_BYTES is a multiple of 64 MiB: a whole number of S3 parts and registry chunks of 4, 8, 16, 32 or 64 MiB. */
export const STEP_ALIGNMENT_BYTES = 64 * 1024 * 1024;
const MiB = 1024 * 1024;

export interface ResolvedProps {
  readonly stepThroughputMiBps: number;
  readonly blobStepTimeout: Duration;
  readonly blobStepMemoryMiB: number;
  /** Byte budget of one stage or upload step (STEP_BYTES). */
  readonly stepBytes: number;
  readonly directMaxBytes: number;
  readonly stagingExpirationDays: number;
  readonly removalPolicy: RemovalPolicy;
  readonly autoDeleteObjects: boolean;
  readonly accessLogsBucket: s3.IBucket | false | undefined;
  readonly encryptionKey: kms.IKey | undefined;
  readonly logRetention: RetentionDays;
  readonly registries: Readonly<Record<string, RegistryCredentials>>;
  readonly pullRepositories: readonly string[];
  readonly pushRepositories: readonly string[];
  /** Settings of the ECR repositories the resolve function creates (ECR_CREATE_REPOSITORIES); none: never. */
  readonly createRepositories: RepositorySettings | undefined;
  readonly ecrRoleArn: string | undefined;
  readonly promotion: PromotionProps | undefined;
  readonly migrations: readonly MigrationSchedule[];
  readonly allowedSources: readonly string[];
  readonly allowedDestinations: readonly string[];
  readonly privateRegistries: readonly string[];
  readonly proxy: ProxyProps | undefined;
  readonly stateMachineLogLevel: LogLevel;
  readonly logExecutionData: boolean;
  readonly alarmTopic: sns.ITopic | undefined;
  readonly dashboard: boolean;
  readonly benchWorkers: boolean;
  readonly namePrefix: string;
  readonly sourceRoot: string;
}

/** The repository root: infra/constructs/ is two levels below it. */
export const REPOSITORY_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

const fail = (message: string): never => {
  throw new Error(`ImageTransfer: ${message}`);
};

const REGISTRY_HOST =
  /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d{1,5})?$/;
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[A-Za-z0-9+=,.@_/-]+$/;
const ECR_REPOSITORY_ARN = /^arn:aws[a-z-]*:ecr:[a-z0-9-]+:\d{12}:repository\/[a-z0-9._/*-]+$/;
/** ECR repository names (lower case, `/`-separated path components), plus `*` wildcards. */
const ECR_REPOSITORY_PATTERN = /^[a-z0-9*](?:[a-z0-9._/*-]{0,254})$/;
const TAG_PATTERN = /^[A-Za-z0-9_*][A-Za-z0-9_.*-]{0,127}$/;
const ACCOUNT = /^\d{12}$/;
const NAME_PREFIX = /^[A-Za-z0-9_-]{1,48}$/;
/** As the schedule function accepts it (shared/workflow/triggers.ts: execution names start with it). */
const SCHEDULE_EXPRESSION =
  /^(?:rate\(\d+ (?:minute|minutes|hour|hours|day|days)\)|cron\([^()]+\)|at\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\))$/;
/**
 * ECR_CREATE_REPOSITORIES' share of the resolve function's 4 KB environment: the allow-lists may take
 * 2,048 (allow-lists.ts), the other variables take a few hundred.
 */
const CREATE_SETTINGS_MAX_CHARACTERS = 1200;
/** EventBridge Scheduler limits a target's input to 8,192 characters (AWS::Scheduler::Schedule Target.Input). */
const SCHEDULE_INPUT_MAX = 8192;

const positiveFinite = (name: string, value: number): number => {
  if (!Number.isFinite(value) || value <= 0) fail(`${name} must be a positive number, got ${value}`);
  return value;
};

const nonEmptyList = (name: string, list: readonly string[] | undefined): readonly string[] => {
  if (list === undefined) return [];
  if (!Array.isArray(list)) fail(`${name} must be a list of strings`);
  return list;
};

/**
 * Applies defaults and validates every prop once, with messages that name the prop; returns a frozen
 * object. Token values (unresolved CDK references) are accepted where a concrete value cannot be checked.
 */
export function resolveProps(props: ImageTransferProps, defaultNamePrefix: string): ResolvedProps {
  const stepThroughputMiBps = positiveFinite("stepThroughputMiBps", props.stepThroughputMiBps ?? 5);

  const blobStepTimeout = props.blobStepTimeout ?? Duration.minutes(15);
  const timeoutSeconds = blobStepTimeout.toSeconds();
  if (timeoutSeconds < 60 || timeoutSeconds > LAMBDA_MAX_TIMEOUT_SECONDS) {
    fail(`blobStepTimeout must be between 1 and 15 minutes (Lambda's maximum), got ${timeoutSeconds} s`);
  }

  const blobStepMemoryMiB = props.blobStepMemoryMiB ?? 1769;
  if (
    !Number.isInteger(blobStepMemoryMiB) ||
    blobStepMemoryMiB < LAMBDA_MIN_MEMORY ||
    blobStepMemoryMiB > LAMBDA_MAX_MEMORY
  ) {
    fail(`blobStepMemoryMiB must be an integer from 128 to 10240, got ${blobStepMemoryMiB}`);
  }

  const budget = stepThroughputMiBps * MiB * timeoutSeconds * STEP_TIME_FRACTION;
  const stepBytes = Math.floor(budget / STEP_ALIGNMENT_BYTES) * STEP_ALIGNMENT_BYTES;
  if (stepBytes < STEP_ALIGNMENT_BYTES) {
    fail(
      `stepThroughputMiBps × blobStepTimeout leaves a step budget under 64 MiB ` +
        `(${stepThroughputMiBps} MiB/s × ${timeoutSeconds} s × ${STEP_TIME_FRACTION}): raise one of them`,
    );
  }

  const directMaxBytes = props.directMaxBytes ?? Math.min(DEFAULT_DIRECT_MAX_BYTES, stepBytes);
  if (!Number.isInteger(directMaxBytes) || directMaxBytes < 0) {
    fail(`directMaxBytes must be a non-negative integer, got ${directMaxBytes}`);
  }
  if (directMaxBytes > stepBytes) {
    fail(
      `directMaxBytes (${directMaxBytes}) exceeds the step budget STEP_BYTES (${stepBytes}): ` +
        "a direct copy must fit in one step",
    );
  }

  const stagingExpirationDays = props.stagingExpirationDays ?? 1;
  if (!Number.isInteger(stagingExpirationDays) || stagingExpirationDays < 1) {
    fail(`stagingExpirationDays must be a whole number of days >= 1, got ${stagingExpirationDays}`);
  }

  const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
  const autoDeleteObjects = props.autoDeleteObjects ?? false;
  if (autoDeleteObjects && removalPolicy !== RemovalPolicy.DESTROY) {
    fail("autoDeleteObjects needs removalPolicy: RemovalPolicy.DESTROY");
  }

  const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;
  if (!Object.values(RetentionDays).includes(logRetention)) {
    fail(`logRetention must be one of RetentionDays, got ${String(logRetention)}`);
  }

  const registries = props.registries ?? {};
  for (const [host, creds] of Object.entries(registries)) {
    if (!REGISTRY_HOST.test(host)) {
      fail(`registries: "${host}" is not a registry host (lower-case host name with an optional :port)`);
    }
    if (
      creds.secretArn !== undefined &&
      !Token.isUnresolved(creds.secretArn) &&
      !SECRET_ARN.test(creds.secretArn)
    ) {
      fail(`registries["${host}"].secretArn is not a Secrets Manager secret ARN: ${creds.secretArn}`);
    }
    const tls = creds.tls;
    if (tls !== undefined) {
      if (typeof tls !== "object" || tls === null || typeof tls.secretArn !== "string")
        fail(`registries["${host}"].tls needs a secretArn: a secret with {"ca", "cert", "key"} in PEM`);
      if (!Token.isUnresolved(tls.secretArn) && !SECRET_ARN.test(tls.secretArn))
        fail(`registries["${host}"].tls.secretArn is not a Secrets Manager secret ARN: ${tls.secretArn}`);
      if (
        tls.encryptionKeyArn !== undefined &&
        !Token.isUnresolved(tls.encryptionKeyArn) &&
        !KMS_KEY_ARN.test(tls.encryptionKeyArn)
      )
        fail(`registries["${host}"].tls.encryptionKeyArn is not a KMS key ARN: ${tls.encryptionKeyArn}`);
    }
    if (creds.encryptionKeyArn !== undefined) {
      if (creds.secretArn === undefined) {
        fail(`registries["${host}"].encryptionKeyArn is only meaningful with an existing secretArn`);
      }
      if (!Token.isUnresolved(creds.encryptionKeyArn) && !KMS_KEY_ARN.test(creds.encryptionKeyArn)) {
        fail(`registries["${host}"].encryptionKeyArn is not a KMS key ARN: ${creds.encryptionKeyArn}`);
      }
    }
  }

  const checkRepositories = (name: string, list: readonly string[]) => {
    for (const repo of list) {
      if (!ECR_REPOSITORY_PATTERN.test(repo) && !ECR_REPOSITORY_ARN.test(repo)) {
        fail(
          `${name}: "${repo}" is neither an ECR repository name (a \`*\` wildcard allowed) nor a repository ARN`,
        );
      }
    }
  };
  const ecrKeys = ["pullRepositories", "pushRepositories", "createRepositories"];
  const unknownEcr = Object.keys(props.ecr ?? {}).filter((k) => !ecrKeys.includes(k));
  if (unknownEcr.length > 0)
    fail(`ecr: unknown setting(s) ${unknownEcr.join(", ")} (known: ${ecrKeys.join(", ")})`);
  const pullRepositories = nonEmptyList("ecr.pullRepositories", props.ecr?.pullRepositories);
  const pushRepositories = nonEmptyList("ecr.pushRepositories", props.ecr?.pushRepositories);
  checkRepositories("ecr.pullRepositories", pullRepositories);
  checkRepositories("ecr.pushRepositories", pushRepositories);

  const ecrRoleArn = props.ecrRoleArn;
  if (ecrRoleArn !== undefined && !Token.isUnresolved(ecrRoleArn) && !ROLE_ARN.test(ecrRoleArn)) {
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

  const promotion = props.promotion;
  if (promotion !== undefined) {
    if (typeof promotion.destination !== "string" || promotion.destination.trim() === "") {
      fail(
        "promotion.destination is required: the registry (and repository prefix) to copy pushed images to",
      );
    }
    if (
      /^[a-z]+:\/\//.test(promotion.destination) ||
      /[:@]\S*$/.test(promotion.destination.split("/").pop() ?? "")
    ) {
      fail(
        `promotion.destination must be a registry host and optional repository prefix without scheme, tag ` +
          `or digest (e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/prod), got "${promotion.destination}"`,
      );
    }
    const repositories = nonEmptyList("promotion.repositories", promotion.repositories);
    if (repositories.length === 0) {
      fail('promotion.repositories must name at least one ECR repository (["*"] promotes every one)');
    }
    for (const repo of repositories) {
      if (!ECR_REPOSITORY_PATTERN.test(repo)) {
        fail(`promotion.repositories: "${repo}" is not an ECR repository name (a \`*\` wildcard allowed)`);
      }
    }
    for (const tag of nonEmptyList("promotion.tags", promotion.tags)) {
      if (!TAG_PATTERN.test(tag))
        fail(`promotion.tags: "${tag}" is not an image tag (a \`*\` wildcard allowed)`);
    }
    for (const account of nonEmptyList("promotion.sourceAccounts", promotion.sourceAccounts)) {
      if (!ACCOUNT.test(account))
        fail(`promotion.sourceAccounts: "${account}" is not a 12-digit AWS account id`);
    }
    const host = promotion.destination.split("/")[0] ?? "";
    if (
      /\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?$/.test(host) &&
      pushRepositories.length === 0 &&
      !ecrRoleArn
    ) {
      fail(
        `promotion.destination "${promotion.destination}" is an ECR registry but ferry has no push permission ` +
          "there: set ecr.pushRepositories (same account) or ecrRoleArn (another account)",
      );
    }
  }

  const migrations = props.migrations ?? [];
  const seen = new Set<string>();
  for (const m of migrations) {
    if (!MIGRATION_NAME.test(m.name ?? "")) {
      fail(`migrations: name "${m.name}" must be 1-40 letters, digits, "-" or "_"`);
    }
    if (seen.has(m.name)) fail(`migrations: the name "${m.name}" is used twice`);
    seen.add(m.name);
    if (!SCHEDULE_EXPRESSION.test(m.schedule ?? "")) {
      fail(
        `migrations["${m.name}"].schedule "${m.schedule}" is not an EventBridge Scheduler expression: ` +
          "rate(<n> minutes|hours|days), cron(<6 fields>) or at(yyyy-mm-ddThh:mm:ss)",
      );
    }
    if (m.config === null || typeof m.config !== "object" || Array.isArray(m.config)) {
      fail(`migrations["${m.name}"].config must be an object`);
    }
    // The schedule function validates the whole bulk request; the two required fields are checked here.
    for (const field of ["source", "destination"]) {
      const value = (m.config as Record<string, unknown>)[field];
      if (typeof value !== "string" || value === "") {
        fail(
          `migrations["${m.name}"].config.${field} is required: a registry host with an optional path prefix`,
        );
      }
    }
    const input = JSON.stringify({ name: m.name, time: "<aws.scheduler.scheduled-time>", config: m.config });
    if (input.length > SCHEDULE_INPUT_MAX) {
      fail(
        `migrations["${m.name}"].config is ${input.length} characters as JSON; EventBridge Scheduler allows ` +
          `${SCHEDULE_INPUT_MAX}: keep long lists in S3 and pass their key`,
      );
    }
  }

  const { allowedSources, allowedDestinations } = resolveAllowLists(
    {
      allowedSources: props.allowedSources,
      allowedDestinations: props.allowedDestinations,
      registries,
      pullRepositories,
      pushRepositories,
      promotion,
      migrations,
    },
    fail,
  );
  const privateRegistries = nonEmptyList("privateRegistries", props.privateRegistries);
  for (const host of privateRegistries) {
    if (typeof host !== "string" || !REGISTRY_HOST.test(host))
      fail(
        `privateRegistries: ${JSON.stringify(host)} is not a registry host (lower-case host name or address ` +
          "with an optional :port)",
      );
  }

  const proxy = props.proxy;
  if (proxy !== undefined) {
    for (const key of ["httpsProxy", "httpProxy"] as const) {
      const v = proxy[key];
      if (v === undefined || Token.isUnresolved(v)) continue;
      const url = URL.canParse(v) ? new URL(v) : undefined;
      if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || !url.hostname)
        fail(`proxy.${key} must be an http:// or https:// proxy URL, e.g. http://proxy.internal:3128`);
      else if (url.username || url.password)
        fail(
          `proxy.${key} must not carry credentials: they would be stored in clear in the template and the functions' configuration (allow the functions' addresses at the proxy instead)`,
        );
      else if (url.pathname !== "/" || url.search || url.hash)
        fail(`proxy.${key} is scheme://host[:port], without a path`);
    }
    for (const entry of proxy.noProxy ?? []) {
      if (typeof entry !== "string" || !/^[^\s,]+$/.test(entry))
        fail(`proxy.noProxy: ${JSON.stringify(entry)} is not a host, address, CIDR range or *`);
    }
  }

  const stateMachineLogLevel = props.stateMachineLogLevel ?? LogLevel.ERROR;
  if (!Object.values(LogLevel).includes(stateMachineLogLevel)) {
    fail(
      `stateMachineLogLevel must be one of ${Object.values(LogLevel).join(", ")}, got ${String(stateMachineLogLevel)}`,
    );
  }
  const logExecutionData = props.logExecutionData ?? false;
  if (typeof logExecutionData !== "boolean") fail("logExecutionData must be true or false");
  if (logExecutionData && stateMachineLogLevel === LogLevel.OFF)
    fail("logExecutionData needs a stateMachineLogLevel other than OFF");

  const namePrefix = props.namePrefix ?? defaultNamePrefix;
  if (!NAME_PREFIX.test(namePrefix)) {
    fail(
      `namePrefix "${namePrefix}" must be 1-48 letters, digits, "-" or "_"` +
        (props.namePrefix === undefined
          ? " (it defaults to `<stack name>-<construct id>`: set it explicitly)"
          : ""),
    );
  }

  const sourceRoot = path.resolve(props.sourceRoot ?? REPOSITORY_ROOT);
  if (!fs.existsSync(path.join(sourceRoot, "package.json"))) {
    fail(`sourceRoot ${sourceRoot} has no package.json: point it at ferry's package or repository`);
  }

  return Object.freeze({
    stepThroughputMiBps,
    blobStepTimeout,
    blobStepMemoryMiB,
    stepBytes,
    directMaxBytes,
    stagingExpirationDays,
    removalPolicy,
    autoDeleteObjects,
    accessLogsBucket: props.accessLogsBucket,
    encryptionKey: props.encryptionKey,
    logRetention,
    registries,
    pullRepositories,
    pushRepositories,
    createRepositories,
    ecrRoleArn,
    promotion,
    migrations,
    allowedSources,
    allowedDestinations,
    privateRegistries,
    proxy,
    stateMachineLogLevel,
    logExecutionData,
    alarmTopic: props.alarmTopic,
    dashboard: props.dashboard ?? true,
    benchWorkers: props.benchWorkers ?? false,
    namePrefix,
    sourceRoot,
  });
}
