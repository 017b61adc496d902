/**
 * Names shared by the CDK app (infra/) and the functions it deploys (functions/, shared/workflow): the
 * environment variables that carry the deployment's policy, and the execution names the triggers choose.
 * Data only, no imports: infra/ may import this module (it imports no runtime code).
 */

/** Environment variables of the policy, each a JSON array of strings. */
export const POLICY_ENV = {
  /**
   * `host[/repository]` patterns (allow-list.ts) a copy may read from. Absent or `[]`: nothing may be
   * read — a deployed function fails closed.
   */
  sources: "ALLOWED_SOURCES",
  /** `host[/repository]` patterns a copy may write to. Absent or `[]`: nothing may be written. */
  destinations: "ALLOWED_DESTINATIONS",
  /**
   * Registries (`host` or `host:port`) that may resolve to private, loopback or link-local addresses; every
   * other registry, redirect target and token realm must be public. Absent or `[]`: public only.
   */
  privateRegistries: "PRIVATE_REGISTRIES",
} as const;

/** The deployment settings (infra/config.ts, infra/constructs/props.ts) behind each variable, for messages. */
export const POLICY_SETTINGS = {
  sources: "allowedSources",
  destinations: "allowedDestinations",
  privateRegistries: "privateRegistries",
} as const;

/**
 * Promotion executions are named `p-<hash of source digest, tag, destination>`, then `-r2`, `-r3`, … for
 * new attempts after a failed one (shared/workflow/triggers.ts). The event function may describe these
 * executions only (infra: `states:DescribeExecution` on `…:execution:<copy machine>:p-*`).
 */
export const PROMOTION_NAME_PREFIX = "p-";

/** Attempts of one promotion (the first and its retries on re-delivery) before the event function gives up. */
export const MAX_PROMOTION_ATTEMPTS = 10;
