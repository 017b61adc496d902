/**
 * ImageTransfer's props: each concern's props, defaults and synth-time validation live in a module of
 * props/ — steps (sizing), staging, logging, registries, ecr, triggers (promotion, migrations),
 * allow-lists, network — and resolveProps runs them once, in that order (a later one reads what an
 * earlier one resolved), adding the construct-wide props below.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type * as sns from "aws-cdk-lib/aws-sns";
import { type AllowListSettings, type ResolvedAllowLists, resolveAllowLists } from "./props/allow-lists.ts";
import { fail } from "./props/common.ts";
import { type EcrSettings, type ResolvedEcr, resolveEcr } from "./props/ecr.ts";
import { type LoggingSettings, type ResolvedLogging, resolveLogging } from "./props/logging.ts";
import { type NetworkSettings, type ResolvedNetwork, resolveNetwork } from "./props/network.ts";
import { type RegistrySettings, type ResolvedRegistries, resolveRegistries } from "./props/registries.ts";
import { type ResolvedStaging, resolveStaging, type StagingSettings } from "./props/staging.ts";
import { type ResolvedSteps, resolveSteps, type StepSettings } from "./props/steps.ts";
import { type ResolvedTriggers, resolveTriggers, type TriggerSettings } from "./props/triggers.ts";

export type { EcrAccess, EcrRepositoryCreation } from "./props/ecr.ts";
export type { ProxyProps } from "./props/network.ts";
export type { RegistryCredentials, RegistryTlsSecret } from "./props/registries.ts";
export { STEP_ALIGNMENT_BYTES, STEP_TIME_FRACTION } from "./props/steps.ts";
export type { MigrationSchedule, PromotionProps } from "./props/triggers.ts";

export interface ImageTransferProps
  extends StepSettings,
    StagingSettings,
    LoggingSettings,
    RegistrySettings,
    EcrSettings,
    TriggerSettings,
    AllowListSettings,
    NetworkSettings {
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

export interface ResolvedProps
  extends ResolvedSteps,
    ResolvedStaging,
    ResolvedLogging,
    ResolvedRegistries,
    ResolvedEcr,
    ResolvedTriggers,
    ResolvedAllowLists,
    ResolvedNetwork {
  readonly alarmTopic: sns.ITopic | undefined;
  readonly dashboard: boolean;
  readonly benchWorkers: boolean;
  readonly namePrefix: string;
  readonly sourceRoot: string;
}

/** The repository root: infra/constructs/ is two levels below it. */
export const REPOSITORY_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

const NAME_PREFIX = /^[A-Za-z0-9_-]{1,48}$/;

/**
 * Applies defaults and validates every prop once, with messages that name the prop; returns a frozen
 * object. Token values (unresolved CDK references) are accepted where a concrete value cannot be checked.
 */
export function resolveProps(props: ImageTransferProps, defaultNamePrefix: string): ResolvedProps {
  const steps = resolveSteps(props);
  const staging = resolveStaging(props);
  const logging = resolveLogging(props);
  const registries = resolveRegistries(props);
  const ecr = resolveEcr(props);
  const triggers = resolveTriggers(props, ecr);
  const allowLists = resolveAllowLists(props, { ...registries, ...ecr, ...triggers });
  const network = resolveNetwork(props);

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
    ...steps,
    ...staging,
    ...logging,
    ...registries,
    ...ecr,
    ...triggers,
    ...allowLists,
    ...network,
    alarmTopic: props.alarmTopic,
    dashboard: props.dashboard ?? true,
    benchWorkers: props.benchWorkers ?? false,
    namePrefix,
    sourceRoot,
  });
}
