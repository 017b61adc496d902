/**
 * The Lambda runtime's part, in a child process started by test/helpers/lambda.ts — one "container" of
 * one function: `node lambda-runtime.ts <bundle.mjs> <export>`. It imports the bundle once (the init
 * phase, a cold start), then runs the events it is sent over IPC one at a time, calling the export as
 * Lambda's Node.js runtime does: `handler(event, context)`, the awaited value JSON-serialised. A failure
 * is reported as that runtime reports it: `{errorType: error.name, errorMessage, trace}`.
 *
 * Imports nothing of ferry's: everything the function runs comes from the bundle.
 */
import { pathToFileURL } from "node:url";

interface Invoke {
  type: "invoke";
  id: number;
  event: unknown;
  requestId: string;
  /** Epoch milliseconds when the function's timeout expires (context.getRemainingTimeInMillis). */
  deadline: number;
}

interface LambdaError {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

const [bundle, exportName] = process.argv.slice(2);
const send = (m: unknown) => new Promise<void>((resolve) => process.send?.(m, () => resolve()));

function toLambdaError(e: unknown, fallbackType: string): LambdaError {
  const err = e instanceof Error ? e : undefined;
  return {
    errorType: err?.name || fallbackType,
    errorMessage: err ? err.message : String(e),
    trace: (err?.stack ?? "").split("\n"),
  };
}

/** The event being handled (one at a time, as in a Lambda container). */
let current: number | undefined;

// As Lambda's runtime: an error nobody caught fails the invocation it happened in, and the container.
for (const what of ["uncaughtException", "unhandledRejection"] as const) {
  process.on(what, async (e: unknown) => {
    const errorType =
      what === "uncaughtException" ? "Runtime.UncaughtException" : "Runtime.UnhandledPromiseRejection";
    const error = { ...toLambdaError(e, errorType), errorType };
    // `fatal`: this container is done for; the next event goes to a new one
    if (current !== undefined) await send({ type: "result", id: current, ok: false, error, fatal: true });
    else await send({ type: "crash", error });
    process.exit(1);
  });
}

type Handler = (event: unknown, context: unknown) => Promise<unknown>;
let handler: Handler | undefined;
try {
  const mod = (await import(pathToFileURL(bundle!).href)) as Record<string, unknown>;
  const h = mod[exportName!];
  if (typeof h !== "function")
    throw Object.assign(new Error(`${bundle} has no export ${exportName}`), {
      name: "Runtime.HandlerNotFound",
    });
  handler = h as Handler;
} catch (e) {
  await send({ type: "init-error", error: toLambdaError(e, "Runtime.ImportModuleError") });
  process.exit(1);
}

const env = process.env;
process.on("message", async (m: Invoke) => {
  if (m?.type !== "invoke" || !handler) return;
  current = m.id;
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: `arn:aws:lambda:${env.AWS_REGION}:000000000000:function:${env.AWS_LAMBDA_FUNCTION_NAME}`,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: m.requestId,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => Math.max(0, m.deadline - Date.now()),
  };
  let reply: unknown;
  try {
    const value = await handler(m.event, context);
    // Lambda answers with JSON.stringify of the value (undefined → null).
    reply = { type: "result", id: m.id, ok: true, value: JSON.parse(JSON.stringify(value ?? null)) };
  } catch (e) {
    reply = { type: "result", id: m.id, ok: false, error: toLambdaError(e, "Error") };
  }
  current = undefined;
  await send(reply);
});
await send({ type: "ready" });
