/** Bulk workflow (Task state Enumerate): catalog and tags, filtered → items.jsonl in staging. */
import { enumerate } from "../../shared/workflow/steps/enumerate.ts";
import { lambda } from "../lib/handler.ts";
import { stepDeps } from "../lib/runtime.ts";

export const handler = lambda("enumerate", enumerate, () => stepDeps());
