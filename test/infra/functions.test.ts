import * as path from "node:path";
import { Duration } from "aws-cdk-lib";
import { describe, expect, it } from "vitest";
import { ferryShebang } from "../../bench/lib.ts";
import { FUNCTION_SPECS, STREAMING_ENVIRONMENT } from "../../infra/constructs/ferry-function.ts";
import { wildcardsToRegex } from "../../infra/constructs/image-transfer.ts";
import { STEP_TIME_FRACTION } from "../../infra/constructs/props.ts";
import { FUNCTIONS } from "../../shared/workflow/contract.ts";
import { FULL, logicalId, synth } from "./helpers.ts";

const MiB = 1024 * 1024;

/** The sizing table, restated: [construct name, entry, export, memory MiB, timeout s]. */
const EXPECTED: ReadonlyArray<readonly [string, string, string, number, number]> = [
  ["resolve", "functions/resolve/handler.ts", "handler", 512, 120],
  ["stageBlob", "functions/stage-blob/handler.ts", "handler", 1769, 900],
  ["uploadBlob", "functions/upload-blob/handler.ts", "handler", 1769, 900],
  ["putManifests", "functions/put-manifests/handler.ts", "handler", 512, 120],
  ["cleanup", "functions/cleanup/handler.ts", "handler", 256, 60],
  ["enumerate", "functions/enumerate/handler.ts", "handler", 512, 300],
  ["summarize", "functions/summarize/handler.ts", "handler", 512, 120],
  ["api", "functions/api/handler.ts", "handler", 256, 10],
  ["event", "functions/event/handler.ts", "handler", 256, 30],
  ["schedule", "functions/schedule/handler.ts", "handler", 256, 30],
  ["benchWorker", "load/lambda.ts", "workerHandler", 1769, 900],
  ["benchAggregate", "load/lambda.ts", "aggregateHandler", 512, 120],
];

describe("functions", () => {
  it("deploys exactly the contract's functions, with the contract's entries (shared/workflow/contract.ts)", () => {
    expect(Object.keys(FUNCTION_SPECS).sort()).toEqual(Object.keys(FUNCTIONS).sort());
    for (const [name, spec] of Object.entries(FUNCTION_SPECS)) {
      const c = FUNCTIONS[name as keyof typeof FUNCTIONS];
      expect([spec.entry, spec.exportName], name).toEqual([c.entry, c.exportName]);
    }
  });

  const full = synth(FULL);
  const functions = full.stack.transfer.functions as Record<
    string,
    NonNullable<(typeof full.stack.transfer.functions)["api"]>
  >;

  it("one function per handler, its code the package's dist/lambda/<function>: nodejs22.x, arm64, sized per step, traced, JSON logs", () => {
    full.template.resourceCountIs("AWS::Lambda::Function", EXPECTED.length);
    for (const [name, entry, exportName, memory, timeout] of EXPECTED) {
      const fn = functions[name];
      expect(fn, name).toBeDefined();
      expect(path.relative(full.stack.transfer.props.sourceRoot, fn!.entry)).toBe(entry);
      expect(path.relative(full.stack.transfer.props.sourceRoot, fn!.codeDirectory)).toBe(
        path.join("dist", "lambda", name),
      );
      const resource = full.json.Resources[logicalId(full.stack, fn!.function)]!;
      expect(resource.Properties, name).toMatchObject({
        Runtime: "nodejs22.x",
        Architectures: ["arm64"],
        Handler: `index.${exportName}`,
        MemorySize: memory,
        Timeout: timeout,
        TracingConfig: { Mode: "Active" },
        LoggingConfig: { LogFormat: "JSON", LogGroup: { Ref: logicalId(full.stack, fn!.logGroup) } },
        Role: { "Fn::GetAtt": [logicalId(full.stack, fn!.role), "Arn"] },
      });
    }
  });

  it("each function logs to its own log group with a retention", () => {
    for (const [name] of EXPECTED) {
      const fn = functions[name]!;
      expect(full.json.Resources[logicalId(full.stack, fn.logGroup)]?.Properties).toMatchObject({
        RetentionInDays: 30,
      });
    }
    const twoWeeks = synth({ logRetention: 14 });
    twoWeeks.template.allResourcesProperties("AWS::Logs::LogGroup", { RetentionInDays: 14 });
  });

  it("deploys the bench fan-out functions only when asked", () => {
    const plain = synth();
    expect(plain.stack.transfer.functions.benchWorker).toBeUndefined();
    plain.template.resourceCountIs("AWS::Lambda::Function", EXPECTED.length - 3); // no event, no bench
  });

  it("derives STEP_BYTES from the throughput so a step finishes in half its timeout", () => {
    const { stack } = synth();
    const p = stack.transfer.props;
    // Defaults: 5 MiB/s × 900 s × 0.5 = 2,250 MiB, aligned down to 64 MiB.
    expect(p.stepBytes).toBe(2240 * MiB);
    expect(p.stepBytes / (p.stepThroughputMiBps * MiB)).toBeLessThanOrEqual(
      p.blobStepTimeout.toSeconds() * STEP_TIME_FRACTION,
    );
    expect(p.stepBytes % (64 * MiB)).toBe(0);
    expect(p.directMaxBytes).toBe(32 * MiB);

    const fast = synth({
      stepThroughputMiBps: 50,
      blobStepTimeout: Duration.minutes(10),
      blobStepMemoryMiB: 3008,
    });
    expect(fast.stack.transfer.props.stepBytes).toBe(15_000 * MiB - ((15_000 * MiB) % (64 * MiB)));
    const stage = fast.stack.transfer.functions.stageBlob!;
    expect(fast.json.Resources[logicalId(fast.stack, stage.function)]?.Properties).toMatchObject({
      MemorySize: 3008,
      Timeout: 600,
      Environment: { Variables: { STEP_BYTES: String(fast.stack.transfer.props.stepBytes) } },
    });
  });

  it("passes each function only the settings it reads", () => {
    const env = (name: string) =>
      (
        full.json.Resources[logicalId(full.stack, functions[name]!.function)]!.Properties!.Environment as {
          Variables: Record<string, unknown>;
        }
      ).Variables;
    const stagingRef = { Ref: logicalId(full.stack, full.stack.transfer.stagingBucket) };
    // The allow-lists go to every function that starts or runs a copy; their values: test/infra/policy.test.ts.
    const policy = { ALLOWED_SOURCES: expect.anything(), ALLOWED_DESTINATIONS: expect.anything() };
    for (const step of ["resolve", "stageBlob", "uploadBlob", "putManifests", "cleanup", "enumerate"]) {
      const streams = step === "stageBlob" || step === "uploadBlob";
      expect(env(step), step).toEqual({
        ...(streams ? { MALLOC_TRIM_THRESHOLD_: String(64 * MiB) } : {}),
        STAGING_BUCKET: stagingRef,
        STEP_BYTES: String(2240 * MiB),
        DIRECT_MAX_BYTES: String(32 * MiB),
        REGISTRY_SECRETS: expect.anything(),
        ECR_ROLE_ARN: "arn:aws:iam::210987654321:role/ferry-ecr",
        ...policy,
        PRIVATE_REGISTRIES: "[]",
      });
    }
    expect(env("summarize")).toEqual({ STAGING_BUCKET: stagingRef });
    expect(env("benchWorker")).toMatchObject({
      MALLOC_TRIM_THRESHOLD_: String(64 * MiB),
      PRIVATE_REGISTRIES: "[]",
    });
    expect(env("benchWorker").ALLOWED_SOURCES).toBeUndefined();
    expect(env("benchAggregate")).toEqual({ STAGING_BUCKET: stagingRef });
    expect(env("api")).toEqual({
      COPY_STATE_MACHINE_ARN: { Ref: logicalId(full.stack, full.stack.transfer.copyImage) },
      STAGING_BUCKET: stagingRef,
      ...policy,
    });
    expect(env("schedule")).toEqual({
      BULK_STATE_MACHINE_ARN: { Ref: logicalId(full.stack, full.stack.transfer.bulkMigrate) },
      ...policy,
    });
    expect(env("event")).toEqual({
      COPY_STATE_MACHINE_ARN: { Ref: logicalId(full.stack, full.stack.transfer.copyImage) },
      PROMOTION_DESTINATION: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/prod",
      PROMOTION_REPOSITORY_FILTER: "app|team-.*",
      PROMOTION_TAG_FILTER: "v.*|latest",
      ...policy,
    });
  });

  it("the blob-streaming functions and the ferry executable keep the same malloc setting", () => {
    // cli/ferry.js: #!/usr/bin/env -S NAME=VALUE … node --flags
    expect(ferryShebang().env).toEqual(STREAMING_ENVIRONMENT);
  });

  it("promotion filters become the whole-name regular expressions the event function applies", () => {
    const whole = (patterns: string[]) => new RegExp(`^(?:${wildcardsToRegex(patterns)})$`);
    expect(whole(["app", "team-*"]).test("team-a/web")).toBe(true);
    expect(whole(["app", "team-*"]).test("apps")).toBe(false);
    expect(whole(["app", "team-*"]).test("x/team-a")).toBe(false);
    expect(whole(["v1.2*"]).test("v1x2")).toBe(false);
    expect(whole(["v1.2*"]).test("v1.2.3")).toBe(true);
    const plain = synth({ promotion: { destination: "ghcr.io/acme", repositories: ["app"] } });
    const env = plain.json.Resources[logicalId(plain.stack, plain.stack.transfer.functions.event!.function)]
      ?.Properties?.Environment as { Variables: Record<string, unknown> };
    expect(env.Variables.PROMOTION_REPOSITORY_FILTER).toBe("app");
    expect(env.Variables.PROMOTION_TAG_FILTER).toBeUndefined(); // every tag
  });

  it("REGISTRY_SECRETS maps each registry host to its secret ARN", () => {
    const value = full.stack.resolve(full.stack.transfer.registrySecrets.environmentValue());
    const created = logicalId(full.stack, full.stack.transfer.registrySecrets.secrets.get("ghcr.io")!);
    expect(value).toEqual({
      "Fn::Join": [
        "",
        [
          '{"ghcr.io":"',
          { Ref: created },
          '","docker.io":"arn:aws:secretsmanager:us-east-1:123456789012:secret:ferry/dockerhub-AbCdEf","quay.io":"arn:aws:secretsmanager:us-east-1:123456789012:secret:ferry/quay"}',
        ],
      ],
    });
    // Created secrets hold a placeholder to replace; existing ones are only referenced.
    full.template.resourceCountIs("AWS::SecretsManager::Secret", 1);
    full.template.hasResourceProperties("AWS::SecretsManager::Secret", {
      GenerateSecretString: {
        SecretStringTemplate: '{"username":"REPLACE_ME"}',
        GenerateStringKey: "password",
      },
    });
  });
});
