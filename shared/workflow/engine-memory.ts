/**
 * Keeps aws-local-stepfunctions' Map states from holding every finished iteration until the Map ends.
 *
 * A Map state of the engine (3.x) runs each item as an execution of its item processor and keeps that
 * execution's `abort` function (to stop the others when one fails) in an array that lives as long as the
 * Map. The function is a closure over the whole execution — its AbortController, its event log and their
 * promises — so a Map of 1,000 images held 1,000 finished executions: ~30 MiB of peak RSS per 1,000
 * images in a local bulk migration (heap snapshots at 300 and 1,300 images; docs/benchmarks.md).
 *
 * Here every execution's `abort` is handed out through a forwarder that lets go of the execution once
 * its result has settled: aborting a running execution works as before, aborting a finished one did
 * nothing before either. Applied once per process to the engine's StateMachine class, which its Map
 * states use for their item processors (there is no option for it).
 */
interface Execution {
  abort: () => void;
  result: Promise<unknown>;
}

/** An execution whose `abort` no longer reaches it once its result has settled. */
export function releasingExecution<E extends Execution>(execution: E): E {
  let abort: (() => void) | undefined = execution.abort;
  const release = () => {
    abort = undefined;
  };
  execution.result.then(release, release);
  return { ...execution, abort: () => abort?.() };
}

const PATCHED = Symbol.for("ferry.releasingExecutions");

/** Makes every execution `machineClass` runs a releasing one (idempotent). */
export function releaseFinishedExecutions(machineClass: { prototype: object }): void {
  const proto = machineClass.prototype as Record<PropertyKey, unknown> & {
    run: (...args: unknown[]) => Execution;
  };
  if (proto[PATCHED]) return;
  const run = proto.run;
  proto.run = function (this: unknown, ...args: unknown[]) {
    return releasingExecution(run.apply(this, args));
  };
  proto[PATCHED] = true;
}
