/**
 * API Gateway (REST or HTTP API, proxy integration):
 *   POST /transfers       body: a copy request {source, destination, tags?, platforms?, options?, requestId?}
 *                         → 202 {id}: an execution of the copy state machine named after the request, so
 *                         a duplicate request answers with the same id (and its status) and starts
 *                         nothing; a source or destination outside the allow-lists → 400
 *   GET  /transfers/{id}  → the execution's status (DescribeExecution) and the per-blob report (staging)
 * Env: COPY_STATE_MACHINE_ARN, ALLOWED_SOURCES, ALLOWED_DESTINATIONS (missing: every copy refused),
 * STAGING_BUCKET (optional: without it GET shows the status only).
 * API Gateway gives integrations 29 s: the transfer runs asynchronously in the state machine.
 */

import { policyFromEnv, requireEnv } from "../../shared/aws/env.ts";
import { S3StagingStore } from "../../shared/staging/s3.ts";
import { type ApiDeps, type ApiEvent, type ApiResult, handleApi } from "../../shared/workflow/triggers.ts";
import { lambda, logger } from "../lib/handler.ts";
import { sfnExecutions } from "../lib/sfn.ts";

/** The handler over given dependencies (tests pass a fake Step Functions). */
export function createApiHandler(deps: () => ApiDeps | Promise<ApiDeps>) {
  return lambda("api", handleApi, deps).onError(async (request) => {
    // Anything unexpected (Step Functions unreachable, a bug): a 500 with a message, not a stack trace.
    logger.error("api request failed", { error: String((request.error as Error)?.message ?? request.error) });
    request.response = {
      statusCode: 500,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ error: "internal error; see the function's logs" }),
    } satisfies ApiResult;
  });
}

let deps: Promise<ApiDeps> | undefined;

export const handler = createApiHandler(() => {
  deps ??= (async () => {
    const bucket = process.env.STAGING_BUCKET;
    return {
      executions: await sfnExecutions(),
      copyStateMachineArn: requireEnv(process.env, "COPY_STATE_MACHINE_ARN"),
      policy: policyFromEnv(process.env),
      ...(bucket ? { staging: new S3StagingStore({ bucket }) } : {}),
    };
  })();
  return deps;
});

export type { ApiEvent };
