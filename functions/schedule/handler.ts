/**
 * A schedule (EventBridge Scheduler or a scheduled rule) starts a bulk migration: the event is
 * `{name?, time?, config}` (config: a bulk request — source, destination, filters, options), or an
 * EventBridge scheduled event carrying that in `detail`. With a time, one tick starts one execution
 * however often it is delivered. A source or destination under which the allow-lists allow nothing throws
 * ValidationError. Env: BULK_STATE_MACHINE_ARN, ALLOWED_SOURCES, ALLOWED_DESTINATIONS (missing: every
 * migration refused).
 */

import { policyFromEnv, requireEnv } from "../../shared/aws/env.ts";
import type { TransferPolicy } from "../../shared/workflow/policy.ts";
import { type Executions, handleSchedule } from "../../shared/workflow/triggers.ts";
import { lambda } from "../lib/handler.ts";
import { sfnExecutions } from "../lib/sfn.ts";

export interface ScheduleDeps {
  executions: Executions;
  bulkStateMachineArn: string;
  policy: TransferPolicy;
}

export function createScheduleHandler(deps: () => ScheduleDeps | Promise<ScheduleDeps>) {
  return lambda("schedule", handleSchedule, deps);
}

let deps: Promise<ScheduleDeps> | undefined;

export const handler = createScheduleHandler(() => {
  deps ??= (async () => ({
    executions: await sfnExecutions(),
    bulkStateMachineArn: requireEnv(process.env, "BULK_STATE_MACHINE_ARN"),
    policy: policyFromEnv(process.env),
  }))();
  return deps;
});
