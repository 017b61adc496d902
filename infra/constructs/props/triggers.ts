/**
 * What starts copies without a caller: the promotion of images pushed to ECR, and bulk migrations on a
 * schedule (../triggers.ts builds both).
 */
import { MIGRATION_NAME } from "../../../shared/workflow/contract.ts";
import { fail, optionalList } from "./common.ts";
import { ECR_REPOSITORY_PATTERN, type ResolvedEcr } from "./ecr.ts";

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

export interface TriggerSettings {
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
}

export interface ResolvedTriggers {
  readonly promotion: PromotionProps | undefined;
  readonly migrations: readonly MigrationSchedule[];
}

const TAG_PATTERN = /^[A-Za-z0-9_*][A-Za-z0-9_.*-]{0,127}$/;
const ACCOUNT = /^\d{12}$/;
/** As the schedule function accepts it (shared/workflow/triggers.ts: execution names start with it). */
const SCHEDULE_EXPRESSION =
  /^(?:rate\(\d+ (?:minute|minutes|hour|hours|day|days)\)|cron\([^()]+\)|at\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\))$/;
/** EventBridge Scheduler limits a target's input to 8,192 characters (AWS::Scheduler::Schedule Target.Input). */
const SCHEDULE_INPUT_MAX = 8192;

/** Checks the promotion, then the migrations; `ecr` is where ferry may push (a promotion into ECR needs it). */
export function resolveTriggers(props: TriggerSettings, ecr: ResolvedEcr): ResolvedTriggers {
  return { promotion: checkPromotion(props.promotion, ecr), migrations: checkMigrations(props.migrations) };
}

function checkPromotion(promotion: PromotionProps | undefined, ecr: ResolvedEcr): PromotionProps | undefined {
  if (promotion === undefined) return undefined;
  if (typeof promotion.destination !== "string" || promotion.destination.trim() === "") {
    fail("promotion.destination is required: the registry (and repository prefix) to copy pushed images to");
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
  const repositories = optionalList("promotion.repositories", promotion.repositories);
  if (repositories.length === 0) {
    fail('promotion.repositories must name at least one ECR repository (["*"] promotes every one)');
  }
  for (const repo of repositories) {
    if (!ECR_REPOSITORY_PATTERN.test(repo)) {
      fail(`promotion.repositories: "${repo}" is not an ECR repository name (a \`*\` wildcard allowed)`);
    }
  }
  for (const tag of optionalList("promotion.tags", promotion.tags)) {
    if (!TAG_PATTERN.test(tag))
      fail(`promotion.tags: "${tag}" is not an image tag (a \`*\` wildcard allowed)`);
  }
  for (const account of optionalList("promotion.sourceAccounts", promotion.sourceAccounts)) {
    if (!ACCOUNT.test(account))
      fail(`promotion.sourceAccounts: "${account}" is not a 12-digit AWS account id`);
  }
  const host = promotion.destination.split("/")[0] ?? "";
  if (
    /\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?$/.test(host) &&
    ecr.pushRepositories.length === 0 &&
    !ecr.ecrRoleArn
  ) {
    fail(
      `promotion.destination "${promotion.destination}" is an ECR registry but ferry has no push permission ` +
        "there: set ecr.pushRepositories (same account) or ecrRoleArn (another account)",
    );
  }
  return promotion;
}

function checkMigrations(list: readonly MigrationSchedule[] | undefined): readonly MigrationSchedule[] {
  const migrations = list ?? [];
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
  return migrations;
}
