/**
 * The pure core of every workflow step: `(event, deps) → result`. Lambda handlers (functions/) wrap
 * these with middleware; the local runner calls them in process. Each step validates its event and throws
 * errors named for the definitions' Retry/Catch (errors.ts). Import a single step from steps/ where
 * start-up matters; this index is for the local runner.
 */
import type { StepDeps } from "./deps.ts";
import { cleanup } from "./steps/cleanup.ts";
import { enumerate } from "./steps/enumerate.ts";
import { putManifests } from "./steps/manifests.ts";
import { resolve } from "./steps/resolve.ts";
import { stageBlob } from "./steps/stage.ts";
import { summarize } from "./steps/summarize.ts";
import { uploadBlob } from "./steps/upload.ts";

export type { StepDeps };
export { cleanup, enumerate, putManifests, resolve, stageBlob, summarize, uploadBlob };

/** Step functions by the Lambda function that runs them (contract.ts: FUNCTIONS, and the TASKS bindings). */
export const STEPS = {
  resolve,
  stageBlob,
  uploadBlob,
  putManifests,
  cleanup,
  enumerate,
  summarize,
} as const satisfies Record<string, (event: unknown, deps: StepDeps) => Promise<unknown>>;

export type StepName = keyof typeof STEPS;
