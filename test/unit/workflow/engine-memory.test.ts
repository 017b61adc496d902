/**
 * shared/workflow/engine-memory.ts: a finished execution of aws-local-stepfunctions is no longer held by
 * the `abort` its Map state keeps, and aborting a running one still reaches it.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { StateMachine } from "aws-local-stepfunctions";
import { describe, expect, it } from "vitest";
import { releasingExecution } from "../../../shared/workflow/engine-memory.ts";
import "../../../shared/workflow/local-runner.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** A stand-in execution whose `abort` closes over a large object, as the engine's closes over its state. */
function execution() {
  const state = { big: Buffer.alloc(1024) };
  let settle!: (ok: boolean) => void;
  const result = new Promise((resolve, reject) => {
    settle = (ok) => (ok ? resolve("done") : reject(new Error("failed")));
  });
  const aborted: string[] = [];
  return {
    exec: { abort: () => aborted.push(`aborted with ${state.big.length}`), result, eventLogs: [] },
    aborted,
    settle,
    held: new WeakRef(state),
  };
}

async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 10 && ref.deref(); i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return ref.deref() === undefined;
}

describe("releasing executions", () => {
  it("aborting a running execution reaches it", () => {
    const e = execution();
    const released = releasingExecution(e.exec);
    released.abort();
    expect(e.aborted).toEqual(["aborted with 1024"]);
    expect(released.result).toBe(e.exec.result);
  });

  it.each([
    ["succeeded", true],
    ["failed", false],
  ])("once it %s, what its abort held can be collected while the abort is kept", async (_, ok) => {
    const kept: (() => void)[] = []; // what a Map state keeps until it ends
    const held = await (async () => {
      const e = execution();
      const released = releasingExecution(e.exec);
      kept.push(released.abort);
      e.settle(ok);
      await released.result.catch(() => {});
      return e.held;
    })();
    expect(await collected(held)).toBe(true);
    expect(() => kept[0]!()).not.toThrow(); // aborting a finished execution does nothing
  });

  it("without it, the kept abort holds the execution (the test can tell)", async () => {
    const kept: (() => void)[] = [];
    const held = await (async () => {
      const e = execution();
      kept.push(e.exec.abort);
      e.settle(true);
      await e.exec.result;
      return e.held;
    })();
    expect(await collected(held)).toBe(false);
    expect(kept).toHaveLength(1);
  });

  it("the local runner applies it to the engine, whose Map states still run every item", async () => {
    const machine = new StateMachine(
      {
        StartAt: "Each",
        States: {
          Each: {
            Type: "Map",
            MaxConcurrency: 3,
            ItemProcessor: {
              StartAt: "Double",
              States: {
                Double: {
                  Type: "Task",
                  Resource: "arn:aws:lambda:us-east-1:123456789012:function:double",
                  End: true,
                },
              },
            },
            End: true,
          },
        },
      } as never,
      { validationOptions: { noValidate: true } },
    );
    const run = machine.run([1, 2, 3, 4, 5], {
      overrides: { taskResourceLocalHandlers: { Double: async (n: number) => n * 2 } },
    } as never);
    expect(String(run.abort)).not.toContain("abortController"); // the forwarder, not the engine's closure
    expect(await run.result).toEqual([2, 4, 6, 8, 10]);
  });
});
