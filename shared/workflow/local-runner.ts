/**
 * Runs the workflow definitions on this machine with aws-local-stepfunctions: the same JSON that runs on
 * AWS, each Task state bound to its step function in process (steps.ts), staging on a local directory or
 * an S3-compatible endpoint — or, with `invoke`, each Task state bound to the Lambda function it names,
 * run wherever `invoke` runs it (the tests: the bundled handlers in child processes,
 * test/helpers/lambda.ts). Placeholders get fake ARNs first (the engine's validator rejects unresolved
 * ones); where the engine lacks a feature, `localizeDefinition` — the one function that changes a
 * definition — swaps in the nearest local equivalent (a Distributed Map's AWS-side pieces: local-map.ts).
 */
import { createHash, randomBytes } from "node:crypto";
import { StateMachine } from "aws-local-stepfunctions";
import type { StagingStore } from "../staging/types.ts";
import {
  type AslDefinition,
  type AslState,
  BULK_MIGRATE_TASKS,
  bulkMigrateDefinition,
  COPY_IMAGE_TASKS,
  copyImageDefinition,
  deepFreeze,
  fakeSubstitutions,
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  localExecutionArn,
  substitute,
} from "./definitions.ts";
import type { StepDeps } from "./deps.ts";
import { releaseFinishedExecutions } from "./engine-memory.ts";
import { type Json, type LocalHandler, mapStandIns, OUTCOME, type SyntheticTask } from "./local-map.ts";
import { ALLOW_ANY, type TransferPolicy } from "./policy.ts";
import { STEPS, type StepName } from "./steps.ts";

type EventLog = {
  type: string;
  state?: { name: string; input?: unknown; output?: unknown };
  index?: number;
} & Record<string, unknown>;

export type { Json, SyntheticTask };

/** The steps' dependencies as the local runner takes them: the policy may be left out (see below). */
export type LocalStepDeps = Omit<StepDeps, "policy"> & { policy?: TransferPolicy };

/**
 * Invokes the Lambda function `fn` (a FUNCTIONS name: "stage-blob", …) with a Task state's input, and
 * resolves with its result — as Step Functions invokes a Task whose Resource is the function's ARN. A
 * rejection is the Task's failure: its `name` is the Error the definition's Retry/Catch match, its
 * `message` the Cause.
 */
export type FunctionInvoker = (fn: StepName, event: Json) => Promise<Json>;

/** Where the Task states run: the step functions in process (`deps`), or Lambda functions (`invoke`). */
export type LocalRunOptions = LocalRunHooks &
  (
    | {
        /**
         * Without `policy`, the steps run with ALLOW_ANY: the local runner serves `ferry workflow copy`,
         * `ferry sync` and tests, whose user names source and destination themselves (as `ferry copy`
         * does). The deployed functions never go through here; they build their policy from the
         * environment.
         */
        deps: LocalStepDeps;
        invoke?: undefined;
        staging?: undefined;
      }
    | {
        /**
         * Each Task state bound to its function through this invoker: the functions bring their own
         * dependencies, policy and staging (the deployed handlers: from their environment).
         */
        invoke: FunctionInvoker;
        deps?: undefined;
        /**
         * The functions' staging store (their bucket), for bulk-migrate's local stand-ins of the
         * Distributed Map's ItemReader and ResultWriter, which Step Functions itself runs on AWS.
         */
        staging?: StagingStore;
      }
  );

export interface LocalRunHooks {
  /** The execution name ($$.Execution.Name; the staging prefix derives from it). Default: random. */
  executionName?: string;
  /**
   * Milliseconds between retries, for every Task state (tests: 1). Default: the definition's own
   * IntervalSeconds/BackoffRate/MaxDelaySeconds/JitterStrategy.
   */
  retryIntervalMs?: number;
  /** Every event of the execution (state entered/exited/failed/retried/caught, map iterations). */
  onEvent?: (e: EventLog) => void;
  /** Wraps each step function (tests: count calls, inject faults at the step boundary). */
  wrapStep?: (state: string, step: LocalHandler) => LocalHandler;
}

export interface LocalRunResult {
  status: "SUCCEEDED" | "FAILED";
  executionName: string;
  executionArn: string;
  output?: unknown;
  /** The error name and cause of a failed execution (as Step Functions reports them). */
  error?: string;
  cause?: string;
}

const SUBSTITUTIONS = fakeSubstitutions();
releaseFinishedExecutions(StateMachine); // a Map of N items no longer holds N finished executions

/** A definition ready to run, built once per process and run any number of times. */
interface Prepared {
  machine: StateMachine;
  /** Every Task state, nested ones included (for `retryIntervalMs`). */
  taskStates: string[];
}

/**
 * One StateMachine per definition and process: a StateMachine runs any number of executions, each with
 * its own handlers, context and event log (the overrides are per run); the definition is frozen, so no
 * execution can change what the next one runs. The engine's validation is skipped: asl-validator compiles
 * its JSON schema with ajv on every call (0.1–0.35 s of CPU, more than a small image's whole copy; a
 * migration of 1,000 images paid it once per child execution), and the definitions are the package's own
 * files, fixed at build time — test/unit/workflow/definitions.test.ts validates them (ARNs and paths
 * checked) as they run here: substituted, and bulk-migrate as localizeDefinition rewrites it.
 */
function prepare(definition: AslDefinition): Prepared {
  return {
    machine: new StateMachine(deepFreeze(definition) as never, { validationOptions: { noValidate: true } }),
    taskStates: taskStates(definition),
  };
}

let copyImage: Prepared | undefined;
let bulkMigrate: (Prepared & { synthetic: Record<string, SyntheticTask> }) | undefined;

/** Runs copy-image for one request (the execution input). Never throws for a failed execution. */
export async function runCopyWorkflow(request: unknown, opts: LocalRunOptions): Promise<LocalRunResult> {
  copyImage ??= prepare(substitute(copyImageDefinition(), SUBSTITUTIONS));
  return run("ferry-copy-image", copyImage, request, COPY_IMAGE_TASKS, {}, opts);
}

/**
 * Runs bulk-migrate: the Distributed Map becomes an inline Map (localizeDefinition), each image a local
 * run of copy-image (what `startExecution.sync:2` does on AWS), results written to staging in the
 * ResultWriter's format so Summarize reads the same files it reads on AWS.
 */
export async function runBulkWorkflow(request: unknown, opts: LocalRunOptions): Promise<LocalRunResult> {
  const name = opts.executionName ?? newName("bulk");
  if (!bulkMigrate) {
    const { definition, synthetic } = localizeDefinition(substitute(bulkMigrateDefinition(), SUBSTITUTIONS));
    bulkMigrate = { ...prepare(definition), synthetic };
  }
  const { synthetic } = bulkMigrate;
  let n = 0;
  const extra: Record<string, LocalHandler> = {
    CopyImage: async (input) => {
      const body = (input as { Input?: Json }).Input ?? input;
      const child = `${name.slice(0, 40)}-${shortHash(JSON.stringify(body))}-${++n}`;
      const r = await runCopyWorkflow(body, { ...opts, executionName: child });
      if (r.status === "SUCCEEDED") {
        return {
          ExecutionArn: r.executionArn,
          Status: "SUCCEEDED",
          Output: (r.output ?? null) as Json,
        } as Json;
      }
      // What startExecution.sync reports when the child fails: States.TaskFailed, the child in the Cause.
      const e = new Error(
        JSON.stringify({ ExecutionArn: r.executionArn, Status: "FAILED", Error: r.error, Cause: r.cause }),
      );
      e.name = "States.TaskFailed";
      throw e;
    },
  };
  Object.assign(extra, mapStandIns(synthetic, opts.deps?.staging ?? opts.staging, name));
  return run("ferry-bulk-migrate", bulkMigrate, request, BULK_MIGRATE_TASKS, extra, {
    ...opts,
    executionName: name,
  });
}

async function run(
  machine: string,
  prepared: Prepared,
  input: unknown,
  tasks: Record<string, StepName>,
  extra: Record<string, LocalHandler>,
  opts: LocalRunOptions,
): Promise<LocalRunResult> {
  const name = opts.executionName ?? newName(machine.replace(/^ferry-/, ""));
  const arn = localExecutionArn(machine, name);
  const handlers: Record<string, LocalHandler> = {};
  // A failed Map or Parallel stops its other branches after their current state, but a Task already
  // running finishes (as an invoked Lambda does on AWS). The run returns once those have settled too.
  const running = new Set<Promise<Json>>();
  const tracked =
    (h: LocalHandler): LocalHandler =>
    (i) => {
      const p = h(i);
      running.add(p);
      const forget = () => running.delete(p);
      p.then(forget, forget);
      return p;
    };
  if (!opts.deps === !opts.invoke) throw new TypeError("local run: give either deps or invoke");
  let bind: (fn: StepName) => LocalHandler;
  if (opts.invoke) {
    const invoke = opts.invoke;
    bind = (fn) => (i) => invoke(fn, i);
  } else {
    const deps: StepDeps = { ...opts.deps, policy: opts.deps.policy ?? ALLOW_ANY };
    bind = (fn) => async (i) => (await STEPS[fn](i, deps)) as Json;
  }
  for (const [state, fn] of Object.entries(tasks)) {
    const step = bind(fn);
    handlers[state] = tracked(opts.wrapStep ? opts.wrapStep(state, step) : step);
  }
  for (const [state, h] of Object.entries(extra))
    handlers[state] = tracked(opts.wrapStep ? opts.wrapStep(state, h) : h);
  const retryIntervalOverrides: Record<string, number> = {};
  if (opts.retryIntervalMs !== undefined)
    for (const state of prepared.taskStates) retryIntervalOverrides[state] = opts.retryIntervalMs;

  const execution = prepared.machine.run(input as never, {
    overrides: { taskResourceLocalHandlers: handlers as never, retryIntervalOverrides },
    context: { Execution: { Id: arn, Name: name, RoleArn: `arn:aws:iam::${LOCAL_ACCOUNT}:role/local` } },
  });
  const drained = (async () => {
    for await (const e of execution.eventLogs) opts.onEvent?.(e as unknown as EventLog);
  })();
  try {
    const output = await execution.result;
    await drained;
    return { status: "SUCCEEDED", executionName: name, executionArn: arn, output };
  } catch (err) {
    await drained.catch(() => {});
    while (running.size > 0) await Promise.allSettled([...running]);
    const failure = (err as { cause?: unknown }).cause ?? err;
    const f = failure as { name?: string; message?: string };
    return {
      status: "FAILED",
      executionName: name,
      executionArn: arn,
      error: f.name ?? "Error",
      cause: f.message ?? String(failure),
    };
  }
}

/** Every Task state name, nested ones included. */
function taskStates(def: { States: Record<string, AslState> }): string[] {
  const out: string[] = [];
  for (const [name, s] of Object.entries(def.States)) {
    if (s.Type === "Task") out.push(name);
    for (const sub of nestedMachines(s)) out.push(...taskStates(sub));
  }
  return out;
}

function nestedMachines(s: AslState): { States: Record<string, AslState> }[] {
  const out: { States: Record<string, AslState> }[] = [];
  for (const k of ["ItemProcessor", "Iterator"]) {
    const m = s[k] as { States?: Record<string, AslState> } | undefined;
    if (m?.States) out.push(m as { States: Record<string, AslState> });
  }
  for (const b of (s.Branches as { States: Record<string, AslState> }[] | undefined) ?? []) out.push(b);
  return out;
}

const LOCAL_ARN = (what: string) =>
  `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:ferry-local-${what}`;
const ITEMS = "$.__localItems";
const RESULTS = "$.__localResults";

/**
 * THE rewrite: adapts a definition to aws-local-stepfunctions, which runs Map states inline only and
 * knows no ItemReader, ItemBatcher, ResultWriter or tolerated failures. Every Map using one of those
 * (a Distributed Map) becomes three states:
 *
 *   <Map>ReadItems     Task (local): reads the ItemReader's object from staging (JSONL, JSON array, CSV
 *                      with a header), applies ReaderConfig.MaxItems and the ItemBatcher
 *                      (`{Items: [...], BatchInput}`) → `$.__localItems`
 *   <Map>              the same Map, INLINE, over `$.__localItems`; its ItemProcessor wrapped in a
 *                      Parallel with a Catch, so one item's failure is recorded (as a child execution's
 *                      would be) instead of failing the Map → `$.__localResults`
 *   <Map>WriteResults  Task (local): the ResultWriter — manifest.json and SUCCEEDED_0.json / FAILED_0.json
 *                      in staging, the same shape Step Functions writes — then the tolerated-failure check
 *                      (States.ExceedToleratedFailureThreshold); takes the Map's ResultPath, OutputPath,
 *                      Catch and Next
 *
 * Differences that remain: no MapRunArn, child executions are local runs, and `__localItems` /
 * `__localResults` stay in the state after the Map (there is no 256 KiB limit locally).
 * Returns the new definition and the synthetic Task states to bind.
 */
export function localizeDefinition(def: AslDefinition): {
  definition: AslDefinition;
  synthetic: Record<string, SyntheticTask>;
} {
  const synthetic: Record<string, SyntheticTask> = {};
  const rewrite = (machine: { States: Record<string, AslState> }): void => {
    for (const [name, state] of Object.entries(machine.States)) {
      for (const sub of nestedMachines(state)) rewrite(sub);
      if (state.Type !== "Map") continue;
      const processor = (state.ItemProcessor ?? state.Iterator) as
        | ({ ProcessorConfig?: { Mode?: string } } & { StartAt: string; States: Record<string, AslState> })
        | undefined;
      const distributed =
        processor?.ProcessorConfig?.Mode === "DISTRIBUTED" ||
        [
          "ItemReader",
          "ItemBatcher",
          "ResultWriter",
          "ToleratedFailurePercentage",
          "ToleratedFailurePercentagePath",
          "ToleratedFailureCount",
          "ToleratedFailureCountPath",
        ].some((k) => k in state);
      if (!distributed || !processor) continue;

      const readName = `${name}ReadItems`;
      const writeName = `${name}WriteResults`;
      const {
        ItemReader,
        ItemBatcher,
        ResultWriter,
        ItemsPath,
        ResultPath,
        OutputPath,
        ResultSelector,
        Catch,
        Next,
        End,
        ...rest
      } = state as Record<string, unknown> & { Type: string };
      const tolerance: Record<string, unknown> = {};
      for (const k of ["ToleratedFailurePercentage", "ToleratedFailureCount"]) {
        if (k in rest) tolerance[k] = rest[k];
        if (`${k}Path` in rest) tolerance[`${k}.$`] = rest[`${k}Path`];
        delete rest[k];
        delete rest[`${k}Path`];
      }
      const { ProcessorConfig: _mode, ...inner } = processor;
      delete rest.Iterator;

      machine.States[readName] = {
        Type: "Task",
        Comment: `local stand-in for ${name}'s ItemReader/ItemBatcher`,
        Resource: LOCAL_ARN("read-items"),
        Parameters: {
          ...(ItemReader ? { reader: ItemReader } : { "items.$": (ItemsPath as string | undefined) ?? "$" }),
          ...(ItemBatcher ? { batcher: ItemBatcher } : {}),
        },
        ResultPath: ITEMS,
        Next: name,
      } as AslState;
      machine.States[name] = {
        ...rest,
        Comment: `${(rest.Comment as string | undefined) ?? name} (inline locally)`,
        ItemsPath: ITEMS,
        ItemProcessor: {
          ProcessorConfig: { Mode: "INLINE" },
          StartAt: "LocalItem",
          States: {
            LocalItem: {
              Type: "Parallel",
              Branches: [inner],
              ResultSelector: { Status: "SUCCEEDED", "Output.$": "$[0]" },
              ResultPath: `$.${OUTCOME}`,
              Catch: [{ ErrorEquals: ["States.ALL"], ResultPath: `$.${OUTCOME}`, Next: "LocalItemFailed" }],
              End: true,
            },
            LocalItemFailed: { Type: "Pass", End: true },
          },
        },
        ResultPath: RESULTS,
        Next: writeName,
        ...(Catch ? { Catch } : {}),
      } as AslState;
      machine.States[writeName] = {
        Type: "Task",
        Comment: `local stand-in for ${name}'s ResultWriter and tolerated failures`,
        Resource: LOCAL_ARN("write-results"),
        Parameters: {
          "results.$": RESULTS,
          ...(ResultWriter ? { writer: ResultWriter } : {}),
          ...tolerance,
        },
        ...(ResultPath !== undefined ? { ResultPath } : {}),
        ...(OutputPath !== undefined ? { OutputPath } : {}),
        ...(ResultSelector !== undefined ? { ResultSelector } : {}),
        ...(Catch ? { Catch } : {}),
        ...(End ? { End: true } : { Next }),
      } as AslState;
      synthetic[readName] = "read-items";
      synthetic[writeName] = "write-results";
      // Whoever went to the Map now goes to its ReadItems.
      retarget(copy, name, readName, new Set([readName]));
    }
  };
  const copy = structuredClone(def);
  rewrite(copy);
  return { definition: copy, synthetic };

  function retarget(
    d: { StartAt: string; States: Record<string, AslState> },
    from: string,
    to: string,
    skip: Set<string>,
  ) {
    // Only the machine that holds `from` can point at it (state names are scoped per machine).
    const holds = (m: { States: Record<string, AslState> }) => from in m.States && to in m.States;
    const visit = (m: { StartAt: string; States: Record<string, AslState> }) => {
      if (holds(m)) {
        if (m.StartAt === from) m.StartAt = to;
        for (const [n, s] of Object.entries(m.States)) {
          if (skip.has(n)) continue;
          if (s.Next === from) s.Next = to;
          if (s.Default === from) s.Default = to;
          for (const c of (s.Choices as { Next?: string }[] | undefined) ?? [])
            if (c.Next === from) c.Next = to;
          for (const c of (s.Catch as { Next?: string }[] | undefined) ?? [])
            if (c.Next === from) c.Next = to;
        }
      }
      for (const s of Object.values(m.States))
        for (const sub of nestedMachines(s))
          visit(sub as { StartAt: string; States: Record<string, AslState> });
    };
    visit(d);
  }
}

function newName(kind: string): string {
  return `local-${kind}-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
}

function shortHash(s: string): string {
  return createHash("sha256").update(s).digest("hex").slice(0, 12);
}
