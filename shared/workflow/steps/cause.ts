/**
 * What a caught error says, for the records and summaries of Cleanup and Summarize. A module of its own
 * so that Summarize's Lambda code does not bring Cleanup's (and with it the registry client) along.
 */
import type { CaughtError } from "../schemas.ts";

/**
 * The human part of a caught error. On AWS a Lambda error's Cause is JSON
 * (`{"errorType","errorMessage","trace"}`); locally it is the message itself.
 */
export function describeCause(error: CaughtError): string {
  return clip(rawCause(error));
}

/** Step Functions keeps at most 32,768 characters of a cause; ferry's stay well below. */
function clip(s: string, max = 8000): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function rawCause(error: CaughtError): string {
  const c = error.Cause;
  if (typeof c === "string") {
    try {
      const j = JSON.parse(c) as { errorMessage?: unknown; Cause?: unknown };
      if (j && typeof j === "object" && typeof j.errorMessage === "string") return j.errorMessage;
      if (j && typeof j === "object" && typeof j.Cause === "string") return j.Cause;
    } catch {
      // not JSON: the message itself
    }
    return c;
  }
  if (c === undefined || c === null) return error.Error;
  return JSON.stringify(c);
}
