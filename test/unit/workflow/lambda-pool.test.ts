/**
 * The test harness that runs Lambda handlers in child processes (test/helpers/lambda.ts), on small
 * handlers written here: what Lambda does is what the workflow tests rely on — an isolated environment,
 * warm containers reused one event at a time, errors reported by name, a crashed container replaced.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type DeployedFunction, LambdaPool, LocalDeployment } from "../../helpers/lambda.ts";

const dir = mkdtempSync(join(tmpdir(), "ferry-lambda-pool-"));
const pools: LambdaPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HANDLER = `
let calls = 0;
export const handler = async (event, context) => {
  calls++;
  switch (event.do) {
    case "echo":
      return { event, calls, pid: process.pid, fn: context.functionName, request: context.awsRequestId,
        remaining: context.getRemainingTimeInMillis() > 0, env: Object.keys(process.env).sort(),
        setting: process.env.SETTING, region: process.env.AWS_REGION, endpoint: process.env.AWS_ENDPOINT_URL_S3 };
    case "throw": {
      const e = new Error("refused: " + event.why);
      e.name = "ValidationError";
      throw e;
    }
    case "reject-later":
      Promise.reject(new Error("nobody waits for this"));
      return new Promise(() => {});
    case "exit":
      process.exit(3);
    case "pid":
      return process.pid;
  }
};
`;

function deployed(): DeployedFunction {
  const bundle = join(dir, "index.mjs");
  writeFileSync(bundle, HANDLER);
  return {
    name: "resolve",
    logicalId: "ResolveFunction",
    bundle,
    exportName: "handler",
    memoryMiB: 512,
    timeoutSeconds: 60,
    environment: { SETTING: "deployed" },
    logFormat: "JSON",
  };
}

function pool(environment?: Record<string, string>): LambdaPool {
  const fn = deployed();
  const p = new LambdaPool(
    { resolve: fn },
    {
      ...(environment ? { environment } : {}),
      region: "eu-west-1",
      credentials: { accessKeyId: "AKIDLOCAL", secretAccessKey: "local" },
      endpoints: { s3: "http://127.0.0.1:9" },
    },
    dir,
  );
  pools.push(p);
  return p;
}

describe("local Lambda containers", () => {
  it("run each event in a child process with the deployed environment only, and keep it warm", async () => {
    process.env.FERRY_TEST_PARENT_ONLY = "must not leak";
    try {
      const p = pool({ SETTING: "overridden" });
      const a = (await p.invoke("resolve", { do: "echo", n: 1 })) as Record<string, unknown>;
      const b = (await p.invoke("resolve", { do: "echo", n: 2 })) as Record<string, unknown>;
      expect(a.event).toEqual({ do: "echo", n: 1 });
      expect(a.pid).not.toBe(process.pid);
      expect(b.pid).toBe(a.pid); // the warm container
      expect([a.calls, b.calls]).toEqual([1, 2]); // module state kept between events
      expect(a.fn).toBe("ferry-resolve");
      expect(a.request).not.toBe(b.request);
      expect(a.remaining).toBe(true);
      expect([a.setting, a.region, a.endpoint]).toEqual(["overridden", "eu-west-1", "http://127.0.0.1:9"]);
      expect(a.env).not.toContain("FERRY_TEST_PARENT_ONLY");
      expect(a.env).not.toContain("HOME");
      expect(a.env).toEqual(expect.arrayContaining(["AWS_LAMBDA_FUNCTION_NAME", "AWS_ACCESS_KEY_ID"]));
      expect(p.invocations.map((i) => i.cold)).toEqual([true, false]);
    } finally {
      delete process.env.FERRY_TEST_PARENT_ONLY;
    }
  });

  it("a test may change the deployed variables' values, not give a function one the stack does not", () => {
    const d = new LocalDeployment({ resolve: deployed() }, dir);
    const credentials = { accessKeyId: "a", secretAccessKey: "b" };
    expect(() => d.start({ environment: { NOT_DEPLOYED: "x" }, credentials })).toThrow(
      "NOT_DEPLOYED is not a variable of any deployed function",
    );
    expect(d.start({ environment: { SETTING: "x" }, credentials })).toBeInstanceOf(LambdaPool);
  });

  it("reports a thrown error as Step Functions sees it: Error = its name, Cause = the runtime's JSON", async () => {
    const p = pool();
    const err = (await p
      .invoke("resolve", { do: "throw", why: "not allowed" })
      .catch((e: Error) => e)) as Error;
    expect(err.name).toBe("ValidationError");
    const cause = JSON.parse(err.message) as { errorType: string; errorMessage: string; trace: string[] };
    expect(cause.errorType).toBe("ValidationError");
    expect(cause.errorMessage).toBe("refused: not allowed");
    expect(cause.trace.length).toBeGreaterThan(0);
    // the container survives an error its handler threw
    await p.invoke("resolve", { do: "echo" });
    expect(p.invocations.map((i) => [i.cold, i.error])).toEqual([
      [true, "ValidationError"],
      [false, undefined],
    ]);
  });

  it("an unhandled rejection or an exit fails the invocation and the container; the next event gets a new one", async () => {
    const p = pool();
    const rejected = (await p.invoke("resolve", { do: "reject-later" }).catch((e: Error) => e)) as Error;
    expect(rejected.name).toBe("Runtime.UnhandledPromiseRejection");
    expect(rejected.message).toContain("nobody waits for this");
    const exited = (await p.invoke("resolve", { do: "exit" }).catch((e: Error) => e)) as Error;
    expect(exited.name).toBe("Runtime.ExitError");
    expect(exited.message).toContain("exit status 3");
    await p.invoke("resolve", { do: "echo" });
    expect(p.invocations.map((i) => i.cold)).toEqual([true, true, true]);
    expect(new Set(p.invocations.map((i) => i.pid)).size).toBe(3);
  });

  it("concurrent events go to separate containers, one event at a time each", async () => {
    const p = pool();
    // three events at once: none finds an idle container
    const pids = await Promise.all([1, 2, 3].map(() => p.invoke("resolve", { do: "pid" })));
    expect(new Set(pids).size).toBe(3);
    expect(p.invocations.every((i) => i.cold)).toBe(true);
  });
});
