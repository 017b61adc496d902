import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { App, type Stack, Validations } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import nag from "cdk-nag";
import type { IConstruct } from "constructs";
import type { ImageTransferProps } from "../../infra/constructs/props.ts";
import { REPOSITORY_ROOT } from "../../infra/constructs/props.ts";
import { FerryStack } from "../../infra/stack.ts";

/** cdk.json's context, so that tests build the app the CLI builds. */
export const CDK_CONTEXT: Record<string, unknown> = (
  JSON.parse(fs.readFileSync(path.join(REPOSITORY_ROOT, "cdk.json"), "utf8")) as {
    context: Record<string, unknown>;
  }
).context;

/** A fresh App with cdk.json's context and bundling skipped (platform-notes: CDK offline). */
export function testApp(): App {
  return new App({ context: { ...CDK_CONTEXT, "aws:cdk:bundling-stacks": [] } });
}

export interface Synthesised {
  readonly app: App;
  readonly stack: FerryStack;
  readonly template: Template;
  readonly json: CfnTemplate;
}

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  DependsOn?: string[];
  UpdateReplacePolicy?: string;
  DeletionPolicy?: string;
}
export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, unknown>;
}

export function synth(transfer: ImageTransferProps = {}): Synthesised {
  const app = testApp();
  const stack = new FerryStack(app, "Ferry", { transfer });
  const template = Template.fromStack(stack);
  return { app, stack, template, json: template.toJSON() as CfnTemplate };
}

/** The functions with a registry client: they alone get registry secrets, TLS material and the registry settings. */
export const REGISTRY_FUNCTIONS = [
  "resolve",
  "stageBlob",
  "uploadBlob",
  "putManifests",
  "cleanup",
  "enumerate",
  "benchWorker",
];

/** A configuration that switches every optional part on (promotion, schedules, secrets, ECR, bench). */
export const FULL: ImageTransferProps = {
  registries: {
    "ghcr.io": {},
    "docker.io": {
      secretArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ferry/dockerhub-AbCdEf",
    },
    "quay.io": {
      secretArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ferry/quay",
      encryptionKeyArn: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    },
  },
  ecr: { pullRepositories: ["mirror/base"], pushRepositories: ["prod/*"] },
  ecrRoleArn: "arn:aws:iam::210987654321:role/ferry-ecr",
  promotion: {
    destination: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/prod",
    repositories: ["app", "team-*"],
    tags: ["v*", "latest"],
    sourceAccounts: ["111111111111"],
  },
  migrations: [
    {
      name: "nightly-ghcr",
      schedule: "cron(0 3 * * ? *)",
      timeZone: "Europe/Paris",
      config: { source: "ghcr.io/acme", destination: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme" },
    },
    {
      name: "weekly",
      schedule: "rate(7 days)",
      config: { source: "quay.io/acme", destination: "ghcr.io/acme" },
    },
  ],
  benchWorkers: true,
};

/** cdk-nag AwsSolutions over a scope: the unacknowledged findings, as "rule at path" lines. */
export function nagFindings(scope: IConstruct): string[] {
  const report = new nag.AwsSolutionsChecks().validateScope(scope);
  return report.violations.flatMap((v) =>
    v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`),
  );
}

/** Every acknowledgement recorded in a construct tree: id → reason. */
export function acknowledgements(scope: IConstruct): Array<{ path: string; id: string; reason: string }> {
  const out: Array<{ path: string; id: string; reason: string }> = [];
  for (const c of scope.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        out.push({ path: c.node.path, id, reason });
      }
    }
  }
  return out;
}

export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

export const asList = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

/** The statements of every identity policy attached to a role (by the role's logical id). */
export function roleStatements(json: CfnTemplate, roleLogicalId: string): Statement[] {
  const out: Statement[] = [];
  for (const resource of Object.values(json.Resources)) {
    if (resource.Type !== "AWS::IAM::Policy") continue;
    const roles = (resource.Properties?.Roles as Array<{ Ref: string }> | undefined) ?? [];
    if (!roles.some((r) => r.Ref === roleLogicalId)) continue;
    const document = resource.Properties?.PolicyDocument as { Statement?: Statement[] } | undefined;
    out.push(...(document?.Statement ?? []));
  }
  const role = json.Resources[roleLogicalId];
  for (const p of (role?.Properties?.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }>) ??
    []) {
    out.push(...p.PolicyDocument.Statement);
  }
  return out;
}

/** Every action a role is allowed. */
export function allowedActions(json: CfnTemplate, roleLogicalId: string): Set<string> {
  return new Set(
    roleStatements(json, roleLogicalId)
      .filter((s) => s.Effect === "Allow")
      .flatMap((s) => asList(s.Action)),
  );
}

/** Logical id of a construct's CloudFormation resource (e.g. the role of a FerryFunction). */
export function logicalId(stack: Stack, construct: IConstruct): string {
  const child = construct.node.defaultChild ?? construct;
  return stack.resolve((child as unknown as { logicalId: string }).logicalId) as string;
}

/** asl-validator (CommonJS, no types). */
const require = createRequire(import.meta.url);
export const aslValidator = require("asl-validator") as (
  definition: unknown,
  options?: { checkPaths?: boolean; checkArn?: boolean },
) => { isValid: boolean; errors: unknown[]; errorsText: (separator?: string) => string };

/** What CloudFormation makes of a resolved value, with these pseudo parameters (Ref and Fn::Join only). */
export function deployedString(
  value: unknown,
  pseudo: Record<string, string> = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "eu-west-1",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::Partition": "aws",
  },
): string {
  if (typeof value === "string") return value;
  const o = value as { Ref?: string; "Fn::Join"?: [string, unknown[]] };
  if (o?.Ref !== undefined) {
    const v = pseudo[o.Ref];
    if (v === undefined) throw new Error(`no value for Ref ${o.Ref}`);
    return v;
  }
  if (o?.["Fn::Join"]) {
    const [delimiter, items] = o["Fn::Join"];
    return items.map((i) => deployedString(i, pseudo)).join(delimiter);
  }
  throw new Error(`cannot evaluate ${JSON.stringify(value)}`);
}
