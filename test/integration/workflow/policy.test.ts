/**
 * The deployment's policy inside the workflow, run locally against the real registries: an execution
 * started directly (no trigger in front) with a source or destination outside the allow-lists ends in Fail
 * with a ValidationError before any registry request; a registry client that allows public addresses only
 * (as every client in a Lambda function) ends the execution in Fail with AddressNotAllowedError, never
 * retried; a bulk migration leaves out the repositories the lists refuse.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import type { RequestEvent } from "../../../shared/registry/options.ts";
import { formatReference, type Reference } from "../../../shared/registry/reference.ts";
import { imageOf, tarLayer, writeSample } from "../../../shared/sample/image.ts";
import { putJson } from "../../../shared/staging/types.ts";
import { RegistrySink } from "../../../shared/transfer/registry-endpoints.ts";
import { openKey } from "../../../shared/workflow/keys.ts";
import { runBulkWorkflow, runCopyWorkflow } from "../../../shared/workflow/local-runner.ts";
import { transferPolicy } from "../../../shared/workflow/policy.ts";
import { cleanup } from "../../../shared/workflow/steps/cleanup.ts";
import type { BulkSummary } from "../../../shared/workflow/steps/summarize.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { fsDeps, pushSampleImage, recorder, removeTempDirs } from "./helpers.ts";

const regs = registries();
const anon = clientFor(regs.anon);
afterAll(async () => {
  removeTempDirs();
  await anon.close();
});

describe("copy workflow under a policy", () => {
  it("a refused destination fails the execution at Resolve, with no registry request and no retry", async () => {
    const src = { registry: regs.anon.host, repository: uniqueRepo("pol-src"), tag: "v1" };
    await pushSampleImage(anon, src, { bigSize: 64 * 1024, platforms: 1 });
    const requests: RequestEvent[] = [];
    const client = clientFor(regs.token, { observer: (e) => requests.push(e) });
    const rec = recorder();
    const destination = `${regs.token.host}/${uniqueRepo("pol-elsewhere")}:v1`;
    try {
      const r = await runCopyWorkflow(
        { source: formatReference(src), destination },
        {
          deps: {
            ...fsDeps(client),
            policy: transferPolicy({
              sources: [regs.anon.host],
              destinations: [`${regs.token.host}/mirror`],
            }),
          },
          retryIntervalMs: 1,
          ...rec.hooks,
        },
      );
      expect(r.status).toBe("FAILED");
      expect(r.error).toBe("ValidationError");
      expect(r.cause).toContain(`destination "${destination}" is not allowed`);
      expect(r.cause).toContain("ALLOWED_DESTINATIONS");
    } finally {
      await client.close();
    }
    expect(rec.calls.filter((c) => c.state === "Resolve")).toHaveLength(1);
    expect(rec.retried).toEqual([]);
    expect(requests).toEqual([]);
  });

  it("a public-only client (as in Lambda) refuses a loopback registry: AddressNotAllowedError, not retried", async () => {
    const src = { registry: regs.anon.host, repository: uniqueRepo("pol-net"), tag: "v1" };
    await pushSampleImage(anon, src, { bigSize: 64 * 1024, platforms: 1 });
    const client = clientFor(regs.anon, { network: { publicOnly: true } });
    const rec = recorder();
    try {
      const r = await runCopyWorkflow(
        { source: formatReference(src), destination: `${regs.anon.host}/${uniqueRepo("pol-netdst")}:v1` },
        { deps: fsDeps(client), retryIntervalMs: 1, ...rec.hooks },
      );
      expect(r.status).toBe("FAILED");
      expect(r.error).toBe("AddressNotAllowedError");
      expect(r.cause).toMatch(/refusing to connect to 127\.0\.0\.1: a loopback address/);
    } finally {
      await client.close();
    }
    expect(rec.calls.filter((c) => c.state === "Resolve")).toHaveLength(1);
    expect(rec.retried).toEqual([]);
    expect(rec.calls.map((c) => c.state)).toEqual(["Resolve", "CleanupAfterFailure"]);
  });

  it("the same client with the registry declared private copies", async () => {
    const src = { registry: regs.anon.host, repository: uniqueRepo("pol-priv"), tag: "v1" };
    const { index } = await pushSampleImage(anon, src, { bigSize: 256 * 1024, platforms: 1 });
    const client = clientFor(regs.anon, {
      network: { publicOnly: true, allowPrivateHosts: [regs.anon.host] },
    });
    try {
      const r = await runCopyWorkflow(
        { source: formatReference(src), destination: `${regs.anon.host}/${uniqueRepo("pol-privdst")}:v1` },
        {
          deps: {
            ...fsDeps(client),
            policy: transferPolicy({ sources: [regs.anon.host], destinations: [regs.anon.host] }),
          },
          retryIntervalMs: 1,
        },
      );
      expect(r.cause).toBeUndefined();
      expect(r.status).toBe("SUCCEEDED");
      expect(r.output).toMatchObject({ digest: index.digest });
    } finally {
      await client.close();
    }
  });
});

describe("bulk migration under a policy", () => {
  async function pushTag(ref: Omit<Reference, "tag">, tag: string) {
    const layer = await tarLayer([{ name: "f", content: `${ref.repository}\n` }]);
    await writeSample(
      new RegistrySink(anon, ref),
      [imageOf([layer], { os: "linux", architecture: "amd64" })],
      undefined,
      tag,
    );
  }

  it("leaves out the repositories the lists refuse, never listing their tags, and reports them", async () => {
    const ns = `bpol${process.pid}${Date.now().toString(36)}`;
    await pushTag({ registry: regs.anon.host, repository: `${ns}/team/app` }, "1.0");
    await pushTag({ registry: regs.anon.host, repository: `${ns}/secret/keys` }, "1.0");
    const requests: RequestEvent[] = [];
    const client = clientFor(regs.token, { observer: (e) => requests.push(e) });
    const deps = {
      ...fsDeps(client),
      policy: transferPolicy({
        sources: [`${regs.anon.host}/${ns}/team`],
        destinations: [`${regs.token.host}/m-${ns}`],
      }),
    };
    try {
      const r = await runBulkWorkflow(
        { source: `${regs.anon.host}/${ns}`, destination: `${regs.token.host}/m-${ns}` },
        { deps, retryIntervalMs: 1 },
      );
      expect(r.cause).toBeUndefined();
      expect(r.status).toBe("SUCCEEDED");
      expect(r.output).toMatchObject({ images: 1, succeeded: 1, refused: 1 } satisfies Partial<BulkSummary>);
      const summary = JSON.parse(
        (await deps.staging.getObject(`bulk/${r.executionName}/summary.json`))!.toString(),
      ) as { refusedRepositories: { source: string; reason: string }[] };
      expect(summary.refusedRepositories).toEqual([
        {
          source: `${regs.anon.host}/${ns}/secret/keys`,
          destination: `${regs.token.host}/m-${ns}/secret/keys`,
          reason: "not allowed by ALLOWED_SOURCES",
        },
      ]);
    } finally {
      await client.close();
    }
    // the refused repository's tags were never listed, nothing of it was read
    const touched = requests.filter((e) => e.url.includes(`${ns}/secret`));
    expect(requests.length).toBeGreaterThan(0);
    expect(touched).toEqual([]);
  });
});

describe("cleanup under a policy", () => {
  it("cancels recorded upload sessions only at allowed destinations; staging is cleaned regardless", async () => {
    let requests = 0;
    const server = createServer((req, res) => {
      requests++;
      req.resume();
      res.writeHead(202).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = clientFor({ ...regs.anon, host, url: `http://${host}` });
    const deps = {
      ...fsDeps(client),
      policy: transferPolicy({ sources: ["ghcr.io"], destinations: ["ghcr.io/team"] }),
    };
    const prefix = "transfers/t-forged/";
    const digest = `sha256:${"e".repeat(64)}`;
    // A forged state names a transfer whose open record points at a session elsewhere.
    await putJson(deps.staging, openKey(prefix, digest), {
      digest,
      upload: { repository: `${host}/victim`, location: `http://${host}/v2/victim/blobs/uploads/x?_state=s` },
    });
    try {
      const out = await cleanup(
        {
          action: "failed",
          state: {
            job: {
              id: "t-forged",
              prefix,
              source: "ghcr.io/team/app",
              destination: `${host}/victim`,
              image: "forged",
              stepBytes: 1048576,
              directMaxBytes: 1024,
              concurrency: 1,
            },
            error: { Error: "ValidationError", Cause: "x" },
          },
        },
        deps,
      );
      expect(out).toMatchObject({ Error: "ValidationError" });
    } finally {
      await client.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
    expect(requests).toBe(0);
    expect(await deps.staging.list(`${prefix}open/`)).toEqual([]);
  });
});
