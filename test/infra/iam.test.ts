import { describe, expect, it } from "vitest";
import { STAGING_PREFIXES } from "../../infra/constructs/staging-bucket.ts";
import { RESOURCE_STAR_ACTIONS } from "../../infra/nag.ts";
import { benchPrefix } from "../../load/results.ts";
import { bulkPrefix, transferPrefix } from "../../shared/workflow/keys.ts";
import {
  allowedActions,
  asList,
  type CfnTemplate,
  FULL,
  logicalId,
  nagFindings,
  REGISTRY_FUNCTIONS,
  roleStatements,
  type Statement,
  synth,
} from "./helpers.ts";

const full = synth(FULL);
const { stack, json } = full;
const t = stack.transfer;
const fns = t.functions as Record<string, NonNullable<(typeof t.functions)["api"]>>;
const roleOf = (name: string) => logicalId(stack, fns[name]!.role);
const stagingArn = { "Fn::GetAtt": [logicalId(stack, t.stagingBucket), "Arn"] };

/** Statements of a role that grant `action`, with their resources. */
const grants = (role: string, action: string): Statement[] =>
  roleStatements(json, role).filter((s) => s.Effect === "Allow" && asList(s.Action).includes(action));

/** Every policy statement in the template: identity policies, inline policies, managed policies. */
function everyStatement(template: CfnTemplate): Array<Statement & { where: string }> {
  const out: Array<Statement & { where: string }> = [];
  for (const [id, r] of Object.entries(template.Resources)) {
    const docs: Array<{ Statement: Statement[] }> = [];
    if (r.Type === "AWS::IAM::Policy" || r.Type === "AWS::IAM::ManagedPolicy") {
      docs.push(r.Properties?.PolicyDocument as { Statement: Statement[] });
    }
    if (r.Type === "AWS::IAM::Role") {
      for (const p of (r.Properties?.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }>) ??
        []) {
        docs.push(p.PolicyDocument);
      }
    }
    for (const d of docs) for (const s of d.Statement) out.push({ ...s, where: id });
  }
  return out;
}

/** The ARN CDK synthesises for ECR repository `name` of `account` (the stack's account when undefined). */
const repo = (account: string | undefined, name: string) => ({
  "Fn::Join": [
    "",
    account
      ? ["arn:", { Ref: "AWS::Partition" }, ":ecr:", { Ref: "AWS::Region" }, `:${account}:repository/${name}`]
      : [
          "arn:",
          { Ref: "AWS::Partition" },
          ":ecr:",
          { Ref: "AWS::Region" },
          ":",
          { Ref: "AWS::AccountId" },
          `:repository/${name}`,
        ],
  ],
});

describe("IAM: least privilege per function", () => {
  it("no action wildcards anywhere, and Resource '*' only for actions without resource-level permissions", () => {
    const statements = everyStatement(json);
    expect(statements.length).toBeGreaterThan(40);
    for (const s of statements) {
      for (const action of asList(s.Action)) expect(action, `${s.where}`).not.toContain("*");
      if (asList(s.Resource).includes("*")) {
        for (const action of asList(s.Action))
          expect(RESOURCE_STAR_ACTIONS, `${s.where}: ${action}`).toContain(action);
      }
    }
  });

  it("ecr:GetAuthorizationToken ('*') only where a role also has repository-scoped ECR statements", () => {
    for (const name of Object.keys(fns)) {
      const actions = allowedActions(json, roleOf(name));
      const scoped = [...actions].some((a) => a.startsWith("ecr:") && a !== "ecr:GetAuthorizationToken");
      expect(actions.has("ecr:GetAuthorizationToken"), name).toBe(scoped);
      if (scoped) {
        for (const s of roleStatements(json, roleOf(name))) {
          const ecr = asList(s.Action).filter(
            (a) => a.startsWith("ecr:") && a !== "ecr:GetAuthorizationToken",
          );
          if (ecr.length > 0) {
            for (const r of asList(s.Resource)) expect(JSON.stringify(r)).toMatch(/:repository\//);
          }
        }
      }
    }
    const noEcr = synth();
    for (const s of everyStatement(noEcr.json))
      expect(asList(s.Action)).not.toContain("ecr:GetAuthorizationToken");
  });

  it("function roles trust Lambda only and carry no managed policies", () => {
    for (const name of Object.keys(fns)) {
      const role = json.Resources[roleOf(name)]!;
      expect(role.Properties?.ManagedPolicyArns, name).toBeUndefined();
      expect(role.Properties?.AssumeRolePolicyDocument).toEqual({
        Statement: [
          { Action: "sts:AssumeRole", Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" } },
        ],
        Version: "2012-10-17",
      });
    }
  });

  it("staging: each step gets exactly its S3 actions, on its own prefix; triggers get none", () => {
    const write = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"];
    // list: s3:ListBucket, so that reading a missing record answers 404 rather than 403.
    const EXPECTED_S3: Record<string, { area?: string; actions: string[]; list?: boolean }> = {
      resolve: { area: "transfers/", actions: write },
      stageBlob: { area: "transfers/", actions: ["s3:GetObject", ...write, "s3:DeleteObject"], list: true },
      uploadBlob: { area: "transfers/", actions: ["s3:GetObject", ...write, "s3:DeleteObject"], list: true },
      putManifests: { area: "transfers/", actions: ["s3:GetObject", ...write], list: true },
      cleanup: { area: "transfers/", actions: ["s3:GetObject", ...write, "s3:DeleteObject"], list: true },
      enumerate: { area: "bulk/", actions: write },
      summarize: { area: "bulk/", actions: ["s3:GetObject", ...write], list: true },
      api: { area: "transfers/", actions: ["s3:GetObject"], list: true },
      event: { actions: [] },
      schedule: { actions: [] },
      // a replay worker reads its part of the trace under bench/<runId>/trace/
      benchWorker: { area: "bench/", actions: ["s3:GetObject", ...write], list: true },
      benchAggregate: { area: "bench/", actions: ["s3:GetObject", ...write], list: true },
    };
    expect(Object.keys(EXPECTED_S3).sort()).toEqual(Object.keys(fns).sort());
    for (const [name, expected] of Object.entries(EXPECTED_S3)) {
      const statements = roleStatements(json, roleOf(name)).filter((s) =>
        asList(s.Action).some((a) => a.startsWith("s3:")),
      );
      const objectStatements = statements.filter((s) => !asList(s.Action).includes("s3:ListBucket"));
      const objectActions = objectStatements.flatMap((s) => asList(s.Action));
      expect(new Set(objectActions), name).toEqual(new Set(expected.actions));
      for (const s of objectStatements) {
        expect(s.Resource, name).toEqual({ "Fn::Join": ["", [stagingArn, `/${expected.area}*`]] });
      }
      const lists = statements.filter((s) => asList(s.Action).includes("s3:ListBucket"));
      expect(lists.length, name).toBe(expected.list ? 1 : 0);
      // Listing only under the function's own prefix (the condition every ListObjects request must meet).
      for (const s of lists)
        expect(s, name).toEqual({
          Action: "s3:ListBucket",
          Effect: "Allow",
          Resource: stagingArn,
          Condition: { StringLike: { "s3:prefix": [`${expected.area}*`] } },
        });
    }
  });

  it("no role anywhere may list the staging bucket without an s3:prefix condition", () => {
    let listings = 0;
    for (const config of [FULL, {}]) {
      for (const s of everyStatement(synth(config).json)) {
        if (!asList(s.Action).includes("s3:ListBucket")) continue;
        listings++;
        const prefixes = asList(
          (s.Condition as { StringLike?: Record<string, string | string[]> } | undefined)?.StringLike?.[
            "s3:prefix"
          ] ?? [],
        );
        expect(prefixes.length, s.where).toBeGreaterThan(0);
        for (const p of prefixes) expect(p, s.where).toMatch(/^(transfers|bulk|bench)\/\*$/);
      }
    }
    expect(listings).toBeGreaterThanOrEqual(6);
  });

  it("the staging prefixes are the ones the workflow writes (shared/workflow/keys.ts)", () => {
    expect(transferPrefix("exec-1").startsWith(STAGING_PREFIXES.transfers)).toBe(true);
    expect(bulkPrefix("exec-1").startsWith(STAGING_PREFIXES.bulk)).toBe(true);
    expect(benchPrefix("run1").startsWith(STAGING_PREFIXES.bench)).toBe(true);
  });

  it("registry secrets (and their keys) are readable only by the functions that talk to registries", () => {
    for (const name of Object.keys(fns)) {
      const actions = allowedActions(json, roleOf(name));
      const talks = REGISTRY_FUNCTIONS.includes(name);
      expect(actions.has("secretsmanager:GetSecretValue"), name).toBe(talks);
      expect(actions.has("sts:AssumeRole"), name).toBe(talks);
      expect(actions.has("kms:Decrypt"), name).toBe(talks);
    }
    const secretResources = grants(roleOf("resolve"), "secretsmanager:GetSecretValue").flatMap((s) =>
      asList(s.Resource),
    );
    expect(secretResources).toEqual([
      { Ref: logicalId(stack, t.registrySecrets.secrets.get("ghcr.io")!) },
      "arn:aws:secretsmanager:us-east-1:123456789012:secret:ferry/dockerhub-AbCdEf",
      "arn:aws:secretsmanager:us-east-1:123456789012:secret:ferry/quay-??????", // a partial ARN
    ]);
    expect(grants(roleOf("resolve"), "sts:AssumeRole")[0]?.Resource).toBe(
      "arn:aws:iam::210987654321:role/ferry-ecr",
    );
    expect(grants(roleOf("resolve"), "kms:Decrypt")).toEqual([
      {
        Action: "kms:Decrypt",
        Effect: "Allow",
        Resource: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        Condition: {
          StringEquals: {
            "kms:ViaService": {
              "Fn::Join": ["", ["secretsmanager.", { Ref: "AWS::Region" }, ".amazonaws.com"]],
            },
          },
        },
      },
    ]);
  });

  it("ECR statements name the configured repositories: sources for reads, destinations for writes", () => {
    const sources = [
      repo(undefined, "mirror/base"),
      repo(undefined, "app"),
      repo(undefined, "team-*"),
      repo("111111111111", "app"),
      repo("111111111111", "team-*"),
    ];
    const destinations = [repo(undefined, "prod/*")];
    const readers = Object.keys(fns).filter(
      (n) => grants(roleOf(n), "ecr:GetDownloadUrlForLayer").length > 0,
    );
    expect(readers.sort()).toEqual(["enumerate", "resolve", "stageBlob", "uploadBlob"]);
    for (const name of readers) {
      expect(
        grants(roleOf(name), "ecr:GetDownloadUrlForLayer").map((s) => s.Resource),
        name,
      ).toEqual([sources]);
    }
    const pushers = Object.keys(fns).filter((n) => grants(roleOf(n), "ecr:PutImage").length > 0);
    expect(pushers.sort()).toEqual(["cleanup", "putManifests", "uploadBlob"]);
    for (const name of pushers) {
      expect(
        grants(roleOf(name), "ecr:PutImage").map((s) => s.Resource),
        name,
      ).toEqual([destinations[0]]);
    }
    // Resolve and enumerate HEAD the destination (manifests, layers) without write access.
    for (const name of ["resolve", "enumerate"]) {
      const head = grants(roleOf(name), "ecr:BatchGetImage").filter((s) =>
        JSON.stringify(s.Resource).includes("prod/*"),
      );
      expect(
        head.map((s) => asList(s.Action).sort()),
        name,
      ).toEqual([["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage"]]);
    }
    // Listing is for bulk enumeration only; summarize, triggers and bench never reach ECR.
    expect(Object.keys(fns).filter((n) => allowedActions(json, roleOf(n)).has("ecr:ListImages"))).toEqual([
      "enumerate",
    ]);
    for (const name of ["summarize", "api", "event", "schedule", "benchWorker", "benchAggregate"]) {
      expect(
        [...allowedActions(json, roleOf(name))].filter((a) => a.startsWith("ecr:")),
        name,
      ).toEqual([]);
    }
  });

  it("only the API describes copies; the API and promotion start them; only the schedule starts migrations", () => {
    const copyRef = { Ref: logicalId(stack, t.copyImage) };
    const bulkRef = { Ref: logicalId(stack, t.bulkMigrate) };
    const startersOf = (ref: unknown) =>
      Object.keys(fns)
        .filter((name) =>
          grants(roleOf(name), "states:StartExecution").some((s) =>
            asList(s.Resource).some((r) => JSON.stringify(r) === JSON.stringify(ref)),
          ),
        )
        .sort();
    expect(startersOf(copyRef)).toEqual(["api", "event"]);
    expect(startersOf(bulkRef)).toEqual(["schedule"]);
    const describers = Object.keys(fns).filter(
      (name) => grants(roleOf(name), "states:DescribeExecution").length > 0,
    );
    expect(describers.sort()).toEqual(["api", "event"]);
    expect(JSON.stringify(grants(roleOf("api"), "states:DescribeExecution")[0]?.Resource)).toContain(
      ":execution:Ferry-Transfer-copy-image:*",
    );
    // The event function looks for earlier attempts of its promotions only: executions named `p-…` of the
    // copy machine, DescribeExecution alone (no StopExecution, no history, no other machine).
    const event = roleStatements(json, roleOf("event")).filter((s) =>
      asList(s.Action).some((a) => a.startsWith("states:")),
    );
    expect(event.map((s) => asList(s.Action))).toEqual([
      ["states:StartExecution"],
      ["states:DescribeExecution"],
    ]);
    const describe = event[1]!;
    expect(asList(describe.Resource)).toHaveLength(1);
    expect(JSON.stringify(describe.Resource)).toMatch(/:execution:Ferry-Transfer-copy-image:p-\*"/);
    // without promotion there is no event function, hence no such grant
    const plain = synth();
    expect(plain.stack.transfer.functions.event).toBeUndefined();
    for (const name of Object.keys(fns)) {
      const states = [...allowedActions(json, roleOf(name))].filter((a) => a.startsWith("states:"));
      if (!["api", "event", "schedule"].includes(name)) expect(states, name).toEqual([]);
    }
  });

  it("the bench functions: their staging prefix, the worker the registry secrets; no ECR; the fan-out invokes them", () => {
    const base = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "xray:PutTelemetryRecords",
      "xray:PutTraceSegments",
    ];
    const registries = ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "sts:AssumeRole"];
    for (const [name, extra] of [
      ["benchWorker", registries],
      ["benchAggregate", []],
    ] as const) {
      const actions = [...allowedActions(json, roleOf(name))].filter((a) => !/^(s3|kms):/.test(a));
      expect(actions.sort(), name).toEqual([...base, ...extra].sort());
    }
    const fanoutRole = logicalId(stack, t.benchFanout!.role);
    expect(grants(fanoutRole, "lambda:InvokeFunction").map((s) => s.Resource)).toEqual([
      [
        { "Fn::GetAtt": [logicalId(stack, fns.benchWorker!.function), "Arn"] },
        { "Fn::GetAtt": [logicalId(stack, fns.benchAggregate!.function), "Arn"] },
      ],
    ]);
  });

  it("EventBridge Scheduler's role may invoke the schedule function only, from this account's schedules", () => {
    const role = logicalId(stack, t.schedules.role!);
    expect(roleStatements(json, role)).toEqual([
      {
        Action: "lambda:InvokeFunction",
        Effect: "Allow",
        Resource: { "Fn::GetAtt": [logicalId(stack, fns.schedule!.function), "Arn"] },
      },
    ]);
    expect(json.Resources[role]?.Properties?.AssumeRolePolicyDocument).toMatchObject({
      Statement: [
        {
          Principal: { Service: "scheduler.amazonaws.com" },
          Condition: { StringEquals: { "aws:SourceAccount": { Ref: "AWS::AccountId" } } },
        },
      ],
    });
  });
});

describe("IAM: ECR repositories on demand (ecr.createRepositories)", () => {
  const key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
  const policy = {
    rules: [
      {
        rulePriority: 1,
        selection: {
          tagStatus: "untagged",
          countType: "sinceImagePushed",
          countUnit: "days",
          countNumber: 14,
        },
        action: { type: "expire" },
      },
    ],
  };
  const created = synth({
    ...FULL,
    ecr: {
      ...FULL.ecr,
      createRepositories: {
        tagMutability: "IMMUTABLE",
        encryption: "KMS",
        kmsKey: key,
        lifecyclePolicy: policy,
      },
    },
  });
  const fnsOf = (s: typeof created) =>
    s.stack.transfer.functions as Record<string, NonNullable<(typeof t.functions)["api"]>>;
  const role = (s: typeof created, name: string) => logicalId(s.stack, fnsOf(s)[name]!.role);
  const statementsWith = (s: typeof created, name: string, action: string) =>
    roleStatements(s.json, role(s, name)).filter(
      (st) => st.Effect === "Allow" && asList(st.Action).includes(action),
    );
  const prodRepositories = repo(undefined, "prod/*");

  it("only resolve may create repositories, and only those ecr.pushRepositories names", () => {
    const creators = Object.keys(fnsOf(created)).filter(
      (n) => statementsWith(created, n, "ecr:CreateRepository").length > 0,
    );
    expect(creators).toEqual(["resolve"]);
    const statements = statementsWith(created, "resolve", "ecr:CreateRepository");
    expect(statements).toHaveLength(1);
    expect(statements[0]!.Resource).toEqual(prodRepositories);
    // the lifecycle policy is put by the creator, on the same repositories; nothing else is granted there
    expect(asList(statements[0]!.Action).sort()).toEqual(
      [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:CreateRepository",
        "ecr:DescribeRepositories",
        "ecr:PutLifecyclePolicy",
      ].sort(),
    );
    // the KMS key: the grants ECR makes on the caller's behalf, through ECR only
    expect(statementsWith(created, "resolve", "kms:CreateGrant")).toEqual([
      {
        Action: ["kms:CreateGrant", "kms:DescribeKey", "kms:RetireGrant"],
        Effect: "Allow",
        Resource: key,
        Condition: {
          StringEquals: {
            "kms:ViaService": { "Fn::Join": ["", ["ecr.", { Ref: "AWS::Region" }, ".amazonaws.com"]] },
          },
        },
      },
    ]);
    for (const name of Object.keys(fnsOf(created)).filter((n) => n !== "resolve"))
      expect(statementsWith(created, name, "kms:CreateGrant"), name).toEqual([]);
    // and cdk-nag has nothing new to say (the `prod/*` pattern is the operator's own, acknowledged)
    expect(nagFindings(created.stack)).toEqual([]);
  });

  it("the settings reach resolve alone, as ECR_CREATE_REPOSITORIES, exactly as configured", () => {
    const environments = Object.entries(fnsOf(created)).map(([name, f]) => {
      const fn = created.json.Resources[logicalId(created.stack, f.function)]!;
      const vars = (fn.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)
        ?.Variables;
      return [name, vars?.ECR_CREATE_REPOSITORIES] as const;
    });
    expect(environments.filter(([, v]) => v !== undefined).map(([n]) => n)).toEqual(["resolve"]);
    const value = environments.find(([n]) => n === "resolve")![1] as string;
    expect(JSON.parse(value)).toEqual({
      tagMutability: "IMMUTABLE",
      scanOnPush: true,
      encryption: "KMS",
      kmsKey: key,
      lifecyclePolicy: policy,
    });
  });

  it("without ecr.createRepositories no role may describe or create a destination repository", () => {
    for (const name of Object.keys(fns)) {
      const actions = allowedActions(json, roleOf(name));
      expect(actions.has("ecr:CreateRepository"), name).toBe(false);
      expect(actions.has("ecr:PutLifecyclePolicy"), name).toBe(false);
    }
    // DescribeRepositories stays where bulk listing needs it: enumerate, on sources only
    const describers = Object.keys(fns).filter((n) =>
      allowedActions(json, roleOf(n)).has("ecr:DescribeRepositories"),
    );
    expect(describers).toEqual(["enumerate"]);
    // and without a lifecycle policy, no PutLifecyclePolicy even with creation on
    const plain = synth({ ...FULL, ecr: { ...FULL.ecr, createRepositories: {} } });
    expect(statementsWith(plain, "resolve", "ecr:CreateRepository")).toHaveLength(1);
    expect(statementsWith(plain, "resolve", "ecr:PutLifecyclePolicy")).toEqual([]);
    expect(statementsWith(plain, "resolve", "kms:CreateGrant")).toEqual([]);
  });
});
