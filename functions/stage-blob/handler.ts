/** Copy workflow (Task state StageBlob): one bounded step of source → staging multipart parts. */
import { stageBlob } from "../../shared/workflow/steps/stage.ts";
import { lambda } from "../lib/handler.ts";
import { stepDeps } from "../lib/runtime.ts";

export const handler = lambda("stage-blob", stageBlob, () => stepDeps());
