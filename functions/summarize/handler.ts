/**
 * Bulk workflow (Task state Summarize): ResultWriter output → summary.json. Staging only: no registry
 * client, so none of its code (undici, registry credentials) is in this function's bundle.
 */
import { summarize } from "../../shared/workflow/steps/summarize.ts";
import { lambda } from "../lib/handler.ts";
import { stagingDeps } from "../lib/runtime.ts";

export const handler = lambda("summarize", summarize, () => stagingDeps());
