/**
 * The workflow definitions, as data — one source of truth for AWS (infra/ gives the files to
 * `DefinitionBody.fromString` of the file's text with `definitionSubstitutions`) and for local runs (local-runner.ts).
 *
 * The contract with infra/ (files, placeholders, functions, Task bindings) is contract.ts.
 * Task resources are the Lambda ARNs themselves (not `arn:aws:states:::lambda:invoke`): the state input
 * is the handler's event and its return value the task result — no `Payload` wrapping.
 * JSONPath throughout (no JSONata).
 */
import { fileURLToPath } from "node:url";
import bulkMigrateJson from "./bulk-migrate.asl.json" with { type: "json" };
import {
  BULK_MIGRATE_INTEGRATIONS,
  BULK_MIGRATE_TASKS,
  COPY_IMAGE_TASKS,
  DEFINITIONS,
  FUNCTIONS,
  type FunctionName,
} from "./contract.ts";
import copyImageJson from "./copy-image.asl.json" with { type: "json" };

/** An Amazon States Language document (JSON). */
export type AslDefinition = { StartAt: string; States: Record<string, AslState>; Comment?: string } & Record<
  string,
  unknown
>;
export type AslState = { Type: string } & Record<string, unknown>;

export const DEFINITION_FILES = {
  copyImage: fileURLToPath(new URL("./copy-image.asl.json", import.meta.url)),
  bulkMigrate: fileURLToPath(new URL("./bulk-migrate.asl.json", import.meta.url)),
} as const;

/** A fresh copy of the copy-image definition (placeholders unresolved). */
export function copyImageDefinition(): AslDefinition {
  return structuredClone(copyImageJson) as unknown as AslDefinition;
}

/** A fresh copy of the bulk-migrate definition (placeholders unresolved). */
export function bulkMigrateDefinition(): AslDefinition {
  return structuredClone(bulkMigrateJson) as unknown as AslDefinition;
}

/** Freezes `v` and everything in it; returns it. */
export function deepFreeze<T>(v: T): Readonly<T> {
  if (v && typeof v === "object") {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** The parsed definitions, frozen (placeholders unresolved). Use the functions above for a mutable copy. */
export const COPY_IMAGE_DEFINITION: Readonly<AslDefinition> = deepFreeze(copyImageDefinition());
export const BULK_MIGRATE_DEFINITION: Readonly<AslDefinition> = deepFreeze(bulkMigrateDefinition());

export const COPY_IMAGE_PLACEHOLDERS = DEFINITIONS.copyImage.placeholders;
export const BULK_MIGRATE_PLACEHOLDERS = DEFINITIONS.bulkMigrate.placeholders;

export type Placeholder =
  | (typeof COPY_IMAGE_PLACEHOLDERS)[number]
  | (typeof BULK_MIGRATE_PLACEHOLDERS)[number];
export const PLACEHOLDERS: readonly Placeholder[] = [
  ...COPY_IMAGE_PLACEHOLDERS,
  ...BULK_MIGRATE_PLACEHOLDERS,
];

export { BULK_MIGRATE_INTEGRATIONS, BULK_MIGRATE_TASKS, COPY_IMAGE_TASKS, FUNCTIONS, type FunctionName };

const PLACEHOLDER = /\$\{([A-Za-z][A-Za-z0-9]*)\}/g;

/** Every `${Name}` a definition uses. */
export function findPlaceholders(def: unknown): string[] {
  const found = new Set<string>();
  const walk = (v: unknown): void => {
    if (typeof v === "string") for (const m of v.matchAll(PLACEHOLDER)) found.add(m[1]!);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") Object.values(v).forEach(walk);
  };
  walk(def);
  return [...found].sort();
}

/**
 * Replaces `${Name}` in every string of `def` (keys untouched), as CloudFormation's
 * `DefinitionSubstitutions` does. Throws naming any placeholder left without a value.
 */
export function substitute<T>(def: T, values: Readonly<Record<string, string>>): T {
  const missing = findPlaceholders(def).filter((p) => values[p] === undefined);
  if (missing.length)
    throw new TypeError(`no value for placeholder(s) ${missing.map((m) => `\${${m}}`).join(", ")}`);
  const walk = (v: unknown): unknown => {
    if (typeof v === "string") return v.replace(PLACEHOLDER, (_, name: string) => values[name]!);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object")
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(def) as T;
}

/** The region and account of local runs: fake, but the ARNs made of them are well-formed. */
export const LOCAL_REGION = "us-east-1";
export const LOCAL_ACCOUNT = "000000000000";

/** The ARN of a local run's execution `name` of state machine `machine`. */
export function localExecutionArn(machine: string, name: string): string {
  return `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:execution:${machine}:${name}`;
}

/** Fake but well-formed ARNs for every placeholder (local runs, validation). */
export function fakeSubstitutions(
  region = LOCAL_REGION,
  account = LOCAL_ACCOUNT,
): Record<Placeholder, string> {
  const fn = (name: string) => `arn:aws:lambda:${region}:${account}:function:ferry-${name}`;
  return {
    ResolveFunctionArn: fn("resolve"),
    StageBlobFunctionArn: fn("stageBlob"),
    UploadBlobFunctionArn: fn("uploadBlob"),
    PutManifestsFunctionArn: fn("putManifests"),
    CleanupFunctionArn: fn("cleanup"),
    EnumerateFunctionArn: fn("enumerate"),
    SummarizeFunctionArn: fn("summarize"),
    CopyImageStateMachineArn: `arn:aws:states:${region}:${account}:stateMachine:ferry-copy-image`,
    StagingBucket: "ferry-staging-local",
  };
}
