/**
 * The middleware every handler shares (middy): structured logs with the Lambda context (Powertools
 * Logger), one log line per failure naming the error, and errors thrown with the stable names the
 * definitions' Retry/Catch match (the step core already maps them; this is the last guard).
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { toWorkflowError } from "../../shared/workflow/errors.ts";

export const logger = new Logger({ serviceName: "ferry" });

/** Logs failures (name, code, message) and rethrows them as workflow errors. */
export function workflowErrors() {
  return {
    onError: async (request: { error: unknown; event: unknown }) => {
      const err = toWorkflowError(request.error);
      logger.error("step failed", {
        errorName: err.name,
        code: (err as { code?: string }).code,
        errorMessage: err.message,
      });
      request.error = err;
    },
  };
}

/** A Lambda handler from a pure `(event, deps) → result` core. `deps` is built lazily (once). */
export function lambda<E, R, D>(
  name: string,
  core: (event: E, deps: D) => Promise<R>,
  deps: () => D | Promise<D>,
) {
  return middy(async (event: E, _context: Context) => core(event, await deps()))
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(workflowErrors())
    .before(async () => {
      logger.appendKeys({ function: name });
    });
}
