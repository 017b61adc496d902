import * as fs from "node:fs";
import * as path from "node:path";
import { DEFINITIONS } from "../shared/workflow/contract.ts";

/**
 * The workflow definitions live in shared/workflow as Amazon States Language JSON, with `${Name}`
 * placeholders for the ARNs only a deployment knows. The CDK app embeds the file's text unchanged
 * (DefinitionBody.fromString, not fromFile: fromFile would upload it as an S3 asset) and lets
 * CloudFormation fill the placeholders through DefinitionSubstitutions; the local runner substitutes
 * the same placeholders itself. One file, two consumers.
 */
export interface WorkflowDefinition {
  /** Path relative to the repository root. */
  readonly file: string;
  /** Every placeholder the file may use; the CDK app provides each one. */
  readonly substitutions: readonly string[];
}

/** The contract's definitions (shared/workflow/contract.ts, data only), as this app loads them. */
const contract = (d: { file: string; placeholders: readonly string[] }): WorkflowDefinition => ({
  file: d.file,
  substitutions: d.placeholders,
});
export const COPY_IMAGE_DEFINITION = contract(DEFINITIONS.copyImage);
export const BULK_MIGRATE_DEFINITION = contract(DEFINITIONS.bulkMigrate);
export const BENCH_FANOUT_DEFINITION = contract(DEFINITIONS.benchFanout);

/** `${Name}` placeholders as DefinitionSubstitutions spells them. */
const PLACEHOLDER = /\$\{([A-Za-z0-9_]+)\}/g;

export function placeholdersOf(text: string): Set<string> {
  return new Set(Array.from(text.matchAll(PLACEHOLDER), (m) => m[1] ?? ""));
}

/** Replaces every `${Name}` with `values[Name]`; an unknown name is an error. */
export function substitute(text: string, values: Readonly<Record<string, string>>): string {
  return text.replace(PLACEHOLDER, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for the placeholder \${${name}}`);
    return value;
  });
}

/** Placeholder values that look like real ARNs, for validating and running a definition outside AWS. */
export function fakeSubstitutions(names: readonly string[]): Record<string, string> {
  const values: Record<string, string> = {};
  for (const name of names) {
    if (name.endsWith("FunctionArn")) {
      values[name] = `arn:aws:lambda:us-east-1:123456789012:function:${name.slice(0, -"Arn".length)}`;
    } else if (name.endsWith("StateMachineArn")) {
      values[name] = `arn:aws:states:us-east-1:123456789012:stateMachine:${name.slice(0, -"Arn".length)}`;
    } else if (name === "StagingBucket") {
      values[name] = "ferry-staging-123456789012";
    } else {
      values[name] = `fake-${name}`;
    }
  }
  return values;
}

export interface LoadedDefinition {
  readonly path: string;
  /** The file's text, unchanged. */
  readonly text: string;
  /** The parsed definition after fake substitutions (for checks at synth time). */
  readonly parsed: Record<string, unknown>;
  readonly placeholders: ReadonlySet<string>;
}

/**
 * Reads a definition and checks it against the contract: the file exists, every placeholder is one the
 * CDK app provides, and it is valid JSON once substituted. Errors name the file and what to do.
 */
export function loadDefinition(root: string, definition: WorkflowDefinition): LoadedDefinition {
  const file = path.join(root, definition.file);
  if (!fs.existsSync(file)) {
    throw new Error(
      `ImageTransfer: the workflow definition ${definition.file} does not exist under ${root}. ` +
        "It is written by the serverless workflow work (issue 4); the CDK app cannot synthesise without it.",
    );
  }
  const text = fs.readFileSync(file, "utf8");
  const placeholders = placeholdersOf(text);
  const unknown = [...placeholders].filter((p) => !definition.substitutions.includes(p));
  if (unknown.length > 0) {
    throw new Error(
      `ImageTransfer: ${definition.file} uses ${unknown.map((u) => `\${${u}}`).join(", ")}, which the CDK app ` +
        `does not provide (it provides ${definition.substitutions.map((s) => `\${${s}}`).join(", ")})`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(substitute(text, fakeSubstitutions(definition.substitutions)));
  } catch (error) {
    throw new Error(`ImageTransfer: ${definition.file} is not valid JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || !("States" in parsed) || !("StartAt" in parsed)) {
    throw new Error(
      `ImageTransfer: ${definition.file} is not a state machine definition (no StartAt/States)`,
    );
  }
  return { path: file, text, parsed: parsed as Record<string, unknown>, placeholders };
}

/** Every state of a definition, nested ones included (Map ItemProcessor/Iterator, Parallel Branches). */
export function allStates(definition: Record<string, unknown>): Array<[string, Record<string, unknown>]> {
  const out: Array<[string, Record<string, unknown>]> = [];
  const visit = (machine: unknown) => {
    if (machine === null || typeof machine !== "object") return;
    const states = (machine as { States?: Record<string, Record<string, unknown>> }).States ?? {};
    for (const [name, state] of Object.entries(states)) {
      out.push([name, state]);
      visit(state.ItemProcessor);
      visit(state.Iterator);
      for (const branch of (state.Branches as unknown[] | undefined) ?? []) visit(branch);
    }
  };
  visit(definition);
  return out;
}

/** Distributed Map states whose child executions are not STANDARD (big layers outlive Express's 5 minutes). */
export function nonStandardDistributedMaps(definition: Record<string, unknown>): string[] {
  return allStates(definition)
    .filter(([, state]) => {
      const config = (state.ItemProcessor as { ProcessorConfig?: Record<string, unknown> } | undefined)
        ?.ProcessorConfig;
      return config?.Mode === "DISTRIBUTED" && config.ExecutionType !== "STANDARD";
    })
    .map(([name]) => name);
}
