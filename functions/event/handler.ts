/**
 * EventBridge `ECR Image Action` events (source aws.ecr): a successful PUSH of a tag whose repository
 * and tag match the filters starts the copy state machine to promote that digest to
 * PROMOTION_DESTINATION/<repository>:<tag>. Re-delivered events find their execution already started
 * (deterministic names) and start nothing — unless it failed, timed out or was aborted: then the next
 * attempt (`<name>-r2`, …) starts. A malformed event, or a source or destination outside the allow-lists,
 * throws ValidationError; others are ignored with a reason in the result.
 * Env: COPY_STATE_MACHINE_ARN, PROMOTION_DESTINATION (host[/prefix]), PROMOTION_REPOSITORY_FILTER and
 * PROMOTION_TAG_FILTER (regular expressions matched against the whole name; optional), ALLOWED_SOURCES,
 * ALLOWED_DESTINATIONS (missing: every promotion refused).
 */

import { policyFromEnv, requireEnv } from "../../shared/aws/env.ts";
import type { TransferPolicy } from "../../shared/workflow/policy.ts";
import {
  checkPromotionConfig,
  type Executions,
  handlePushEvent,
  type PromotionConfig,
} from "../../shared/workflow/triggers.ts";
import { lambda } from "../lib/handler.ts";
import { sfnExecutions } from "../lib/sfn.ts";

export interface EventDeps {
  executions: Executions;
  copyStateMachineArn: string;
  promotion: PromotionConfig;
  policy: TransferPolicy;
}

export function createEventHandler(deps: () => EventDeps | Promise<EventDeps>) {
  return lambda("event", handlePushEvent, deps);
}

let deps: Promise<EventDeps> | undefined;

export const handler = createEventHandler(() => {
  deps ??= (async () => ({
    executions: await sfnExecutions(),
    copyStateMachineArn: requireEnv(process.env, "COPY_STATE_MACHINE_ARN"),
    promotion: checkPromotionConfig({
      destination: requireEnv(process.env, "PROMOTION_DESTINATION"),
      repositoryFilter: process.env.PROMOTION_REPOSITORY_FILTER || undefined,
      tagFilter: process.env.PROMOTION_TAG_FILTER || undefined,
    }),
    policy: policyFromEnv(process.env),
  }))();
  return deps;
});
