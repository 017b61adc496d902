/**
 * Local distributed mode: the fan-out definition (fanout.asl.json) executed in process by
 * aws-local-stepfunctions, each Task state bound to a local handler. What runs here is the definition
 * the CDK app deploys, so the merge path (Map of workers → Aggregate) is exercised by the tests.
 */
import { FerryError } from "../shared/registry/errors.ts";
import definition from "./fanout.asl.json" with { type: "json" };
import type { AggregateInput, StoredResult } from "./results.ts";
import type { WorkerInput } from "./runner.ts";

/** Fake ARNs substituted for the placeholders in local runs. */
export const LOCAL_ARNS: Record<string, string> = {
  BenchWorkerFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:ferry-bench-worker",
  BenchAggregateFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:ferry-bench-aggregate",
};

/** The definition with `${Name}` placeholders replaced; throws if one is left unresolved. */
export function fanoutDefinition(arns: Record<string, string> = LOCAL_ARNS): Record<string, unknown> {
  const text = JSON.stringify(definition).replace(/\$\{(\w+)\}/g, (m, name: string) => arns[name] ?? m);
  const left = /\$\{(\w+)\}/.exec(text);
  if (left) throw new FerryError("WORKFLOW", `fan-out definition: no value for placeholder ${left[0]}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** The execution input: the configuration and targets once, the worker indices as the Map's items. */
export interface FanoutInput {
  config: WorkerInput["config"];
  targets: string[];
  workers: number;
  items: number[];
  /** Epoch ms the workers start their load at (aligns workers that start at different times). */
  startAt: number;
}

export function fanoutInput(inputs: WorkerInput[], startAt: number): FanoutInput {
  const first = inputs[0];
  if (!first) throw new FerryError("USAGE", "bench fan-out: no workers");
  return {
    config: first.config,
    targets: first.targets,
    workers: inputs.length,
    items: inputs.map((i) => i.worker),
    startAt,
  };
}

/**
 * Runs the workers through the Map state and returns the Aggregate state's output (where the merged
 * result was written). The handlers are plain functions (results.ts, bound to a local staging store).
 */
export function runFanout(
  inputs: WorkerInput[],
  worker: (input: WorkerInput) => Promise<StoredResult>,
  aggregate: (input: AggregateInput) => Promise<StoredResult>,
): Promise<StoredResult> {
  return executeFanout(fanoutInput(inputs, Date.now()), worker, aggregate);
}

/** Executes the definition locally with an execution input as StartExecution would receive it. */
export async function executeFanout(
  input: FanoutInput,
  worker: (input: WorkerInput) => Promise<StoredResult>,
  aggregate: (input: AggregateInput) => Promise<StoredResult>,
): Promise<StoredResult> {
  // aws-local-stepfunctions is a development dependency: loaded only for --via-workflow, and kept out
  // of the CLI bundle (a computed specifier is not followed by esbuild).
  const specifier = ["aws-local", "stepfunctions"].join("-");
  let mod: typeof import("aws-local-stepfunctions");
  try {
    mod = (await import(specifier)) as typeof import("aws-local-stepfunctions");
  } catch (e) {
    throw new FerryError(
      "WORKFLOW",
      `--via-workflow needs the aws-local-stepfunctions package (a development dependency: run npm ci): ${(e as Error).message}`,
    );
  }
  // aws-local-stepfunctions runs every Map inline; a Distributed Map's concurrency is AWS's.
  const def = fanoutDefinition() as unknown as ConstructorParameters<typeof mod.StateMachine>[0];
  const sm = new mod.StateMachine(def, { validationOptions: { checkArn: false, checkPaths: false } });
  const execution = sm.run(input as unknown as Parameters<typeof sm.run>[0], {
    overrides: {
      taskResourceLocalHandlers: {
        Worker: (i) => worker(i as unknown as WorkerInput) as unknown as Promise<never>,
        Aggregate: (i) => aggregate(i as unknown as AggregateInput) as unknown as Promise<never>,
      },
    },
  });
  try {
    return (await execution.result) as unknown as StoredResult;
  } catch (e) {
    const err = e as Error & { cause?: unknown };
    throw new FerryError("WORKFLOW", `bench fan-out workflow failed: ${err.message}`, { cause: e });
  }
}
