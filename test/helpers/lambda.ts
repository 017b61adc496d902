/**
 * ferry's Lambda functions as deployed, run on this machine, for the local runner's `invoke`
 * (shared/workflow/local-runner.ts):
 *
 *   what runs     each handler bundled exactly as the code the CDK app deploys, dist/lambda (infra/bundling/
 *                 bundle.ts: LAMBDA_OPTIONS; all in one esbuild run, each file byte for byte what a run of
 *                 its own gives), the file `index.mjs` and export `handler` that the template's
 *                 `Handler: index.handler` names;
 *   its settings  the Environment, MemorySize, Timeout and log format of that function in the template of
 *                 the synthesised stack (infra/stack.ts with the test's ImageTransferProps), the staging
 *                 bucket's `Ref` resolved to the stand-in's bucket;
 *   how it runs   one child Node process per "container" (test/helpers/lambda-runtime.ts, the runtime's
 *                 part): started on demand — its init is a cold start — handling one event at a time, kept
 *                 warm for the next. A busy function starts another container, as Lambda scales. The
 *                 environment is built from nothing (no variable of the test process leaks in), and
 *                 what Lambda's execution environment adds (AWS_REGION, AWS_LAMBDA_*, the role's
 *                 credentials) is set as Lambda sets it;
 *   AWS           the SDK's own endpoint variables point at local stand-ins (AWS_ENDPOINT_URL_S3: s3rver;
 *                 AWS_ENDPOINT_URL_SECRETS_MANAGER: test/helpers/secrets-manager.ts); nothing else is
 *                 reachable, and no AWS configuration file of this machine is read.
 *
 * Failures come back as Step Functions sees a Lambda Task fail: the Error is the `errorType` (the thrown
 * error's `name`), the Cause the JSON `{"errorType","errorMessage","trace"}`.
 */
import { type ChildProcess, fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { CfnElement } from "aws-cdk-lib";
import { bundleEach } from "../../infra/bundling/bundle.ts";
import type { ImageTransferProps } from "../../infra/constructs/props.ts";
import { COPY_IMAGE_TASKS, FUNCTIONS } from "../../shared/workflow/definitions.ts";
import type { FunctionInvoker, Json } from "../../shared/workflow/local-runner.ts";
import type { StepName } from "../../shared/workflow/steps.ts";

const RUNTIME = join(dirname(fileURLToPath(import.meta.url)), "lambda-runtime.ts");

/** One function of the synthesised stack, bundled. */
export interface DeployedFunction {
  /** Its FUNCTIONS name (what the definitions' Task states invoke). */
  name: StepName;
  /** Logical id of its AWS::Lambda::Function in the template. */
  logicalId: string;
  /** The bundled handler file and its export (the template's `Handler`). */
  bundle: string;
  exportName: string;
  memoryMiB: number;
  timeoutSeconds: number;
  /** The template's Environment.Variables, CloudFormation references resolved. */
  environment: Record<string, string>;
  /** The template's LoggingConfig.LogFormat (AWS_LAMBDA_LOG_FORMAT). */
  logFormat: string;
}

interface CfnFunctionProps {
  Handler: string;
  MemorySize: number;
  Timeout: number;
  Environment?: { Variables?: Record<string, unknown> };
  LoggingConfig?: { LogFormat?: string };
}

/** The functions the copy-image definition invokes. */
export const COPY_IMAGE_FUNCTIONS: StepName[] = [...new Set(Object.values(COPY_IMAGE_TASKS))];

/**
 * Synthesises the stack with `transfer` and bundles the handlers of `functions` (default: those of the
 * copy-image definition) — once per test file: a few seconds. `bucket` stands in for the staging bucket.
 */
export async function deployLocally(opts: {
  transfer: ImageTransferProps;
  bucket: string;
  functions?: StepName[];
}): Promise<LocalDeployment> {
  // aws-cdk-lib loads only here (the pool alone does not need it)
  const { synth } = await import("../infra/helpers.ts");
  const { stack, json } = synth(opts.transfer);
  const transfer = stack.transfer;
  const bucketId = stack.getLogicalId(transfer.stagingBucket.node.defaultChild as CfnElement);
  const dir = mkdtempSync(join(tmpdir(), "ferry-lambdas-"));
  try {
    const names = opts.functions ?? COPY_IMAGE_FUNCTIONS;
    const found = names.map((name) => {
      const entry = resolve(transfer.props.sourceRoot, FUNCTIONS[name].entry);
      const fn = Object.values(transfer.functions).find((f) => f?.entry === entry);
      if (!fn) throw new Error(`the stack deploys no function with the handler ${FUNCTIONS[name].entry}`);
      const logicalId = stack.getLogicalId(fn.function.node.defaultChild as CfnElement);
      return {
        name,
        fn,
        logicalId,
        props: json.Resources[logicalId]?.Properties as unknown as CfnFunctionProps,
      };
    });
    // `index.handler`: the export `handler` of index.mjs, the file each function deploys
    const handlers = found.map((f) => f.props.Handler.split("."));
    if (handlers.some(([file]) => file !== "index"))
      throw new Error(`a Handler other than index.<export>: ${handlers.map((h) => h.join(".")).join(", ")}`);
    const { files } = await bundleEach(
      Object.fromEntries(found.map((f) => [`${f.name}/index`, f.fn.entry])),
      dir,
    );
    const deployed = found.map(({ name, logicalId, props }, i): DeployedFunction => {
      const environment: Record<string, string> = {};
      for (const [k, v] of Object.entries(props.Environment?.Variables ?? {})) {
        if (typeof v === "string") environment[k] = v;
        else if ((v as { Ref?: string })?.Ref === bucketId) environment[k] = opts.bucket;
        else
          throw new Error(`${name}: ${k} is ${JSON.stringify(v)}, which a local deployment cannot resolve`);
      }
      return {
        name,
        logicalId,
        bundle: files[`${name}/index`]!,
        exportName: handlers[i]![1]!,
        memoryMiB: props.MemorySize,
        timeoutSeconds: props.Timeout,
        environment,
        logFormat: props.LoggingConfig?.LogFormat ?? "Text",
      };
    });
    return new LocalDeployment(Object.fromEntries(deployed.map((f) => [f.name, f])), dir);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

export interface LambdaEnvironment {
  /**
   * New values for variables of the deployed environment (the allow-lists of one test, say). Only
   * variables some function has: anything else is an error, so a test cannot give a function what the
   * stack does not.
   */
  environment?: Record<string, string>;
  /** What Lambda's execution environment adds: the region and the role's credentials. */
  region?: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** The SDK's endpoint variables, for the local stand-ins. */
  endpoints?: { s3?: string; secretsManager?: string };
}

export class LocalDeployment {
  readonly functions: Readonly<Record<string, DeployedFunction>>;
  private readonly dir: string;

  constructor(functions: Readonly<Record<string, DeployedFunction>>, dir: string) {
    this.functions = functions;
    this.dir = dir;
  }

  /** A fresh set of containers (nothing warm) with this environment. */
  start(env: LambdaEnvironment): LambdaPool {
    const known = new Set(Object.values(this.functions).flatMap((f) => Object.keys(f.environment)));
    for (const k of Object.keys(env.environment ?? {}))
      if (!known.has(k)) throw new Error(`${k} is not a variable of any deployed function`);
    return new LambdaPool(this.functions, env, this.dir);
  }

  /** Removes the bundles. */
  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One invocation, as the pool saw it. */
export interface Invocation {
  function: StepName;
  /** The container's process. */
  pid: number;
  /** Whether the container was started for it (init ran first). */
  cold: boolean;
  requestId: string;
  /** The errorType of a failed invocation. */
  error?: string;
}

interface LambdaError {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

type Message =
  | { type: "ready" }
  | { type: "init-error" | "crash"; error: LambdaError }
  | { type: "result"; id: number; ok: true; value: Json }
  | { type: "result"; id: number; ok: false; error: LambdaError; fatal?: boolean };

/** A Task failure as Step Functions reports a Lambda error: Error = errorType, Cause = the JSON. */
function taskFailure(error: LambdaError): Error {
  const e = new Error(JSON.stringify(error));
  e.name = error.errorType;
  return e;
}

class Container {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  private pending: { id: number; settle: (m: Message) => void } | undefined;
  dead = false;

  constructor(fn: DeployedFunction, env: NodeJS.ProcessEnv, onLine: (line: string) => void) {
    this.child = fork(RUNTIME, [fn.bundle, fn.exportName], {
      env,
      cwd: dirname(fn.bundle),
      execArgv: [],
      serialization: "json",
      silent: true,
    });
    for (const s of [this.child.stdout, this.child.stderr])
      if (s) createInterface({ input: s }).on("line", onLine);
    this.ready = new Promise<void>((resolveReady, rejectReady) => {
      this.child.on("message", (m: Message) => {
        if (m.type === "ready") resolveReady();
        else if (m.type === "init-error") rejectReady(taskFailure(m.error));
        else if (m.type === "result" && this.pending?.id === m.id) {
          if (!m.ok && m.fatal) this.dead = true;
          this.pending.settle(m);
        } else if (m.type === "crash") this.dead = true;
      });
      // a send to a container that has just died: its exit settles the invocation
      this.child.on("error", () => {});
      this.child.on("exit", (code, signal) => {
        this.dead = true;
        const error: LambdaError = {
          errorType: "Runtime.ExitError",
          errorMessage: `Runtime exited ${signal ? `with signal ${signal}` : `with error: exit status ${code}`}`,
          trace: [],
        };
        rejectReady(taskFailure(error));
        this.pending?.settle({ type: "result", id: this.pending.id, ok: false, error });
      });
    });
    this.ready.catch(() => {});
  }

  /** Runs one event; resolves with the runtime's answer (never rejects). */
  run(id: number, event: Json, requestId: string, timeoutSeconds: number): Promise<Message> {
    return new Promise<Message>((settle) => {
      // Lambda stops an invocation at the function's timeout (minutes here: a safety net, not a test).
      const timer = setTimeout(() => {
        this.dead = true;
        this.child.kill("SIGKILL");
        this.pending?.settle({
          type: "result",
          id,
          ok: false,
          error: {
            errorType: "Sandbox.Timedout",
            errorMessage: `Task timed out after ${timeoutSeconds.toFixed(2)} seconds`,
            trace: [],
          },
        });
      }, timeoutSeconds * 1000);
      timer.unref();
      this.pending = {
        id,
        settle: (m) => {
          clearTimeout(timer);
          this.pending = undefined;
          settle(m);
        },
      };
      if (this.dead)
        return this.pending.settle({
          type: "result",
          id,
          ok: false,
          error: {
            errorType: "Runtime.ExitError",
            errorMessage: "Runtime exited before the event",
            trace: [],
          },
        });
      this.child.send({ type: "invoke", id, event, requestId, deadline: Date.now() + timeoutSeconds * 1000 });
    });
  }
}

/** Containers per function, and what they did. */
export class LambdaPool {
  /** Every invocation, in the order they finished. */
  readonly invocations: Invocation[] = [];
  /** Every line the containers wrote (stdout and stderr), prefixed with the function name. */
  readonly logs: string[] = [];
  private readonly idle = new Map<string, Container[]>();
  private readonly all = new Set<Container>();
  private seq = 0;

  private readonly functions: Readonly<Record<string, DeployedFunction>>;
  private readonly env: LambdaEnvironment;
  private readonly dir: string;

  constructor(functions: Readonly<Record<string, DeployedFunction>>, env: LambdaEnvironment, dir: string) {
    this.functions = functions;
    this.env = env;
    this.dir = dir;
  }

  private processEnv(fn: DeployedFunction): NodeJS.ProcessEnv {
    const region = this.env.region ?? "us-east-1";
    const overrides = Object.fromEntries(
      Object.entries(this.env.environment ?? {}).filter(([k]) => k in fn.environment),
    );
    const { credentials, endpoints } = this.env;
    return {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      LANG: "en_US.UTF-8",
      TZ: ":UTC",
      // what Lambda's execution environment sets
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      AWS_EXECUTION_ENV: "AWS_Lambda_nodejs22.x",
      AWS_LAMBDA_FUNCTION_NAME: `ferry-${fn.name}`,
      AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMiB),
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/ferry-${fn.name}`,
      AWS_LAMBDA_LOG_STREAM_NAME: `local/${randomUUID()}`,
      AWS_LAMBDA_LOG_FORMAT: fn.logFormat,
      LAMBDA_TASK_ROOT: dirname(fn.bundle),
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      ...(credentials.sessionToken ? { AWS_SESSION_TOKEN: credentials.sessionToken } : {}),
      // no profile or configuration file of this machine
      AWS_CONFIG_FILE: join(this.dir, "no-aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(this.dir, "no-aws-credentials"),
      ...fn.environment,
      ...overrides,
      ...(endpoints?.s3 ? { AWS_ENDPOINT_URL_S3: endpoints.s3 } : {}),
      ...(endpoints?.secretsManager ? { AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoints.secretsManager } : {}),
    };
  }

  /** Invokes a function (the local runner's `invoke`). */
  readonly invoke: FunctionInvoker = async (name, event) => {
    const fn = this.functions[name];
    if (!fn) throw new Error(`${name} is not among the locally deployed functions`);
    // a warm container, unless it died while idle
    let container = this.idle.get(name)?.pop();
    while (container?.dead) container = this.idle.get(name)?.pop();
    const cold = !container;
    if (!container) {
      container = new Container(fn, this.processEnv(fn), (line) => {
        if (this.logs.length < 20_000) this.logs.push(`${name}: ${line}`);
      });
      this.all.add(container);
    }
    const requestId = randomUUID();
    const pid = container.child.pid ?? -1;
    let answer: Message;
    try {
      await container.ready;
      answer = await container.run(++this.seq, event, requestId, fn.timeoutSeconds);
    } catch (e) {
      this.invocations.push({ function: name, pid, cold, requestId, error: (e as Error).name });
      throw e;
    }
    if (container.dead) this.all.delete(container);
    else this.idle.set(name, [...(this.idle.get(name) ?? []), container]);
    if (answer.type === "result" && answer.ok) {
      this.invocations.push({ function: name, pid, cold, requestId });
      return answer.value;
    }
    const error = (answer as { error: LambdaError }).error;
    this.invocations.push({ function: name, pid, cold, requestId, error: error.errorType });
    throw taskFailure(error);
  };

  /** Stops every container. */
  async close(): Promise<void> {
    await Promise.all(
      [...this.all].map(
        (c) =>
          new Promise<void>((done) => {
            if (c.child.exitCode !== null || c.child.signalCode !== null) return done();
            c.child.once("exit", () => done());
            c.child.kill("SIGKILL");
          }),
      ),
    );
    this.all.clear();
    this.idle.clear();
  }
}
