/** Copy workflow (Task states Cleanup, AbortBlob, CleanupAfterFailure): staging and open uploads. */
import { cleanup } from "../../shared/workflow/steps/cleanup.ts";
import { lambda } from "../lib/handler.ts";
import { stepDeps } from "../lib/runtime.ts";

export const handler = lambda("cleanup", cleanup, () => stepDeps());
