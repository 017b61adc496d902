/** Wraps a step so whatever it throws carries a name the definitions' Retry/Catch know (errors.ts). */
import type { StepDeps } from "../deps.ts";
import { toWorkflowError } from "../errors.ts";

export function guard<R, D = StepDeps>(fn: (event: unknown, deps: D) => Promise<R>) {
  return async (event: unknown, deps: D): Promise<R> => {
    try {
      return await fn(event, deps);
    } catch (err) {
      throw toWorkflowError(err);
    }
  };
}
