/**
 * The code that runs on Lambda, run by the tests: the copy-image definition with every Task state bound to
 * its handler bundled as the CDK app bundles it, with the environment the synthesised stack gives it, each
 * invocation in a child Node process (test/helpers/lambda.ts) — staging in s3rver through the SDK's
 * AWS_ENDPOINT_URL_S3, the destination's credentials from a Secrets Manager stand-in through
 * REGISTRY_SECRETS, the allow-lists naming exactly the test's source and destination, and the loopback
 * registries declared in PRIVATE_REGISTRIES (the functions refuse them otherwise).
 *
 * The functions keep S3's 5 MiB minimum part size, as deployed: the big layer is 11 MiB, staged in 5 MiB
 * parts, a part per step (the request's options.stepBytes), so the loops run over several invocations.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { formatReference } from "../../../shared/registry/reference.ts";
import { S3StagingStore } from "../../../shared/staging/s3.ts";
import { runCopyWorkflow } from "../../../shared/workflow/local-runner.ts";
import { startFaultProxy } from "../../helpers/fault-proxy.ts";
import { expectSameImage } from "../../helpers/image-check.ts";
import { deployLocally, type LambdaPool, type LocalDeployment } from "../../helpers/lambda.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { type RunningS3, startS3 } from "../../helpers/s3.ts";
import { type SecretsManagerStandIn, startSecretsManager } from "../../helpers/secrets-manager.ts";
import { MiB, pushSampleImage, recorder } from "./helpers.ts";

const regs = registries();
const anon = clientFor(regs.anon);
const basic = clientFor(regs.basic);
const SECRET = "arn:aws:secretsmanager:us-east-1:000000000000:secret:ferry/basic-AbCdEf";
/** The big layer: three 5 MiB parts (the last one 1 MiB). */
const BIG = 11 * MiB;
/** A request's budgets: one 5 MiB part per stage step, 1 MiB PATCHes; small blobs go direct. */
const OPTIONS = { stepBytes: 5 * MiB, chunkBytes: 1 * MiB, directMaxBytes: 1 * MiB };

let s3: RunningS3;
let secrets: SecretsManagerStandIn;
let deployment: LocalDeployment;
const pools: LambdaPool[] = [];

beforeAll(async () => {
  s3 = await startS3();
  secrets = await startSecretsManager({
    [SECRET]: JSON.stringify({ username: regs.basic.username, password: regs.basic.password }),
  });
  // Lists the tests replace with their own source and destination (start(): environment).
  deployment = await deployLocally({
    transfer: {
      registries: { [regs.basic.host]: { secretArn: SECRET } },
      allowedSources: [`${regs.anon.host}/none`],
      allowedDestinations: [`${regs.basic.host}/none`],
      privateRegistries: [regs.basic.host],
    },
    bucket: s3.bucket,
  });
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  deployment?.dispose();
  await Promise.all([anon.close(), basic.close(), s3?.stop(), secrets?.close()]);
});

/** Containers whose allow-lists name exactly `source` and `destination` (host/repository). */
function lambdas(source: string, destination: string, privateRegistries: string[]): LambdaPool {
  const pool = deployment.start({
    environment: {
      ALLOWED_SOURCES: JSON.stringify([source]),
      ALLOWED_DESTINATIONS: JSON.stringify([destination]),
      PRIVATE_REGISTRIES: JSON.stringify(privateRegistries),
    },
    credentials: s3.credentials,
    endpoints: { s3: s3.endpoint, secretsManager: secrets.url },
  });
  pools.push(pool);
  return pool;
}

async function sample(prefix: string) {
  const src = { registry: regs.anon.host, repository: uniqueRepo(prefix), tag: "v1" };
  const { index, images } = await pushSampleImage(anon, src, { bigSize: BIG, platforms: 1 });
  return { src, index, big: images[0]!.layers[0]!.desc };
}

const rangeStart = (h: unknown) => Number(/bytes=(\d+)-/.exec(String(h ?? ""))?.[1] ?? -1);

describe("copy-image with the bundled Lambda handlers", () => {
  it("copies an image byte for byte: every Task in a child process, staging in S3, credentials from Secrets Manager", async () => {
    const { src } = await sample("lambda-src");
    const dst = { registry: regs.basic.host, repository: uniqueRepo("lambda-dst"), tag: "v1" };
    const pool = lambdas(`${src.registry}/${src.repository}`, `${dst.registry}/${dst.repository}`, [
      regs.anon.host,
      regs.basic.host,
    ]);
    const rec = recorder();
    const r = await runCopyWorkflow(
      { source: formatReference(src), destination: formatReference(dst), options: OPTIONS },
      { invoke: pool.invoke, retryIntervalMs: 1, ...rec.hooks },
    );
    expect(r.cause).toBeUndefined();
    expect(r.status).toBe("SUCCEEDED");
    expect(await expectSameImage({ client: anon, ref: src }, { client: basic, ref: dst })).toEqual({
      manifests: 1,
      blobs: 3,
    });

    // Every Task attempt was one invocation of its function, in a child process.
    expect(pool.invocations).toHaveLength(rec.calls.length);
    expect(new Set(pool.invocations.map((i) => i.function))).toEqual(
      new Set(["resolve", "stageBlob", "uploadBlob", "putManifests", "cleanup"]),
    );
    for (const i of pool.invocations) {
      expect(i.pid).toBeGreaterThan(0);
      expect(i.pid).not.toBe(process.pid);
      expect(i.error).toBeUndefined();
    }
    // The big layer: three stage steps of one 5 MiB part each, one after another in one container (the
    // first a cold start, the others warm: the container's cached clients and credentials reused).
    const stages = pool.invocations.filter((i) => i.function === "stageBlob");
    expect(rec.inputs("StageBlob").map((i) => (i.stage as { offset: number }).offset)).toEqual([
      0,
      5 * MiB,
      10 * MiB,
    ]);
    expect(stages.map((i) => i.cold)).toEqual([true, false, false]);
    expect(new Set(stages.map((i) => i.pid)).size).toBe(1);
    // REGISTRY_SECRETS: the destination's credentials came from Secrets Manager (the stand-in).
    expect(secrets.requests).toContainEqual({ target: "secretsmanager.GetSecretValue", secretId: SECRET });
    // STAGING_BUCKET through AWS_ENDPOINT_URL_S3: the transfer's records are in s3rver, staged data gone.
    const staging = new S3StagingStore({
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      credentials: s3.credentials,
    });
    const left = await staging.list(`transfers/${r.executionName}/`);
    expect(left).toContain(`transfers/${r.executionName}/report.json`);
    expect(left.filter((k) => /\/(data|parts|open)\//.test(k))).toEqual([]);
  });

  it("faults mid-stage: a dropped connection resumed by the function, a failed step retried by the definition from its recorded offset", async () => {
    const { src, big } = await sample("lambda-fault");
    // The second stage step's read (bytes 5-10 MiB) is cut after 1 MiB, once. The third step's reads
    // (from 10 MiB) answer 503 — with Retry-After: 0, so the function's client gives up at once — until
    // a StageBlob invocation has failed; then they go through.
    let dropped = false;
    let stepFailed = false;
    const proxy = await startFaultProxy(regs.anon.url, (q) => {
      if (q.method !== "GET" || !q.url.includes(`/blobs/${big.digest}`)) return undefined;
      const from = rangeStart(q.headers.range);
      if (from === 5 * MiB && !dropped) {
        dropped = true;
        return { kind: "reset-response", after: 1 * MiB };
      }
      if (from === 10 * MiB && !stepFailed)
        return {
          kind: "status",
          status: 503,
          headers: { "retry-after": "0" },
          body: '{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}',
        };
      return undefined;
    });
    try {
      const source = { ...src, registry: proxy.host };
      const dst = { registry: regs.basic.host, repository: uniqueRepo("lambda-fault-dst"), tag: "v1" };
      const pool = lambdas(`${proxy.host}/${src.repository}`, `${dst.registry}/${dst.repository}`, [
        proxy.host,
        regs.basic.host,
      ]);
      const rec = recorder();
      const r = await runCopyWorkflow(
        { source: formatReference(source), destination: formatReference(dst), options: OPTIONS },
        {
          invoke: pool.invoke,
          retryIntervalMs: 1,
          onEvent: rec.hooks.onEvent,
          wrapStep: (state, step) =>
            rec.hooks.wrapStep(state, async (input) => {
              try {
                return await step(input);
              } catch (e) {
                if (state === "StageBlob") stepFailed = true;
                throw e;
              }
            }),
        },
      );
      expect(r.cause).toBeUndefined();
      expect(r.status).toBe("SUCCEEDED");
      expect(await expectSameImage({ client: anon, ref: src }, { client: basic, ref: dst })).toEqual({
        manifests: 1,
        blobs: 3,
      });

      const reads = proxy.requests
        .filter((q) => q.method === "GET" && q.url.includes(`/blobs/${big.digest}`))
        .map((q) => rangeStart(q.headers.range));
      // 1. The cut read: the function's client asked for the rest, from where the bytes stopped, within
      //    the same invocation (the step did not fail).
      const cut = reads.indexOf(5 * MiB);
      expect(reads[cut + 1]).toBeGreaterThan(5 * MiB);
      expect(reads[cut + 1]).toBeLessThanOrEqual(6 * MiB);
      // 2. The 503s: the step failed in its container with the error name the definition retries
      //    (RetryableTransferError, kept through the minified bundle), and the retry — the same state,
      //    in the warm container — read from the same offset and went on.
      const failed = pool.invocations.filter((i) => i.error);
      expect(failed).toEqual([
        expect.objectContaining({ function: "stageBlob", error: "RetryableTransferError" }),
      ]);
      expect(rec.retried).toEqual(["StageBlob"]);
      const stageInputs = rec.inputs("StageBlob").map((i) => i.stage as { offset: number });
      expect(stageInputs.map((s) => s.offset)).toEqual([0, 5 * MiB, 10 * MiB, 10 * MiB]);
      expect(stageInputs[3]).toEqual(stageInputs[2]);
      const stages = pool.invocations.filter((i) => i.function === "stageBlob");
      expect(new Set(stages.map((i) => i.pid)).size).toBe(1);
      expect(reads.filter((from) => from === 10 * MiB).length).toBeGreaterThan(1);
      expect(reads.at(-1)).toBe(10 * MiB);
      // The failure was logged once by the function's middleware, naming the error; no log line holds
      // the destination's password.
      const errorLines = pool.logs.filter((l) => l.includes('"errorName":"RetryableTransferError"'));
      expect(errorLines).toHaveLength(1);
      expect(errorLines[0]).toMatch(/^stageBlob: /);
      expect(pool.logs.filter((l) => l.includes(regs.basic.password!))).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it("the deployed policy holds: a source outside ALLOWED_SOURCES, or a loopback registry not in PRIVATE_REGISTRIES, is refused before any request", async () => {
    const proxy = await startFaultProxy(regs.anon.url, () => undefined);
    try {
      const repo = uniqueRepo("lambda-policy");
      const request = {
        source: `${proxy.host}/${repo}:v1`,
        destination: `${regs.basic.host}/${repo}:v1`,
      };
      const notListed = await runCopyWorkflow(request, {
        invoke: lambdas(`${proxy.host}/other`, `${regs.basic.host}/${repo}`, [proxy.host, regs.basic.host])
          .invoke,
        retryIntervalMs: 1,
      });
      expect(notListed.status).toBe("FAILED");
      expect(notListed.error).toBe("ValidationError");
      expect(notListed.cause).toMatch(/matches no pattern of ALLOWED_SOURCES/);

      const notPrivate = await runCopyWorkflow(request, {
        invoke: lambdas(`${proxy.host}/${repo}`, `${regs.basic.host}/${repo}`, [regs.basic.host]).invoke,
        retryIntervalMs: 1,
      });
      expect(notPrivate.status).toBe("FAILED");
      expect(notPrivate.error).toBe("AddressNotAllowedError");
      expect(notPrivate.cause).toContain(`refusing to connect to ${proxy.host.split(":")[0]}`);
      expect(proxy.requests).toEqual([]);
    } finally {
      await proxy.close();
    }
  });
});
