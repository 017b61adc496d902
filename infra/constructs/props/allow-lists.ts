import { Aws, Token } from "aws-cdk-lib";
import { parsePattern, patternMayMatchUnder } from "../../../shared/workflow/allow-list.ts";
import { fail } from "./common.ts";
import type { ResolvedEcr } from "./ecr.ts";
import type { ResolvedRegistries } from "./registries.ts";
import type { ResolvedTriggers } from "./triggers.ts";

/**
 * The deployment's allow-lists (ALLOWED_SOURCES, ALLOWED_DESTINATIONS): given, or derived from the rest of
 * the configuration. The pattern grammar is shared/workflow/allow-list.ts (infra imports that module, which
 * imports nothing); the functions enforce the lists (shared/workflow/policy.ts).
 *
 * Defaults, least privilege first:
 * - sources: every registry of `registries` (whole registries: the stack holds their credentials to read
 *   them), `ecr.pullRepositories` and the promotion's repositories (this account's and each
 *   `sourceAccounts`' registry in the stack's region), each migration's `config.source`;
 * - destinations: `ecr.pushRepositories`, the promotion's destination, each migration's
 *   `config.destination`. A registry listed in `registries` is *not* a destination by default: holding a
 *   registry's credentials must not let any caller of the API write anything there.
 */
export interface AllowListSettings {
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
}

/** What the default lists derive from: the rest of the configuration, resolved. */
export type AllowListOrigins = ResolvedRegistries &
  Pick<ResolvedEcr, "pullRepositories" | "pushRepositories"> &
  ResolvedTriggers;

export interface ResolvedAllowLists {
  readonly allowedSources: readonly string[];
  readonly allowedDestinations: readonly string[];
}

/** Lambda allows 4 KB of environment variables per function; the lists share it with the rest. */
const LISTS_MAX_CHARACTERS = 2048;

const ECR_ARN = /^arn:(aws[a-z-]*):ecr:([a-z0-9-]+):(\d{12}):repository\/(.+)$/;

/** The stack's own ECR registry host (account, region and URL suffix resolved at deploy time). */
const ownEcrHost = (account: string = Aws.ACCOUNT_ID) => `${account}.dkr.ecr.${Aws.REGION}.${Aws.URL_SUFFIX}`;

/**
 * An ECR repository setting as a pattern: a name (`*` allowed) in the stack's registry, or a full
 * repository ARN → `<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<name>`.
 */
export function ecrRepositoryPattern(repository: string, account?: string): string {
  const arn = ECR_ARN.exec(repository);
  if (!arn) return `${ownEcrHost(account)}/${repository}`;
  const [, partition, region, owner, name] = arn;
  return `${owner}.dkr.ecr.${region}.amazonaws.com${partition === "aws-cn" ? ".cn" : ""}/${name}`;
}

const unique = (list: readonly string[]) => [...new Set(list)];

export function resolveAllowLists(props: AllowListSettings, input: AllowListOrigins): ResolvedAllowLists {
  const given = (name: string, list: readonly string[] | undefined) => {
    if (list === undefined) return undefined;
    if (!Array.isArray(list) || list.some((p) => typeof p !== "string"))
      fail(`${name} must be a list of host[/repository] patterns`);
    return list;
  };
  const sources = given("allowedSources", props.allowedSources);
  const destinations = given("allowedDestinations", props.allowedDestinations);
  const promotion = input.promotion;

  const allowedSources =
    sources ??
    unique([
      ...Object.keys(input.registries),
      ...input.pullRepositories.map((r) => ecrRepositoryPattern(r)),
      ...(promotion?.repositories ?? []).map((r) => ecrRepositoryPattern(r)),
      ...(promotion?.sourceAccounts ?? []).flatMap((account) =>
        (promotion?.repositories ?? []).map((r) => ecrRepositoryPattern(r, account)),
      ),
      ...input.migrations.map((m) => String(m.config.source)),
    ]);
  const allowedDestinations =
    destinations ??
    unique([
      ...input.pushRepositories.map((r) => ecrRepositoryPattern(r)),
      ...(promotion ? [promotion.destination.replace(/\/+$/, "")] : []),
      ...input.migrations.map((m) => String(m.config.destination)),
    ]);

  // Every pattern, given or derived, must parse: the functions parse them again and would refuse every
  // copy (a configuration error) on one they cannot read. Deploy-time values (account, region) are
  // checked with a stand-in.
  for (const [name, list, derived] of [
    ["allowedSources", allowedSources, sources === undefined],
    ["allowedDestinations", allowedDestinations, destinations === undefined],
  ] as const) {
    for (const p of list) {
      const concrete = p.replace(/\$\{Token\[[^\]]*\]\}/g, "x0");
      if (Token.isUnresolved(concrete)) continue;
      try {
        parsePattern(concrete);
      } catch (e) {
        fail(`${name}${derived ? " (derived from the configuration)" : ""}: ${(e as Error).message}`);
      }
    }
  }

  // Given lists replace the defaults: what the configuration itself copies must still be allowed, or it
  // would fail on every run. (A promotion's sources are in this stack's region, known at deploy time only:
  // with a given allowedSources, list them yourself.)
  const covers = (list: readonly string[], location: string) => {
    const slash = location.indexOf("/");
    const host = slash < 0 ? location : location.slice(0, slash);
    const prefix = slash < 0 ? "" : location.slice(slash + 1);
    // Deploy-time values cannot be judged now: such a pattern is given the benefit of the doubt.
    return list.some((p) => Token.isUnresolved(p) || patternMayMatchUnder(parsePattern(p), host, prefix));
  };
  const outside = (what: string, location: string, setting: string) =>
    fail(
      `${what} "${location}" is outside ${setting}: no pattern allows any repository under it ` +
        `(add one, or leave ${setting} out to derive it from the configuration)`,
    );
  if (sources)
    for (const m of input.migrations)
      if (!covers(sources, String(m.config.source)))
        outside(`migrations["${m.name}"].config.source`, String(m.config.source), "allowedSources");
  if (destinations) {
    for (const m of input.migrations)
      if (!covers(destinations, String(m.config.destination)))
        outside(
          `migrations["${m.name}"].config.destination`,
          String(m.config.destination),
          "allowedDestinations",
        );
    if (promotion && !covers(destinations, promotion.destination.replace(/\/+$/, "")))
      outside("promotion.destination", promotion.destination, "allowedDestinations");
  }

  const size = JSON.stringify(allowedSources).length + JSON.stringify(allowedDestinations).length;
  if (size > LISTS_MAX_CHARACTERS)
    fail(
      `allowedSources and allowedDestinations take ${size} characters as JSON; the functions' environment ` +
        `(4 KB in all) leaves them ${LISTS_MAX_CHARACTERS}: use wildcards or fewer, broader prefixes`,
    );
  return { allowedSources, allowedDestinations };
}
