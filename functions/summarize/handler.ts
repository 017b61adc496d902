/** Bulk workflow (Task state Summarize): ResultWriter output → summary.json. */
import { summarize } from "../../shared/workflow/steps/summarize.ts";
import { lambda } from "../lib/handler.ts";
import { stepDeps } from "../lib/runtime.ts";

export const handler = lambda("summarize", summarize, () => stepDeps());
