/** A worker of any scenario: a replay replays its part of the trace (replay.ts), the others run runner.ts. */
import { runReplayWorker } from "./replay.ts";
import { runWorker, type WorkerDeps, type WorkerInput, type WorkerResult } from "./runner.ts";

export function runAnyWorker(input: WorkerInput, deps: WorkerDeps = {}): Promise<WorkerResult> {
  return input.config.model.kind === "replay" ? runReplayWorker(input, deps) : runWorker(input, deps);
}
