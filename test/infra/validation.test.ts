import * as fs from "node:fs";
import * as path from "node:path";
import { App, Duration, RemovalPolicy } from "aws-cdk-lib";
import { LogLevel } from "aws-cdk-lib/aws-stepfunctions";
import { describe, expect, it } from "vitest";
import { readFerryConfig, toTransferProps } from "../../infra/config.ts";
import { type ImageTransferProps, REPOSITORY_ROOT } from "../../infra/constructs/props.ts";
import { FerryStack } from "../../infra/stack.ts";
import { CDK_CONTEXT, synth, testApp } from "./helpers.ts";

const ecrDestination = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/prod";
const migration = {
  name: "m",
  schedule: "rate(1 day)",
  config: { source: "ghcr.io/a", destination: "quay.io/a" },
};

/** [props, the message expected]: every rejected combination, with a message naming the prop. */
const CASES: ReadonlyArray<readonly [string, ImageTransferProps, RegExp]> = [
  ["throughput", { stepThroughputMiBps: 0 }, /stepThroughputMiBps must be a positive number/],
  ["throughput NaN", { stepThroughputMiBps: Number.NaN }, /stepThroughputMiBps must be a positive number/],
  ["timeout", { blobStepTimeout: Duration.minutes(16) }, /blobStepTimeout must be between 1 and 15 minutes/],
  ["memory", { blobStepMemoryMiB: 64 }, /blobStepMemoryMiB must be an integer from 128 to 10240/],
  [
    "step budget",
    { stepThroughputMiBps: 0.1, blobStepTimeout: Duration.minutes(1) },
    /leaves a step budget under 64 MiB/,
  ],
  [
    "direct > step",
    { directMaxBytes: 4 * 1024 ** 3 },
    /directMaxBytes .* exceeds the step budget STEP_BYTES/,
  ],
  ["expiration", { stagingExpirationDays: 0 }, /stagingExpirationDays must be a whole number of days >= 1/],
  [
    "auto delete",
    { autoDeleteObjects: true },
    /autoDeleteObjects needs removalPolicy: RemovalPolicy.DESTROY/,
  ],
  ["log retention", { logRetention: 42 as never }, /logRetention must be one of RetentionDays/],
  [
    "registry host",
    { registries: { "https://ghcr.io": {} } },
    /registries: "https:\/\/ghcr.io" is not a registry host/,
  ],
  [
    "secret arn",
    { registries: { "ghcr.io": { secretArn: "arn:aws:s3:::bucket" } } },
    /registries\["ghcr.io"\].secretArn is not a Secrets Manager secret ARN/,
  ],
  [
    "key without secret",
    { registries: { "ghcr.io": { encryptionKeyArn: "arn:aws:kms:us-east-1:123456789012:key/abc" } } },
    /encryptionKeyArn is only meaningful with an existing secretArn/,
  ],
  [
    "ecr repo",
    { ecr: { pullRepositories: ["Bad Name"] } },
    /ecr.pullRepositories: "Bad Name" is neither an ECR repository name/,
  ],
  ["role arn", { ecrRoleArn: "arn:aws:iam::123:user/x" }, /ecrRoleArn is not an IAM role ARN/],
  [
    "ecr: unknown key",
    { ecr: { pushRepositories: ["prod/*"], createRepository: {} } as never },
    /ecr: unknown setting\(s\) createRepository \(known: pullRepositories, pushRepositories, createRepositories\)/,
  ],
  [
    "createRepositories without repositories to create",
    { ecr: { createRepositories: {} } },
    /ecr.createRepositories needs the repositories ferry may create: ecr.pushRepositories/,
  ],
  [
    "createRepositories: unknown key",
    { ecr: { pushRepositories: ["prod/*"], createRepositories: { scanOnPushh: true } as never } },
    /ecr.createRepositories has unknown key\(s\) scanOnPushh/,
  ],
  [
    "createRepositories: tag mutability",
    { ecr: { pushRepositories: ["prod/*"], createRepositories: { tagMutability: "mutable" as never } } },
    /ecr.createRepositories.tagMutability must be "MUTABLE" or "IMMUTABLE", got "mutable"/,
  ],
  [
    "createRepositories: scan on push",
    { ecr: { pushRepositories: ["prod/*"], createRepositories: { scanOnPush: "yes" as never } } },
    /ecr.createRepositories.scanOnPush must be true or false/,
  ],
  [
    "createRepositories: encryption",
    { ecr: { pushRepositories: ["prod/*"], createRepositories: { encryption: "SSE" as never } } },
    /ecr.createRepositories.encryption must be "AES256" or "KMS"/,
  ],
  [
    "createRepositories: key without KMS",
    {
      ecr: {
        pushRepositories: ["prod/*"],
        createRepositories: { kmsKey: "arn:aws:kms:us-east-1:123456789012:key/abc" },
      },
    },
    /ecr.createRepositories.kmsKey needs encryption: "KMS"/,
  ],
  [
    "createRepositories: key not an ARN",
    {
      ecr: { pushRepositories: ["prod/*"], createRepositories: { encryption: "KMS", kmsKey: "alias/ecr" } },
    },
    /ecr.createRepositories.kmsKey must be a KMS key ARN/,
  ],
  [
    "createRepositories: lifecycle policy without rules",
    { ecr: { pushRepositories: ["prod/*"], createRepositories: { lifecyclePolicy: { rules: [] } } } },
    /ecr.createRepositories.lifecyclePolicy must have a non-empty `rules` list/,
  ],
  [
    "createRepositories: lifecycle rule",
    {
      ecr: {
        pushRepositories: ["prod/*"],
        createRepositories: {
          lifecyclePolicy: {
            rules: [{ rulePriority: 1, selection: { tagStatus: "any", countType: "imageCountMoreThan" } }],
          },
        },
      },
    },
    /ecr.createRepositories.lifecyclePolicy rules\[0\].selection.countNumber must be a positive integer/,
  ],
  [
    "createRepositories: lifecycle policy too long for the environment",
    {
      ecr: {
        pushRepositories: ["prod/*"],
        createRepositories: {
          lifecyclePolicy: {
            rules: Array.from({ length: 20 }, (_, i) => ({
              rulePriority: i + 1,
              description: `keep the last ${i + 1} images of every tag prefix`,
              selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: i + 1 },
              action: { type: "expire" },
            })),
          },
        },
      },
    },
    /ecr.createRepositories takes \d+ characters as JSON; .* shorten the lifecycle policy/,
  ],
  [
    "promotion destination",
    { promotion: { destination: "", repositories: ["app"] } },
    /promotion.destination is required/,
  ],
  [
    "promotion destination with a tag",
    { promotion: { destination: "ghcr.io/acme/app:v1", repositories: ["app"] } },
    /promotion.destination must be a registry host and optional repository prefix/,
  ],
  [
    "promotion without repositories",
    { promotion: { destination: "ghcr.io/acme", repositories: [] } },
    /promotion.repositories must name at least one ECR repository/,
  ],
  [
    "promotion tag",
    { promotion: { destination: "ghcr.io/acme", repositories: ["app"], tags: ["no spaces"] } },
    /promotion.tags: "no spaces" is not an image tag/,
  ],
  [
    "promotion account",
    { promotion: { destination: "ghcr.io/acme", repositories: ["app"], sourceAccounts: ["12345"] } },
    /promotion.sourceAccounts: "12345" is not a 12-digit AWS account id/,
  ],
  [
    "promotion into ECR without push permission",
    { promotion: { destination: ecrDestination, repositories: ["app"] } },
    /is an ECR registry but ferry has no push permission there: set ecr.pushRepositories .* or ecrRoleArn/,
  ],
  [
    "migration name",
    { migrations: [{ ...migration, name: "has space" }] },
    /migrations: name "has space" must be/,
  ],
  ["migration duplicate", { migrations: [migration, migration] }, /migrations: the name "m" is used twice/],
  [
    "migration schedule",
    { migrations: [{ ...migration, schedule: "every day" }] },
    /migrations\["m"\].schedule "every day" is not an EventBridge Scheduler expression/,
  ],
  [
    "migration config",
    { migrations: [{ ...migration, config: { source: "ghcr.io/a" } }] },
    /migrations\["m"\].config.destination is required/,
  ],
  [
    "migration too big",
    {
      migrations: [{ ...migration, config: { ...migration.config, repositories: Array(2000).fill("repo") } }],
    },
    /EventBridge Scheduler allows 8192: keep long lists in S3/,
  ],
  [
    "allow-list pattern",
    { allowedSources: ["https://ghcr.io"] },
    /allowedSources: "https:\/\/ghcr.io": give host\[\/repository\], not a URL/,
  ],
  [
    "allow-list wildcard host",
    { allowedDestinations: ["*.com/x"] },
    /allowedDestinations: "\*.com\/x": "\*" may stand only below a fixed domain/,
  ],
  ["allow-list type", { allowedDestinations: "ghcr.io" as never }, /allowedDestinations must be a list/],
  [
    "derived allow-list",
    { migrations: [{ ...migration, config: { source: "index.docker.io/a", destination: "quay.io/a" } }] },
    /allowedSources \(derived from the configuration\): "index.docker.io\/a": write Docker Hub as docker.io/,
  ],
  [
    "migration source outside allowedSources",
    { allowedSources: ["ghcr.io/other"], migrations: [migration] },
    /migrations\["m"\].config.source "ghcr.io\/a" is outside allowedSources: no pattern allows any repository under it/,
  ],
  [
    "migration destination outside allowedDestinations",
    { allowedDestinations: ["ghcr.io"], migrations: [migration] },
    /migrations\["m"\].config.destination "quay.io\/a" is outside allowedDestinations/,
  ],
  [
    "promotion destination outside allowedDestinations",
    { allowedDestinations: ["quay.io"], promotion: { destination: "ghcr.io/acme", repositories: ["app"] } },
    /promotion.destination "ghcr.io\/acme" is outside allowedDestinations/,
  ],
  [
    "allow-lists too long for the environment",
    { allowedSources: Array.from({ length: 80 }, (_, i) => `registry.example.com/team-${i}/apps`) },
    /allowedSources and allowedDestinations take \d+ characters as JSON/,
  ],
  [
    "private registry",
    { privateRegistries: ["http://registry.internal"] },
    /privateRegistries: "http:\/\/registry.internal" is not a registry host/,
  ],
  [
    "log level",
    { stateMachineLogLevel: "VERBOSE" as never },
    /stateMachineLogLevel must be one of OFF, ALL, ERROR, FATAL/,
  ],
  [
    "execution data without logs",
    { stateMachineLogLevel: LogLevel.OFF, logExecutionData: true },
    /logExecutionData needs a stateMachineLogLevel other than OFF/,
  ],
  ["execution data type", { logExecutionData: "yes" as never }, /logExecutionData must be true or false/],
  ["name prefix", { namePrefix: "has space" }, /namePrefix "has space" must be 1-48 letters/],
  ["source root", { sourceRoot: "/nonexistent" }, /sourceRoot \/nonexistent has no package.json/],
];

describe("synth-time validation of ImageTransfer props", () => {
  for (const [name, props, message] of CASES) {
    it(`rejects: ${name}`, () => {
      expect(() => synth(props)).toThrow(message);
    });
  }

  it("every message starts with the construct's name", () => {
    expect(() => synth({ stepThroughputMiBps: -1 })).toThrow(/^ImageTransfer: /);
  });

  it("accepts the edges: 1-minute steps, DESTROY with autoDeleteObjects, promotion into ECR through a role", () => {
    expect(() =>
      synth({
        blobStepTimeout: Duration.minutes(1),
        stepThroughputMiBps: 10,
        removalPolicy: RemovalPolicy.DESTROY,
        autoDeleteObjects: true,
        ecrRoleArn: "arn:aws:iam::210987654321:role/ferry",
        promotion: { destination: ecrDestination, repositories: ["*"] },
        migrations: [{ ...migration, name: "a_b-c", schedule: "at(2030-01-31T02:00:00)", enabled: false }],
      }),
    ).not.toThrow();
  });

  it("a default name prefix that would be invalid asks for an explicit one", () => {
    const app = testApp();
    expect(() => new FerryStack(app, "A-very-long-stack-name-for-ferry-in-production")).toThrow(
      /defaults to `<stack name>-<construct id>`: set it explicitly/,
    );
  });
});

describe("JSON settings (cdk.json context / -c ferryConfig=file)", () => {
  it("map onto the props, converting durations, removal policy and imported resources", () => {
    const app = new App({
      context: {
        ...CDK_CONTEXT,
        "aws:cdk:bundling-stacks": [],
        ferry: JSON.stringify({
          blobStepTimeoutMinutes: 10,
          removalPolicy: "destroy",
          logRetentionDays: 14,
          alarmTopicArn: "arn:aws:sns:us-east-1:123456789012:ops",
          accessLogsBucketName: false,
          migrations: [migration],
          allowedSources: ["ghcr.io/a"],
          allowedDestinations: ["quay.io/a", "*.dkr.ecr.eu-west-1.amazonaws.com/prod/*"],
          privateRegistries: ["registry.internal:5000"],
          stateMachineLogLevel: "ALL",
          logExecutionData: true,
        }),
      },
    });
    const config = readFerryConfig(app);
    const stack = new FerryStack(app, "Probe", { config: {} });
    const props = toTransferProps(stack, config);
    expect(props.blobStepTimeout?.toMinutes()).toBe(10);
    expect(props.removalPolicy).toBe(RemovalPolicy.DESTROY);
    expect(props.logRetention).toBe(14);
    expect(props.accessLogsBucket).toBe(false);
    expect(props.alarmTopic?.topicArn).toBe("arn:aws:sns:us-east-1:123456789012:ops");
    expect(props.migrations).toEqual([migration]);
    expect(props.allowedSources).toEqual(["ghcr.io/a"]);
    expect(props.allowedDestinations).toEqual(["quay.io/a", "*.dkr.ecr.eu-west-1.amazonaws.com/prod/*"]);
    expect(props.privateRegistries).toEqual(["registry.internal:5000"]);
    expect(props.stateMachineLogLevel).toBe(LogLevel.ALL);
    expect(props.logExecutionData).toBe(true);
    // and they synthesise
    expect(new FerryStack(testApp(), "FromConfig", { transfer: props }).transfer.props).toMatchObject({
      allowedSources: ["ghcr.io/a"],
      privateRegistries: ["registry.internal:5000"],
      stateMachineLogLevel: "ALL",
    });
  });

  it("the example configuration of docs/aws.md synthesises (its lists cover its migration and promotion)", () => {
    const readme = fs.readFileSync(path.join(REPOSITORY_ROOT, "docs", "aws.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Bootstrap, configure, deploy"));
    const json = /```json\n([\s\S]*?)\n```/.exec(section)?.[1];
    expect(json).toBeDefined();
    const app = new App({ context: { ...CDK_CONTEXT, "aws:cdk:bundling-stacks": [], ferry: json } });
    const stack = new FerryStack(app, "Readme", { config: readFerryConfig(app) });
    expect(stack.transfer.props.allowedSources).toContain("docker.io/library");
    expect(stack.transfer.props.stateMachineLogLevel).toBe("ERROR");
  });

  it("unknown settings and bad values are errors", () => {
    const app = new App({ context: { ferry: { stepThroughput: 5 } } });
    expect(() => readFerryConfig(app)).toThrow(/unknown ferry setting\(s\): stepThroughput/);
    const bad = new App({ context: { ferry: "{not json" } });
    expect(() => readFerryConfig(bad)).toThrow(/context `ferry` is not valid JSON/);
    const both = new App({ context: { ferry: {}, ferryConfig: "x.json" } });
    expect(() => readFerryConfig(both)).toThrow(/either as context `ferry` or as a file `ferryConfig`/);
    expect(() => toTransferProps(new App(), { removalPolicy: "keep" as never })).toThrow(
      /removalPolicy must be "retain" or "destroy"/,
    );
    expect(() => toTransferProps(new App(), { stateMachineLogLevel: "all" as never })).toThrow(
      /stateMachineLogLevel must be one of OFF, ALL, ERROR, FATAL, got "all"/,
    );
    const typo = new App({ context: { ferry: { allowedSource: ["ghcr.io"] } } });
    expect(() => readFerryConfig(typo)).toThrow(
      /unknown ferry setting\(s\): allowedSource \(known: .*allowedSources/,
    );
    expect(() => new FerryStack(testApp(), "Both", { transfer: {}, config: {} })).toThrow(
      /either transfer .* or config/,
    );
  });
});
