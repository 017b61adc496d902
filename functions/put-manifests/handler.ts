/** Copy workflow (Task state PutManifests): the final manifest PUT, only when every blob is present. */
import { putManifests } from "../../shared/workflow/steps/manifests.ts";
import { lambda } from "../lib/handler.ts";
import { stepDeps } from "../lib/runtime.ts";

export const handler = lambda("put-manifests", putManifests, () => stepDeps());
