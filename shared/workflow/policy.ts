/**
 * Where a deployment may copy from and to. Behind an API anyone with `execute-api:Invoke` may call, with
 * the stack's registry secrets and ECR roles, "copy anything anywhere" would copy private images out and
 * overwrite the deployment's own repositories with outside images. So every copy is checked against two
 * allow-lists (allow-list.ts patterns, from ALLOWED_SOURCES / ALLOWED_DESTINATIONS): when a request enters
 * (API, promotion event, schedule) and again in every step that talks to a registry, since a state machine
 * can be started directly, bypassing the triggers. Refusals are ValidationErrors (never retried; the API
 * answers 400) naming the refused reference and the list that refused it.
 *
 * The deployed functions build their policy from the environment (shared/aws/env.ts): a missing or
 * empty list allows nothing. Only in-process callers that act for the user who names the registries
 * (`ferry workflow copy`, `ferry sync`, tests: the local runner) use ALLOW_ANY, explicitly.
 */
import { formatRepository, parseReference, parseRepository, type Repository } from "../registry/reference.ts";
import { parsePattern, patternMatches, patternMayMatchUnder, type RepositoryPattern } from "./allow-list.ts";
import { ValidationError } from "./errors.ts";
import { POLICY_ENV, POLICY_SETTINGS } from "./names.ts";

/** `"any"`: no allow-list (local runs only). */
export type AllowList = "any" | readonly RepositoryPattern[];

export interface TransferPolicy {
  readonly sources: AllowList;
  readonly destinations: AllowList;
}

/** No allow-list: for the local runner, where the user names source and destination themselves. */
export const ALLOW_ANY: TransferPolicy = Object.freeze({ sources: "any", destinations: "any" });

export type Side = "sources" | "destinations";
const ROLE = { sources: "source", destinations: "destination" } as const;

/** A policy from pattern lists; a bad pattern throws an Error naming the list. */
export function transferPolicy(lists: {
  sources: readonly string[];
  destinations: readonly string[];
}): TransferPolicy {
  const compile = (side: Side) =>
    Object.freeze(
      lists[side].map((p) => {
        try {
          return parsePattern(p);
        } catch (e) {
          throw new Error(`${POLICY_ENV[side]}: ${(e as Error).message}`);
        }
      }),
    );
  return Object.freeze({ sources: compile("sources"), destinations: compile("destinations") });
}

function refuse(side: Side, shown: string, list: readonly RepositoryPattern[], what: string): never {
  const reason =
    list.length === 0
      ? `${POLICY_ENV[side]} is empty: this deployment allows no ${ROLE[side]}`
      : `${what} matches no pattern of ${POLICY_ENV[side]}`;
  throw new ValidationError(
    `${ROLE[side]} ${JSON.stringify(shown)} is not allowed: ${reason} (deployment setting ${POLICY_SETTINGS[side]})`,
  );
}

/** Whether `repo` is allowed on `side` (no exception). */
export function isRepositoryAllowed(policy: TransferPolicy, side: Side, repo: Repository): boolean {
  const list = policy[side];
  return list === "any" || list.some((p) => patternMatches(p, repo.registry, repo.repository));
}

/** Throws a ValidationError unless `repo` (a Repository or `host/repository`) is allowed on `side`. */
export function checkRepositoryAllowed(
  policy: TransferPolicy,
  side: Side,
  repo: Repository | string,
  shown = typeof repo === "string" ? repo : formatRepository(repo),
): void {
  const list = policy[side];
  if (list === "any") return;
  const r = typeof repo === "string" ? parseRepository(repo) : repo;
  if (!isRepositoryAllowed(policy, side, r)) refuse(side, shown, list, formatRepository(r));
}

/**
 * Checks a copy request's source and destination (image references) before anything is started or
 * fetched. Throws a ValidationError naming the refused reference and the list that refused it.
 */
export function checkTransferAllowed(
  request: { readonly source: string; readonly destination: string },
  policy: TransferPolicy,
): void {
  for (const [side, ref] of [
    ["sources", request.source],
    ["destinations", request.destination],
  ] as const) {
    let parsed: Repository;
    try {
      parsed = parseReference(ref, null);
    } catch (e) {
      throw new ValidationError(`${ROLE[side]} ${JSON.stringify(ref)}: ${(e as Error).message}`);
    }
    checkRepositoryAllowed(policy, side, parsed, ref);
  }
}

/**
 * Checks a location `host[/prefix]` (a bulk migration's source or destination): refused when no pattern
 * could allow any repository under it. Each repository found there is then checked exactly.
 */
export function checkLocationAllowed(policy: TransferPolicy, side: Side, location: string): void {
  const list = policy[side];
  if (list === "any") return;
  const slash = location.indexOf("/");
  const prefix = slash < 0 ? "" : location.slice(slash + 1);
  let host: string;
  try {
    // The host as references normalise it (Docker Hub's aliases are docker.io); the prefix stays as is.
    host = parseRepository(`${slash < 0 ? location : location.slice(0, slash)}/x/y`).registry;
  } catch (e) {
    throw new ValidationError(`${ROLE[side]} ${JSON.stringify(location)}: ${(e as Error).message}`);
  }
  if (!list.some((p) => patternMayMatchUnder(p, host, prefix))) refuse(side, location, list, location);
}
