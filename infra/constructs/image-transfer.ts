import { ArnFormat, Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as s3 from "aws-cdk-lib/aws-s3";
import type * as sfn from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";
import { POLICY_ENV, PROMOTION_NAME_PREFIX } from "../../shared/workflow/names.ts";
import { CREATE_REPOSITORIES_ENV } from "../../shared/workflow/repository-settings.ts";
import type { LoadedDefinition } from "../definitions.ts";
import { resourceFinding, type Suppression, suppress } from "../nag.ts";
import {
  ECR_LIST_ACTIONS,
  ECR_PULL_ACTIONS,
  ECR_PUSH_ACTIONS,
  ecrRepositoryArns,
  RegistrySecrets,
} from "./credentials.ts";
import { FerryFunction, FUNCTION_SPECS, type FunctionName, type FunctionSpec } from "./ferry-function.ts";
import { grantStagingKey } from "./grants.ts";
import { Operations } from "./operations.ts";
import { type ImageTransferProps, type ResolvedProps, resolveProps } from "./props.ts";
import { STAGING_PREFIXES, StagingBucket } from "./staging-bucket.ts";
import { MigrationSchedules, PromotionTrigger, TransferApi } from "./triggers.ts";
import { Workflows } from "./workflows.ts";

type StagingAction = "read" | "write" | "delete";
type EcrAction = "pull" | "list" | "push" | "destinationRead" | "create";

/** What a function may touch. Anything not listed is denied (no statement). */
interface Access {
  /** Staging objects under `transfers/` (copies: plans, reports, staged blobs, part lists, open sessions). */
  readonly transfers?: readonly StagingAction[];
  /** Staging objects under `bulk/` (migrations: item lists, Distributed Map results, summaries). */
  readonly bulk?: readonly StagingAction[];
  /** Staging objects under `bench/` (load-test workers' results and their merge). */
  readonly bench?: readonly StagingAction[];
  /** Talks to registries: reads the registry secrets, may assume ecrRoleArn. */
  readonly registries?: boolean;
  /**
   * ECR with ferry's own role: `pull` (and `list`) on the source repositories (ecr.pullRepositories and
   * the promotion sources), `push` on ecr.pushRepositories, `destinationRead` (manifest and layer HEADs)
   * on ecr.pushRepositories, `create` (describe and create missing repositories, with
   * ecr.createRepositories only) on ecr.pushRepositories. Any of them adds ecr:GetAuthorizationToken.
   */
  readonly ecr?: readonly EcrAction[];
}

/**
 * Least privilege per function, from what each step does (shared/workflow/steps/*):
 * - resolve: source manifests → plan.json (+ report.json when up to date); HEADs at the destination;
 *   creates a missing destination repository (ecr.createRepositories) before any blob step.
 * - stageBlob: source GET → multipart parts; parts.json read/written; open/parts records deleted.
 * - uploadBlob: direct copies and mounts (source GET, destination push), staged uploads (ranged GET).
 * - putManifests: plan.json read, destination HEADs and manifest PUTs, report.json written.
 * - cleanup: open records read, registry upload sessions cancelled (destination), staged objects deleted.
 * - enumerate: catalog/tags (source), immutable-tag HEADs (destination) → bulk/<id>/items.jsonl.
 * - summarize: ResultWriter files listed and read → summary.json.
 * - api: report.json of a transfer (GET /transfers/{id}); starting copies is granted below.
 */
const ACCESS: Readonly<Record<FunctionName, Access>> = {
  resolve: { registries: true, ecr: ["pull", "destinationRead", "create"], transfers: ["write"] },
  stageBlob: { registries: true, ecr: ["pull"], transfers: ["read", "write", "delete"] },
  uploadBlob: { registries: true, ecr: ["pull", "push"], transfers: ["read", "write", "delete"] },
  putManifests: { registries: true, ecr: ["push"], transfers: ["read", "write"] },
  cleanup: { registries: true, ecr: ["push"], transfers: ["read", "write", "delete"] },
  enumerate: { registries: true, ecr: ["pull", "list", "destinationRead"], bulk: ["write"] },
  summarize: { bulk: ["read", "write"] },
  api: { transfers: ["read"] },
  event: {},
  schedule: {},
  // The load-test worker talks to registries with the stack's registry secrets (or ecrRoleArn), like the
  // steps, but gets no ECR permission of its own; both bench functions write results under bench/ only,
  // and a replay worker reads its part of the trace there (bench/<runId>/trace/).
  benchWorker: { registries: true, bench: ["read", "write"] },
  benchAggregate: { bench: ["read", "write"] },
};

const STAGING_ACTIONS: Readonly<Record<StagingAction, readonly string[]>> = {
  read: ["s3:GetObject"],
  write: ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
  delete: ["s3:DeleteObject", "s3:AbortMultipartUpload"],
};

const ECR_ACTIONS: Readonly<Record<EcrAction, readonly string[]>> = {
  pull: ECR_PULL_ACTIONS,
  list: ECR_LIST_ACTIONS,
  push: ECR_PUSH_ACTIONS,
  destinationRead: ["ecr:BatchGetImage", "ecr:BatchCheckLayerAvailability"],
  // (+ ecr:PutLifecyclePolicy with a lifecycle policy; nothing at all without ecr.createRepositories)
  create: ["ecr:DescribeRepositories", "ecr:CreateRepository"],
};

/** `["app", "team-*"]` → `app|team-.*`: EventBridge/IAM-style `*` wildcards as one regular expression. */
export function wildcardsToRegex(patterns: readonly string[]): string {
  return patterns
    .map((p) =>
      p
        .split("*")
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
        .join(".*"),
    )
    .join("|");
}

const REASON_L1 =
  "ferry targets nodejs22.x on purpose: the repository pins Node 22 (package.json `node` devDependency), bundles for node22 and tests on it; move to nodejs24.x together with that pin.";
const REASON_XRAY =
  "X-Ray tracing (Tracing.ACTIVE) needs xray:PutTraceSegments/PutTelemetryRecords, which have no resource-level permissions.";
const REASON_ECR_TOKEN =
  "ecr:GetAuthorizationToken has no resource-level permissions (the token is per registry, account-wide); what the token may do is limited by the repository-scoped ECR statements beside it.";
const REASON_STAGING =
  "Staging keys are chosen at run time (execution id, blob digest): access is limited to one prefix of the staging bucket (transfers/, bulk/ or bench/), with only the actions this step needs.";
const REASON_ECR_WILDCARD =
  "Repository patterns with `*` are the operator's own, named in the ecr/promotion props.";

/**
 * ferry on AWS: the staging bucket, one function per workflow step and trigger, the copy-image and
 * bulk-migrate state machines (from shared/workflow), the API, the promotion rule, the migration
 * schedules, registry secrets and alarms. Every prop is optional except inside `promotion`/`migrations`;
 * `resolveProps` documents the defaults and rejects bad combinations at synth time.
 */
export class ImageTransfer extends Construct {
  public readonly props: ResolvedProps;
  public readonly stagingBucket: s3.Bucket;
  public readonly accessLogsBucket: s3.Bucket | undefined;
  public readonly functions: Readonly<Partial<Record<FunctionName, FerryFunction>>>;
  public readonly registrySecrets: RegistrySecrets;
  public readonly copyImage: sfn.StateMachine;
  public readonly bulkMigrate: sfn.StateMachine;
  /** The load-test fan-out (load/fanout.asl.json), with `benchWorkers`. */
  public readonly benchFanout: sfn.StateMachine | undefined;
  /** The definition files as loaded (text embedded in the template, placeholders used). */
  public readonly definitions: Readonly<Record<string, LoadedDefinition>>;
  public readonly api: TransferApi;
  public readonly promotion: PromotionTrigger | undefined;
  public readonly schedules: MigrationSchedules;
  public readonly operations: Operations;

  constructor(scope: Construct, id: string, props: ImageTransferProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    const p = resolveProps(props, `${stack.stackName}-${id}`);
    this.props = p;

    const staging = new StagingBucket(this, "Staging", p);
    this.stagingBucket = staging.bucket;
    this.accessLogsBucket = staging.accessLogsBucket;
    this.registrySecrets = new RegistrySecrets(this, "RegistrySecrets", p.registries);

    // Where copies may go (shared/workflow/policy.ts), for every function that starts or runs one; the
    // functions refuse everything when a list is missing or empty.
    const policyEnvironment: Record<string, string> = {
      [POLICY_ENV.sources]: stack.toJsonString(p.allowedSources),
      [POLICY_ENV.destinations]: stack.toJsonString(p.allowedDestinations),
    };
    // Registries that may be reached on private addresses, for every function with a registry client.
    // ... and how they connect: per-registry TLS settings, a forward proxy (shared/registry/http/).
    const networkEnvironment: Record<string, string> = {
      [POLICY_ENV.privateRegistries]: JSON.stringify(p.privateRegistries),
      ...this.registrySecrets.tlsEnvironment(),
      ...(p.proxy?.httpsProxy ? { HTTPS_PROXY: p.proxy.httpsProxy } : {}),
      ...(p.proxy?.httpProxy ? { HTTP_PROXY: p.proxy.httpProxy } : {}),
      ...(p.proxy?.noProxy?.length ? { NO_PROXY: p.proxy.noProxy.join(",") } : {}),
    };
    const stepEnvironment: Record<string, string> = {
      STAGING_BUCKET: this.stagingBucket.bucketName,
      STEP_BYTES: String(p.stepBytes),
      DIRECT_MAX_BYTES: String(p.directMaxBytes),
      REGISTRY_SECRETS: this.registrySecrets.environmentValue(),
      ...(p.ecrRoleArn ? { ECR_ROLE_ARN: p.ecrRoleArn } : {}),
      ...policyEnvironment,
      ...networkEnvironment,
    };
    const blobSpec = (spec: FunctionSpec): FunctionSpec => ({
      ...spec,
      memoryMiB: p.blobStepMemoryMiB,
      timeout: p.blobStepTimeout,
    });

    const functions: Partial<Record<FunctionName, FerryFunction>> = {};
    const make = (
      name: FunctionName,
      environment: Record<string, string>,
      spec: FunctionSpec = FUNCTION_SPECS[name],
    ) => {
      const fn = new FerryFunction(this, `${name.charAt(0).toUpperCase()}${name.slice(1)}Function`, {
        spec,
        sourceRoot: p.sourceRoot,
        logRetention: p.logRetention,
        environment,
      });
      functions[name] = fn;
      this.grant(fn, ACCESS[name], p);
      return fn;
    };

    // Only Resolve creates repositories (shared/workflow/steps/resolve.ts), so only it gets the settings.
    const resolve = make("resolve", {
      ...stepEnvironment,
      ...(p.createRepositories ? { [CREATE_REPOSITORIES_ENV]: JSON.stringify(p.createRepositories) } : {}),
    });
    const stageBlob = make("stageBlob", stepEnvironment, blobSpec(FUNCTION_SPECS.stageBlob));
    const uploadBlob = make("uploadBlob", stepEnvironment, blobSpec(FUNCTION_SPECS.uploadBlob));
    const putManifests = make("putManifests", stepEnvironment);
    const cleanup = make("cleanup", stepEnvironment);
    const enumerate = make("enumerate", stepEnvironment);
    const summarize = make("summarize", { STAGING_BUCKET: this.stagingBucket.bucketName });
    const bench = p.benchWorkers
      ? {
          worker: make("benchWorker", {
            STAGING_BUCKET: this.stagingBucket.bucketName,
            REGISTRY_SECRETS: this.registrySecrets.environmentValue(),
            ...(p.ecrRoleArn ? { ECR_ROLE_ARN: p.ecrRoleArn } : {}),
            ...networkEnvironment,
          }).function,
          aggregate: make("benchAggregate", { STAGING_BUCKET: this.stagingBucket.bucketName }).function,
        }
      : undefined;

    const workflows = new Workflows(this, "Workflows", {
      sourceRoot: p.sourceRoot,
      namePrefix: p.namePrefix,
      logRetention: p.logRetention,
      logLevel: p.stateMachineLogLevel,
      logExecutionData: p.logExecutionData,
      stagingBucket: this.stagingBucket,
      functions: {
        resolve: resolve.function,
        stageBlob: stageBlob.function,
        uploadBlob: uploadBlob.function,
        putManifests: putManifests.function,
        cleanup: cleanup.function,
        enumerate: enumerate.function,
        summarize: summarize.function,
      },
      bench,
    });
    this.copyImage = workflows.copyImage;
    this.bulkMigrate = workflows.bulkMigrate;
    this.benchFanout = workflows.benchFanout;
    this.definitions = workflows.definitions;
    const copyExecutions = stack.formatArn({
      service: "states",
      resource: "execution",
      resourceName: `${p.namePrefix}-copy-image:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });

    // Triggers. Only the API may describe copies; the API and promotion may start them; only the
    // schedule function may start a bulk migration.
    const api = make("api", {
      COPY_STATE_MACHINE_ARN: this.copyImage.stateMachineArn,
      STAGING_BUCKET: this.stagingBucket.bucketName,
      ...policyEnvironment,
    });
    this.copyImage.grantStartExecution(api.role);
    api.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ["states:DescribeExecution"], resources: [copyExecutions] }),
    );
    suppress(api, [
      [
        "AwsSolutions-IAM5",
        "GET /transfers/{id} describes executions of the copy-image machine only; their names are chosen at run time.",
        [resourceFinding(this, copyExecutions)],
      ],
    ]);
    this.api = new TransferApi(this, "Api", {
      handler: api.function,
      logRetention: p.logRetention,
      name: `${p.namePrefix}-api`,
    });

    let eventFn: FerryFunction | undefined;
    if (p.promotion) {
      eventFn = make("event", {
        COPY_STATE_MACHINE_ARN: this.copyImage.stateMachineArn,
        PROMOTION_DESTINATION: p.promotion.destination,
        // The event function matches whole names against regular expressions (shared/workflow/triggers.ts);
        // the rule already filtered with the same patterns, so this is a second line of defence.
        PROMOTION_REPOSITORY_FILTER: wildcardsToRegex(p.promotion.repositories),
        ...(p.promotion.tags?.length ? { PROMOTION_TAG_FILTER: wildcardsToRegex(p.promotion.tags) } : {}),
        ...policyEnvironment,
      });
      this.copyImage.grantStartExecution(eventFn.role);
      // A re-delivered event looks for the promotion's earlier attempts (shared/workflow/triggers.ts):
      // DescribeExecution on the copy machine's promotion executions only (named `p-…`).
      const promotionExecutions = stack.formatArn({
        service: "states",
        resource: "execution",
        resourceName: `${p.namePrefix}-copy-image:${PROMOTION_NAME_PREFIX}*`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
      eventFn.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ["states:DescribeExecution"], resources: [promotionExecutions] }),
      );
      suppress(eventFn, [
        [
          "AwsSolutions-IAM5",
          "A re-delivered ECR event describes the earlier attempts of its promotion: executions of the copy-image machine whose names start with the promotion prefix, chosen at run time.",
          [resourceFinding(this, promotionExecutions)],
        ],
      ]);
      this.promotion = new PromotionTrigger(this, "Promotion", {
        promotion: p.promotion,
        handler: eventFn.function,
        namePrefix: p.namePrefix,
      });
    }

    const schedule = make("schedule", {
      BULK_STATE_MACHINE_ARN: this.bulkMigrate.stateMachineArn,
      ...policyEnvironment,
    });
    this.bulkMigrate.grantStartExecution(schedule.role);
    this.schedules = new MigrationSchedules(this, "Migrations", {
      migrations: p.migrations,
      handler: schedule.function,
    });

    this.functions = functions;

    this.operations = new Operations(this, "Operations", {
      namePrefix: p.namePrefix,
      stateMachines: { CopyImage: this.copyImage, BulkMigrate: this.bulkMigrate },
      triggerFunctions: {
        Api: api.function,
        Schedule: schedule.function,
        ...(eventFn ? { Event: eventFn.function } : {}),
      },
      stepFunctions: {
        Resolve: resolve.function,
        StageBlob: stageBlob.function,
        UploadBlob: uploadBlob.function,
        PutManifests: putManifests.function,
        Cleanup: cleanup.function,
        Enumerate: enumerate.function,
        Summarize: summarize.function,
      },
      api: this.api.api,
      deadLetterQueue: this.promotion?.deadLetterQueue,
      alarmTopic: p.alarmTopic,
      dashboard: p.dashboard,
    });
  }

  /** Adds exactly the statements `access` names to the function's role, with their nag acknowledgements. */
  private grant(fn: FerryFunction, access: Access, p: ResolvedProps): void {
    const role = fn.role;
    const suppressions: Suppression[] = [["AwsSolutions-L1", REASON_L1]];
    const resourceStar = [REASON_XRAY];
    const stagingFindings: string[] = [];

    const key = this.stagingBucket.encryptionKey;
    let encrypts = false;
    let decrypts = false;
    const lists: Array<keyof typeof STAGING_PREFIXES> = [];
    for (const area of ["transfers", "bulk", "bench"] as const) {
      const actions = access[area] ?? [];
      if (actions.length === 0) continue;
      const objectActions = [...new Set(actions.flatMap((a) => STAGING_ACTIONS[a]))];
      const objects = this.stagingBucket.arnForObjects(`${STAGING_PREFIXES[area]}*`);
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: objectActions, resources: [objects] }));
      stagingFindings.push(resourceFinding(this, objects));
      encrypts ||= actions.includes("write");
      decrypts ||= actions.includes("read") || actions.includes("write");
      if (actions.includes("read") || actions.includes("delete")) lists.push(area);
    }
    if (lists.length > 0) {
      // Cleanup and summarize list prefixes; the steps read records that may not exist yet (parts.json,
      // open/…, report.json). Listing is limited to the function's own prefixes. A GET or HEAD of a
      // missing key carries no s3:prefix, so S3 may answer it 403 rather than 404: the S3 store then lists
      // exactly that key (which carries it) to tell "missing" from "refused" (shared/staging/s3.ts).
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ["s3:ListBucket"],
          resources: [this.stagingBucket.bucketArn],
          conditions: { StringLike: { "s3:prefix": lists.map((area) => `${STAGING_PREFIXES[area]}*`) } },
        }),
      );
    }
    if (key && (encrypts || decrypts)) grantStagingKey(role, key, encrypts);
    if (stagingFindings.length > 0) suppressions.push(["AwsSolutions-IAM5", REASON_STAGING, stagingFindings]);

    if (access.registries) {
      this.registrySecrets.grantRead(role);
      if (p.ecrRoleArn) {
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({ actions: ["sts:AssumeRole"], resources: [p.ecrRoleArn] }),
        );
      }
    }

    const ecr = access.ecr ?? [];
    if (ecr.length > 0) {
      const promotion = p.promotion;
      const sources = [
        ...ecrRepositoryArns(this, p.pullRepositories),
        ...(promotion ? ecrRepositoryArns(this, promotion.repositories) : []),
        ...(promotion?.sourceAccounts ?? []).flatMap((account) =>
          ecrRepositoryArns(this, promotion?.repositories ?? [], account),
        ),
      ];
      const destinations = ecrRepositoryArns(this, p.pushRepositories);
      // One statement per resource set: source reads, destination writes (and reads).
      const sourceActions = new Set(ecr.flatMap((a) => (a === "pull" || a === "list" ? ECR_ACTIONS[a] : [])));
      const create = p.createRepositories;
      const destinationActions = new Set(
        ecr.flatMap((a) =>
          a === "push" || a === "destinationRead"
            ? ECR_ACTIONS[a]
            : a === "create" && create
              ? [...ECR_ACTIONS.create, ...(create.lifecyclePolicy ? ["ecr:PutLifecyclePolicy"] : [])]
              : [],
        ),
      );
      const wildcards: string[] = [];
      const add = (actions: Set<string>, arns: string[]) => {
        if (actions.size === 0 || arns.length === 0) return false;
        role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: [...actions], resources: arns }));
        for (const arn of arns) if (arn.includes("*")) wildcards.push(resourceFinding(this, arn));
        return true;
      };
      const addedSource = add(sourceActions, sources);
      const addedDestination = add(destinationActions, destinations);
      if (ecr.includes("create") && create?.kmsKey) {
        // ECR validates the key and grants itself its use on behalf of the caller, through ECR only.
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({
            actions: ["kms:CreateGrant", "kms:DescribeKey", "kms:RetireGrant"],
            resources: [create.kmsKey],
            conditions: { StringEquals: { "kms:ViaService": `ecr.${Stack.of(this).region}.amazonaws.com` } },
          }),
        );
      }
      if (addedSource || addedDestination) {
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({ actions: ["ecr:GetAuthorizationToken"], resources: ["*"] }),
        );
        resourceStar.push(REASON_ECR_TOKEN);
      }
      if (wildcards.length > 0) suppressions.push(["AwsSolutions-IAM5", REASON_ECR_WILDCARD, wildcards]);
    }
    suppressions.push(["AwsSolutions-IAM5", resourceStar.join(" "), ["Resource::*"]]);
    suppress(fn, suppressions);
  }
}
