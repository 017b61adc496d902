/**
 * ECR repositories on demand, in the workflow (promotion: copy-image; bulk migration: bulk-migrate), run
 * locally with the real step code against a real registry behind an ECR-like proxy that refuses pushes to
 * repositories its control plane does not know (test/helpers/ecr.ts); the control plane (Describe/Create
 * Repository) is the stand-in, reached through the real AWS SDK.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EcrRepositories } from "../../../shared/aws/ecr-repositories.ts";
import type { RegistryClient } from "../../../shared/registry/client.ts";
import { FsStagingStore } from "../../../shared/staging/fs.ts";
import type { StepDeps } from "../../../shared/workflow/deps.ts";
import { runBulkWorkflow, runCopyWorkflow } from "../../../shared/workflow/local-runner.ts";
import { ALLOW_ANY } from "../../../shared/workflow/policy.ts";
import { checkRepositorySettings } from "../../../shared/workflow/repository-settings.ts";
import type { BulkSummary } from "../../../shared/workflow/steps/summarize.ts";
import { type EcrStandIn, ecrEnv, startEcrStandIn } from "../../helpers/ecr.ts";
import { type FaultProxy, startFaultProxy } from "../../helpers/fault-proxy.ts";
import { clientFor, registries } from "../../helpers/registry-client.ts";
import { pushSampleImage, removeTempDirs, tempDir } from "./helpers.ts";

const regs = registries();
let ecr: EcrStandIn;
let proxy: FaultProxy;
let client: RegistryClient;
const saved = { ...process.env };
beforeAll(async () => {
  ecr = await startEcrStandIn();
  proxy = await startFaultProxy(regs.anon.url, ecr.registryRule);
  // the proxy is "ECR" for the client: ECR's upload rules, and a registry whose repositories ferry creates
  client = clientFor(regs.anon, { registryKinds: { [proxy.host]: "ecr" } });
  Object.assign(process.env, ecrEnv(ecr));
});
afterAll(async () => {
  process.env = { ...saved };
  await client.close();
  await proxy.close();
  await ecr.close();
  removeTempDirs();
});
afterEach(() => {
  ecr.events.length = 0;
  ecr.requests.length = 0;
});

function deps(create: boolean): StepDeps {
  return {
    staging: new FsStagingStore(tempDir("ferry-staging-")),
    client,
    policy: ALLOW_ANY,
    ...(create
      ? {
          repositories: new EcrRepositories({
            settings: checkRepositorySettings({ scanOnPush: true }, "test"),
            declaredEcr: (r) => r === proxy.host,
          }),
        }
      : {}),
  };
}

/** Index of the first event equal to `e` (-1 when absent). */
const at = (e: string) => ecr.events.indexOf(e);

describe("ECR repositories created on demand by the workflow", () => {
  it("promotion (copy-image): refused without creation; with it, the repository is created before the first push, once", async () => {
    const ns = `ecrp${process.pid}${Date.now().toString(36)}`;
    const src = { registry: regs.anon.host, repository: `${ns}/app`, tag: "v1" };
    const { index } = await pushSampleImage(client, src, { bigSize: 64 * 1024, platforms: 1 });
    const request = {
      source: `${regs.anon.host}/${ns}/app:v1`,
      destination: `${proxy.host}/prod-${ns}/app:v1`,
    };

    const refused = await runCopyWorkflow(request, { deps: deps(false), retryIntervalMs: 1 });
    expect(refused.status).toBe("FAILED");
    expect(refused.cause).toMatch(/NAME_UNKNOWN/);
    expect(ecr.requests).toEqual([]);

    ecr.events.length = 0;
    const r = await runCopyWorkflow(request, { deps: deps(true), retryIntervalMs: 1 });
    expect(r.cause).toBeUndefined();
    expect(r.status).toBe("SUCCEEDED");
    expect((r.output as { digest: string }).digest).toBe(index.digest);
    const name = `prod-${ns}/app`;
    expect(ecr.requests.map((q) => q.op)).toEqual(["DescribeRepositories", "CreateRepository"]);
    expect(ecr.repositories.get(name)?.imageScanningConfiguration).toEqual({ scanOnPush: true });
    const firstPush = ecr.events.findIndex((e) => e.startsWith(`registry:`) && e.endsWith(` ${name}`));
    expect(firstPush).toBeGreaterThan(at(`ecr:CreateRepository ${name}`));
    expect(at(`ecr:CreateRepository ${name}`)).toBeGreaterThanOrEqual(0);

    // the same promotion again is up to date: no question to ECR at all
    ecr.requests.length = 0;
    const again = await runCopyWorkflow(request, { deps: deps(true), retryIntervalMs: 1 });
    expect(again.status).toBe("SUCCEEDED");
    expect((again.output as { upToDate: boolean }).upToDate).toBe(true);
    expect(ecr.requests).toEqual([]);
  });

  it("bulk migration: each missing repository created once before its first push; existing ones left alone", async () => {
    const ns = `ecrb${process.pid}${Date.now().toString(36)}`;
    const push = (repo: string, tag: string) =>
      pushSampleImage(
        client,
        { registry: regs.anon.host, repository: `${ns}/${repo}`, tag },
        { bigSize: 32 * 1024, platforms: 1, seed: `${ns}-${repo}-${tag}` },
      );
    await push("a", "1.0.0");
    await push("a", "1.1.0");
    await push("b", "1.0.0");
    await push("c", "1.0.0");
    const dst = `mirror-${ns}`;
    ecr.repositories.set(`${dst}/c`, { repositoryName: `${dst}/c` });
    const refusedBefore = proxy.injected;

    const r = await runBulkWorkflow(
      { source: `${regs.anon.host}/${ns}`, destination: `${proxy.host}/${dst}`, concurrency: 2 },
      { deps: deps(true), retryIntervalMs: 1 },
    );
    expect(r.cause).toBeUndefined();
    expect(r.status).toBe("SUCCEEDED");
    expect(r.output as BulkSummary).toMatchObject({ images: 4, succeeded: 4, failedImages: 0 });
    const creates = ecr.requests.filter((q) => q.op === "CreateRepository").map((q) => q.body.repositoryName);
    expect(creates.sort()).toEqual([`${dst}/a`, `${dst}/b`]);
    for (const name of [`${dst}/a`, `${dst}/b`]) {
      const created = at(`ecr:CreateRepository ${name}`);
      expect(created, name).toBeGreaterThanOrEqual(0);
      const pushes = ecr.events.filter((e) => e.startsWith("registry:") && e.endsWith(` ${name}`));
      expect(pushes.length, name).toBeGreaterThan(0);
      expect(
        ecr.events.findIndex((e) => e.startsWith("registry:") && e.endsWith(` ${name}`)),
      ).toBeGreaterThan(created);
    }
    // every push was accepted: none came before its repository
    expect(proxy.injected).toBe(refusedBefore);
  });
});
