/** Copy workflow step 1 (Task state Resolve): manifest fetch → plan in staging → blobs to copy. */
import { resolve } from "../../shared/workflow/steps/resolve.ts";
import { lambda } from "../lib/handler.ts";
import { stepDeps } from "../lib/runtime.ts";

export const handler = lambda("resolve", resolve, () => stepDeps());
