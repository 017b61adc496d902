/**
 * ECR repositories created on demand (shared/aws/ecr-repositories.ts): the real AWS SDK client against
 * a stand-in speaking ECR's JSON protocol (test/helpers/ecr.ts, through AWS_ENDPOINT_URL_ECR, as the
 * deployed functions find it), and the functions' wiring from ECR_CREATE_REPOSITORIES. Only the AWS
 * control plane is stood in for.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { resetStepDeps, stepDeps } from "../../../functions/lib/runtime.ts";
import { handler as resolveHandler } from "../../../functions/resolve/handler.ts";
import { EcrRepositories, sdkEcrControl } from "../../../shared/aws/ecr-repositories.ts";
import { toWorkflowError } from "../../../shared/workflow/errors.ts";
import {
  checkRepositorySettings,
  type RepositorySettings,
} from "../../../shared/workflow/repository-settings.ts";
import { type EcrStandIn, ecrEnv, startEcrStandIn } from "../../helpers/ecr.ts";
import { context } from "./fakes.ts";

vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = "SILENT";
});

const HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const repo = (repository: string, registry = HOST) => ({ registry, repository });
const lifecyclePolicy = {
  rules: [
    {
      rulePriority: 1,
      selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: 7 },
      action: { type: "expire" },
    },
  ],
};

let ecr: EcrStandIn;
const saved = { ...process.env };
beforeAll(async () => {
  ecr = await startEcrStandIn(["prod/existing"]);
});
afterAll(async () => {
  await ecr.close();
});
beforeEach(() => {
  Object.assign(process.env, ecrEnv(ecr));
  ecr.requests.length = 0;
});
afterEach(() => {
  process.env = { ...saved };
  resetStepDeps();
});

const settings = (s: Record<string, unknown> = {}): RepositorySettings => checkRepositorySettings(s, "test");

describe("EcrRepositories over the SDK", () => {
  it("creates a missing repository once, with the settings and the lifecycle policy; leaves existing ones alone", async () => {
    const repos = new EcrRepositories({
      settings: settings({ tagMutability: "IMMUTABLE", scanOnPush: false, lifecyclePolicy }),
      control: sdkEcrControl(undefined),
    });
    // concurrent first writes of one run ask once
    const [a, b] = await Promise.all([
      repos.ensure(repo("prod/new-app")),
      repos.ensure(repo("prod/new-app")),
    ]);
    expect([a, b]).toEqual(["created", "created"]);
    expect(await repos.ensure(repo("prod/new-app"))).toBe("created");
    expect(await repos.ensure(repo("prod/existing"))).toBe("exists");
    expect(ecr.requests.map((r) => `${r.op} ${r.body.repositoryName ?? r.body.repositoryNames}`)).toEqual([
      "DescribeRepositories prod/new-app",
      "CreateRepository prod/new-app",
      "PutLifecyclePolicy prod/new-app",
      "DescribeRepositories prod/existing",
    ]);
    const create = ecr.requests.find((r) => r.op === "CreateRepository")!.body;
    expect(create).toMatchObject({
      registryId: "123456789012",
      repositoryName: "prod/new-app",
      imageTagMutability: "IMMUTABLE",
      imageScanningConfiguration: { scanOnPush: false },
      encryptionConfiguration: { encryptionType: "AES256" },
    });
    expect(JSON.parse(ecr.repositories.get("prod/new-app")!.lifecyclePolicyText!)).toEqual(lifecyclePolicy);
    expect(ecr.repositories.get("prod/existing")!.lifecyclePolicyText).toBeUndefined();
  });

  it("a repository created meanwhile by someone else is fine (RepositoryAlreadyExistsException), without our policy", async () => {
    const repos = new EcrRepositories({
      settings: settings({ lifecyclePolicy }),
      control: sdkEcrControl(undefined),
    });
    // Describe says missing, then another run creates it before our CreateRepository
    ecr.failNext("DescribeRepositories", "RepositoryNotFoundException");
    ecr.repositories.set("prod/raced", { repositoryName: "prod/raced" });
    expect(await repos.ensure(repo("prod/raced"))).toBe("exists");
    expect(ecr.requests.map((r) => r.op)).toEqual(["DescribeRepositories", "CreateRepository"]);
    expect(ecr.repositories.get("prod/raced")!.lifecyclePolicyText).toBeUndefined();
  });

  it("check() only describes; other registries are not ECR's business", async () => {
    const repos = new EcrRepositories({ settings: settings(), control: sdkEcrControl(undefined) });
    expect(await repos.check(repo("prod/absent"))).toBe("missing");
    expect(await repos.check(repo("prod/existing"))).toBe("exists");
    expect(await repos.check(repo("app", "ghcr.io"))).toBe("unmanaged");
    expect(await repos.ensure(repo("app", "ghcr.io"))).toBe("unmanaged");
    expect(ecr.requests.map((r) => r.op)).toEqual(["DescribeRepositories", "DescribeRepositories"]);
    expect(ecr.repositories.has("prod/absent")).toBe(false);
  });

  it("a host declared ECR (--registry-kind HOST=ecr) uses the configured region and the caller's own registry", async () => {
    const repos = new EcrRepositories({
      settings: settings(),
      control: sdkEcrControl(undefined),
      declaredEcr: (r) => r === "registry.internal:5000",
    });
    expect(await repos.ensure(repo("mirror/app", "registry.internal:5000"))).toBe("created");
    expect(ecr.requests.map((r) => r.op)).toEqual(["DescribeRepositories", "CreateRepository"]);
    expect(ecr.requests[1]!.body.registryId).toBeUndefined();
  });

  it("refusals name the call and the repository; throttling is retryable, access denied is not, and is asked again", async () => {
    const repos = new EcrRepositories({ settings: settings(), control: sdkEcrControl(undefined) });
    ecr.failNext("CreateRepository", "AccessDeniedException");
    const denied = await repos.ensure(repo("prod/denied")).catch((e: Error) => e);
    expect((denied as Error).name).toBe("RepositoryCreationError");
    expect((denied as Error).message).toMatch(
      new RegExp(`ECR CreateRepository for ${HOST}/prod/denied failed: AccessDeniedException`),
    );
    expect((denied as unknown as { retryable: boolean }).retryable).toBe(false);
    expect((denied as Error).message).not.toMatch(/stand-in-secret|AKIDSTANDIN/);
    // a failure is not remembered: the next write asks again, and succeeds
    expect(await repos.ensure(repo("prod/denied"))).toBe("created");

    // throttling (after the SDK's own retries) is temporary: the workflow retries the step
    const throttled = await new EcrRepositories({
      settings: settings(),
      control: {
        describeRepository: async () => {
          throw Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
        },
        createRepository: async () => true,
        putLifecyclePolicy: async () => {},
      },
    })
      .ensure(repo("prod/throttled"))
      .catch((e: Error) => e);
    expect((throttled as unknown as { retryable: boolean }).retryable).toBe(true);
    expect(toWorkflowError(throttled).name).toBe("RetryableTransferError");
    expect(toWorkflowError(denied).name).toBe("RepositoryCreationError");
  });

  it("with ECR_ROLE_ARN, repositories of the role's account are created as the role, others with the own role", async () => {
    const calls: string[] = [];
    const fake = (who: string) => ({
      describeRepository: async (t: { registryId?: string }, name: string) => {
        calls.push(`${who} describe ${t.registryId} ${name}`);
        return false;
      },
      createRepository: async (t: { registryId?: string }, name: string) => {
        calls.push(`${who} create ${t.registryId} ${name}`);
        return true;
      },
      putLifecyclePolicy: async () => {},
    });
    const repos = new EcrRepositories({
      settings: settings(),
      control: fake("own"),
      roleArn: "arn:aws:iam::210987654321:role/ferry-ecr",
      roleControl: fake("role"),
    });
    await repos.ensure(repo("prod/a", "210987654321.dkr.ecr.eu-west-1.amazonaws.com"));
    await repos.ensure(repo("prod/b"));
    expect(calls).toEqual([
      "role describe 210987654321 prod/a",
      "role create 210987654321 prod/a",
      "own describe 123456789012 prod/b",
      "own create 123456789012 prod/b",
    ]);
  });
});

describe("the functions' ECR_CREATE_REPOSITORIES", () => {
  const base = {
    STAGING_BUCKET: "ferry-test-staging",
    ALLOWED_SOURCES: JSON.stringify(["ghcr.io/team"]),
    ALLOWED_DESTINATIONS: JSON.stringify([`${HOST}/prod`]),
  };

  it("unset: the steps never create a repository; set: they do, with the checked settings", () => {
    expect(stepDeps({ ...base }).repositories).toBeUndefined();
    resetStepDeps();
    const deps = stepDeps({
      ...base,
      ECR_CREATE_REPOSITORIES: JSON.stringify({ tagMutability: "IMMUTABLE", lifecyclePolicy }),
    });
    expect((deps.repositories as EcrRepositories).settings).toEqual({
      tagMutability: "IMMUTABLE",
      scanOnPush: true,
      encryption: "AES256",
      lifecyclePolicy,
    });
  });

  it("a malformed value fails the step with a ConfigError naming the variable, before any request", async () => {
    for (const [value, message] of [
      ["{not json", /ECR_CREATE_REPOSITORIES must be a JSON object/],
      [
        '{"tagMutability":"sometimes"}',
        /ECR_CREATE_REPOSITORIES.tagMutability must be "MUTABLE" or "IMMUTABLE"/,
      ],
      ['{"encrypt":"KMS"}', /ECR_CREATE_REPOSITORIES has unknown key\(s\) encrypt/],
    ] as const) {
      Object.assign(process.env, base, { ECR_CREATE_REPOSITORIES: value });
      resetStepDeps();
      const err = await resolveHandler(
        {
          request: { source: "ghcr.io/team/app:v1", destination: `${HOST}/prod/app:v1` },
          executionName: "x",
        },
        context,
      ).catch((e: Error) => e);
      expect((err as Error).name).toBe("ConfigError");
      expect((err as Error).message).toMatch(message);
    }
    expect(ecr.requests).toEqual([]);
  });
});
