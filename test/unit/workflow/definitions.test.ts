import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { AddressNotAllowedError } from "../../../shared/registry/http/network.ts";
import {
  type AslState,
  BULK_MIGRATE_PLACEHOLDERS,
  BULK_MIGRATE_TASKS,
  bulkMigrateDefinition,
  COPY_IMAGE_PLACEHOLDERS,
  COPY_IMAGE_TASKS,
  copyImageDefinition,
  DEFINITION_FILES,
  FUNCTIONS,
  fakeSubstitutions,
  findPlaceholders,
  substitute,
} from "../../../shared/workflow/definitions.ts";
import {
  isRetryable,
  LAMBDA_SERVICE_ERRORS,
  RETRYABLE_ERRORS,
  STEP_ERROR_NAMES,
  toWorkflowError,
} from "../../../shared/workflow/errors.ts";
import { localizeDefinition } from "../../../shared/workflow/local-runner.ts";

function states(def: { States: Record<string, AslState> }): [string, AslState][] {
  const out: [string, AslState][] = [];
  for (const [n, s] of Object.entries(def.States)) {
    out.push([n, s]);
    const inner = (s.ItemProcessor ?? s.Iterator) as { States: Record<string, AslState> } | undefined;
    if (inner) out.push(...states(inner));
    for (const b of (s.Branches as { States: Record<string, AslState> }[] | undefined) ?? [])
      out.push(...states(b));
  }
  return out;
}

/** asl-validator (CommonJS, no type declarations). */
const aslValidator = createRequire(import.meta.url)("asl-validator") as (
  definition: unknown,
  opts?: { checkArn?: boolean; checkPaths?: boolean },
) => { isValid: boolean; errorsText(separator?: string): string };

/** `${Name}`, as the definitions write a substitution placeholder. */
const placeholder = (name: string) => `\${${name}}`;

function valid(def: unknown) {
  const r = aslValidator(def, { checkArn: true, checkPaths: true });
  return r.isValid ? "" : r.errorsText("\n");
}

describe("workflow definitions", () => {
  it("are valid ASL (asl-validator, ARNs and paths checked) once substituted", () => {
    expect(valid(substitute(copyImageDefinition(), fakeSubstitutions()))).toBe("");
    expect(valid(substitute(bulkMigrateDefinition(), fakeSubstitutions()))).toBe("");
  });

  it("use exactly the documented placeholders, and substitute refuses a missing one", () => {
    expect(findPlaceholders(copyImageDefinition())).toEqual([...COPY_IMAGE_PLACEHOLDERS].sort());
    expect(findPlaceholders(bulkMigrateDefinition())).toEqual([...BULK_MIGRATE_PLACEHOLDERS].sort());
    expect(() => substitute(copyImageDefinition(), { ResolveFunctionArn: "x" })).toThrow(
      /StageBlobFunctionArn/,
    );
    expect(existsSync(DEFINITION_FILES.copyImage) && existsSync(DEFINITION_FILES.bulkMigrate)).toBe(true);
  });

  it("bind every Lambda Task state to a function whose placeholder it uses, with JSONPath only", () => {
    for (const [def, tasks] of [
      [copyImageDefinition(), COPY_IMAGE_TASKS],
      [bulkMigrateDefinition(), BULK_MIGRATE_TASKS],
    ] as const) {
      expect(def.QueryLanguage ?? "JSONPath").toBe("JSONPath");
      const lambdaTasks = states(def).filter(
        ([, s]) => s.Type === "Task" && String(s.Resource).includes("FunctionArn"),
      );
      expect(Object.keys(tasks).sort()).toEqual(lambdaTasks.map(([n]) => n).sort());
      for (const [name, s] of lambdaTasks) {
        const fn = FUNCTIONS[(tasks as Record<string, keyof typeof FUNCTIONS>)[name]!];
        expect(s.Resource).toBe(`\${${fn.placeholder}}`);
        expect(existsSync(new URL(`../../../${fn.entry}`, import.meta.url))).toBe(true);
      }
    }
  });

  it("retry the typed retryable errors with backoff and jitter, and catch everything else", () => {
    for (const [name, s] of states(copyImageDefinition()).filter(([, s]) => s.Type === "Task")) {
      const retry = s.Retry as { ErrorEquals: string[]; BackoffRate: number; JitterStrategy: string }[];
      const r = retry.find((x) => x.ErrorEquals.includes(RETRYABLE_ERRORS[0]));
      expect(r, name).toBeDefined();
      expect(r!.BackoffRate).toBeGreaterThan(1);
      expect(r!.JitterStrategy).toBe("FULL");
      expect((s.Catch as { ErrorEquals: string[] }[])[0]!.ErrorEquals, name).toEqual(["States.ALL"]);
    }
  });

  it("never retry a refusal: Retry names only temporary errors, never the policy's or a catch-all", () => {
    const temporary = new Set<string>([
      ...RETRYABLE_ERRORS,
      ...LAMBDA_SERVICE_ERRORS,
      "States.Timeout",
      "Sandbox.Timedout",
      // a function that died mid-step (crash, out of memory): the step is idempotent, so it runs again
      "Runtime.ExitError",
      "Lambda.Unknown",
      // the bulk map starting copy-image children: Step Functions' own service errors
      "StepFunctions.ExecutionLimitExceededException",
      "StepFunctions.SdkClientException",
      "StepFunctions.AWSStepFunctionsException",
    ]);
    let rules = 0;
    for (const def of [copyImageDefinition(), bulkMigrateDefinition()]) {
      for (const [name, s] of states(def)) {
        for (const r of (s.Retry as { ErrorEquals: string[] }[] | undefined) ?? []) {
          rules++;
          for (const e of r.ErrorEquals) expect(temporary.has(e), `${name} retries ${e}`).toBe(true);
        }
      }
    }
    expect(rules).toBeGreaterThan(10);
    // every Lambda Task is retried after its function died mid-step, a bounded number of times
    for (const def of [copyImageDefinition(), bulkMigrateDefinition()]) {
      for (const [name, s] of states(def).filter(
        ([, s]) => s.Type === "Task" && String(s.Resource).includes("FunctionArn"),
      )) {
        const died = (s.Retry as { ErrorEquals: string[]; MaxAttempts: number }[]).find((r) =>
          r.ErrorEquals.includes("Runtime.ExitError"),
        );
        expect(died?.ErrorEquals, name).toContain("Lambda.Unknown");
        expect(died!.MaxAttempts, name).toBeLessThanOrEqual(2);
      }
    }
    for (const refusal of ["ValidationError", "AddressNotAllowedError", "States.ALL", "States.TaskFailed"])
      expect(temporary.has(refusal)).toBe(false);
    // and the step errors keep those names (Step Functions matches the thrown error's name)
    expect(STEP_ERROR_NAMES).toContain("AddressNotAllowedError");
    expect(toWorkflowError(new AddressNotAllowedError("h", "127.0.0.1", "loopback")).name).toBe(
      "AddressNotAllowedError",
    );
    expect(isRetryable(new AddressNotAllowedError("h", "127.0.0.1", "loopback"))).toBe(false);
  });

  it("the bulk map is a Distributed Map over staging, with child STANDARD executions of copy-image", () => {
    const map = bulkMigrateDefinition().States.CopyImages!;
    expect(map.ItemReader).toMatchObject({
      ReaderConfig: { InputType: "JSONL" },
      Parameters: { Bucket: placeholder("StagingBucket") },
    });
    expect(map.ItemProcessor).toMatchObject({
      ProcessorConfig: { Mode: "DISTRIBUTED", ExecutionType: "STANDARD" },
    });
    expect(map.ResultWriter).toBeDefined();
    expect(map.ToleratedFailurePercentagePath).toBe("$.toleratedFailurePercentage");
    const copy = (map.ItemProcessor as { States: Record<string, AslState> }).States.CopyImage!;
    expect(copy.Resource).toBe("arn:aws:states:::states:startExecution.sync:2");
    expect((copy.Parameters as Record<string, string>).StateMachineArn).toBe(
      placeholder("CopyImageStateMachineArn"),
    );
  });

  it("localizeDefinition turns the Distributed Map into valid inline states, leaving copy-image alone", () => {
    const { definition, synthetic } = localizeDefinition(
      substitute(bulkMigrateDefinition(), fakeSubstitutions()),
    );
    expect(valid(definition)).toBe("");
    expect(synthetic).toEqual({ CopyImagesReadItems: "read-items", CopyImagesWriteResults: "write-results" });
    const all = states(definition);
    for (const [, s] of all) {
      for (const k of ["ItemReader", "ItemBatcher", "ResultWriter", "ToleratedFailurePercentagePath"])
        expect(s[k]).toBeUndefined();
      if (s.Type === "Map")
        expect((s.ItemProcessor as { ProcessorConfig: { Mode: string } }).ProcessorConfig.Mode).toBe(
          "INLINE",
        );
    }
    expect(definition.States.AnyImages!.Choices).toEqual([
      expect.objectContaining({ Next: "CopyImagesReadItems" }),
    ]);
    const copy = substitute(copyImageDefinition(), fakeSubstitutions());
    expect(localizeDefinition(copy).definition).toEqual(copy);
  });
});
