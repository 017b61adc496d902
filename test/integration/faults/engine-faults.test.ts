/**
 * Fault injection against the real registry: each scenario copies an image through a fault proxy
 * with the engine and must end byte-identical or with a clear error — never with a manifest over
 * missing blobs, never with a corrupt blob committed. A table of outcomes and bytes re-sent versus the
 * minimum is printed at the end (and written to test/.results/faults.json).
 */

import { mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { StaticCredentials } from "../../../shared/registry/auth/credentials.ts";
import type { RegistryClient } from "../../../shared/registry/client.ts";
import { RegistryClient as Client } from "../../../shared/registry/client.ts";
import type { ClientOptions } from "../../../shared/registry/options.ts";
import { formatReference } from "../../../shared/registry/reference.ts";
import {
  imageOf,
  type SampleImage,
  seededBlob,
  tarLayer,
  writeSample,
} from "../../../shared/sample/image.ts";
import { FsStagingStore } from "../../../shared/staging/fs.ts";
import { TransferEngine } from "../../../shared/transfer/engine.ts";
import { RegistrySink, RegistrySource } from "../../../shared/transfer/registry-endpoints.ts";
import { runCopyWorkflow } from "../../../shared/workflow/local-runner.ts";
import type { RegistryInfo } from "../../helpers/context.ts";
import { type Fault, type ProxiedRequest, startFaultProxy } from "../../helpers/fault-proxy.ts";
import { clientFor, readAll, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { removeTmpDir, tmpDir } from "../../helpers/tmp.ts";

const regs = registries();
const BIG = 700_000;

interface Outcome {
  scenario: string;
  mode: "engine" | "workflow";
  /** Bytes that crossed the faulty side (read from the source, or sent to the destination). */
  throughProxy: number;
  outcome: "survived" | "failed clearly" | "WRONG";
  minimum: number;
  faults: number;
  error?: string;
}
const outcomes: Outcome[] = [];

async function makeSource(
  reg: RegistryInfo,
): Promise<{ img: SampleImage; repo: { registry: string; repository: string } }> {
  const big = await seededBlob(`fault-${Math.random()}`, BIG);
  const small = await tarLayer([{ name: "etc/hello", content: `hi ${Math.random()}` }]);
  const img = imageOf([{ blob: big, diffId: big.desc.digest }, small], {
    os: "linux",
    architecture: "amd64",
  });
  const repo = { registry: reg.host, repository: uniqueRepo("faultsrc") };
  const c = clientFor(reg);
  await writeSample(new RegistrySink(c, repo), [img], undefined, "v1");
  await c.close();
  return { img, repo };
}

const FAST: ClientOptions = {
  retryBaseMs: 10,
  retryMaxMs: 1500,
  headersTimeoutMs: 1500,
  bodyTimeoutMs: 1500,
};
const CHUNKED: ClientOptions = { ...FAST, monolithicMax: 0, chunkSize: 256 * 1024 };

interface Scenario {
  name: string;
  /** Which side the proxy stands in front of. */
  side: "source" | "destination";
  fault: (r: ProxiedRequest, img: SampleImage) => Fault;
  expect: "survive" | "fail";
  message?: RegExp;
  client?: ClientOptions;
}

/** A fault injected on the first request matching `when`, and never again (until `reset()`). */
function once(
  when: (r: ProxiedRequest, img: SampleImage) => boolean,
  fault: Fault,
): ((r: ProxiedRequest, img: SampleImage) => Fault) & { reset(): void } {
  let done = false;
  const f = (r: ProxiedRequest, img: SampleImage) => {
    if (done || !when(r, img)) return undefined;
    done = true;
    return fault;
  };
  return Object.assign(f, { reset: () => (done = false) });
}

const isBlob = (r: ProxiedRequest, d: string) => r.method === "GET" && r.url.includes(`/blobs/${d}`);
const big = (img: SampleImage) => img.layers[0]!.desc.digest;

const scenarios: Scenario[] = [
  {
    name: "connection reset in the middle of a blob download",
    side: "source",
    expect: "survive",
    fault: once((r, img) => isBlob(r, big(img)), { kind: "reset-response", after: 100_000 }),
  },
  {
    name: "truncated blob body with a correct Content-Length",
    side: "source",
    expect: "survive",
    fault: once((r, img) => isBlob(r, big(img)), { kind: "reset-response", after: -1000 }),
  },
  {
    name: "connection reset in the middle of a PATCH chunk",
    side: "destination",
    expect: "survive",
    client: CHUNKED,
    fault: once((r) => r.method === "PATCH" && Number(r.headers["content-length"]) > 200_000, {
      kind: "reset-request",
      after: 100_000,
    }),
  },
  {
    name: "answer to a manifest PUT lost",
    side: "destination",
    expect: "survive",
    fault: (r) =>
      r.method === "PUT" && r.url.includes("/manifests/") && r.nth <= 4 && !r.headers["x-seen"]
        ? { kind: "drop-response" }
        : undefined,
  },
  {
    name: "503 burst on blob GETs",
    side: "source",
    expect: "survive",
    fault: (r) =>
      r.method === "GET" && r.url.includes("/blobs/") && r.nth <= 4
        ? { kind: "status", status: 503 }
        : undefined,
  },
  {
    name: "500 and 502 on upload POSTs",
    side: "destination",
    expect: "survive",
    fault: (r) =>
      r.method === "POST" && r.nth <= 2 ? { kind: "status", status: r.nth === 1 ? 500 : 502 } : undefined,
  },
  {
    name: "429 with Retry-After",
    side: "destination",
    expect: "survive",
    fault: (r) =>
      r.method === "HEAD" && r.nth === 1
        ? { kind: "status", status: 429, headers: { "retry-after": "1" } }
        : undefined,
  },
  {
    name: "429 without Retry-After",
    side: "source",
    expect: "survive",
    fault: (r) =>
      r.method === "GET" && r.url.includes("/manifests/") && r.nth === 1
        ? { kind: "status", status: 429 }
        : undefined,
  },
  {
    name: "response stalled past the client timeout",
    side: "source",
    expect: "survive",
    fault: (r) =>
      r.method === "GET" && r.url.includes("/manifests/") && r.nth === 1
        ? { kind: "stall", ms: 2500 }
        : undefined,
  },
  {
    name: "blob bytes that do not match the digest",
    side: "source",
    expect: "fail",
    message: /does not match|DIGEST/i,
    fault: (r, img) => (isBlob(r, big(img)) ? { kind: "corrupt", at: 1234 } : undefined),
  },
  {
    name: "stale Range header after the first chunk (ECR)",
    side: "destination",
    expect: "survive",
    client: CHUNKED,
    fault: (r) =>
      r.method === "PATCH"
        ? { kind: "rewrite-response", headers: (h) => ({ ...h, range: "0-262143" }) }
        : undefined,
  },
  {
    name: "416 on the first PATCH of a session",
    side: "destination",
    expect: "survive",
    client: CHUNKED,
    fault: (r) =>
      r.method === "PATCH" && r.nth === 1
        ? { kind: "status", status: 416, body: '{"errors":[{"code":"BLOB_UPLOAD_INVALID"}]}' }
        : undefined,
  },
  {
    name: "416 on a later PATCH chunk",
    side: "destination",
    expect: "survive",
    client: CHUNKED,
    fault: once(
      (r) =>
        r.method === "PATCH" &&
        /_state=/.test(r.url) &&
        Number(r.headers["content-length"]) > 60_000 &&
        r.nth > 3,
      { kind: "status", status: 416, body: '{"errors":[{"code":"BLOB_UPLOAD_INVALID"}]}' },
    ),
  },
  {
    name: "persistent 500 on manifest GET",
    side: "source",
    expect: "fail",
    message: /answered 500/,
    client: { ...FAST, retries: 2 },
    fault: (r) => (r.url.includes("/manifests/") ? { kind: "status", status: 500 } : undefined),
  },
  {
    name: "destination refuses the push (403)",
    side: "destination",
    expect: "fail",
    message: /answered 403.*DENIED/,
    fault: (r) =>
      r.method === "POST"
        ? {
            kind: "status",
            status: 403,
            body: '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}',
          }
        : undefined,
  },
];

/** One client that knows the credentials of both registries (the workflow uses a single client). */
function clientForBoth(
  src: RegistryInfo,
  srcHost: string,
  dst: RegistryInfo,
  dstHost: string,
  opts: ClientOptions,
): Client {
  const credentials = new StaticCredentials();
  for (const [reg, host] of [
    [src, srcHost],
    [dst, dstHost],
  ] as const) {
    if (reg.username && reg.password)
      credentials.set(host, { username: reg.username, password: reg.password });
  }
  return new Client({ credentials, retryBaseMs: 20, retryMaxMs: 500, ...opts });
}

async function runScenario(
  s: Scenario,
  mode: "engine" | "workflow",
  srcReg: RegistryInfo,
  dstReg: RegistryInfo,
): Promise<void> {
  const { img, repo } = await makeSource(srcReg);
  (s.fault as { reset?: () => void }).reset?.();
  const target = s.side === "source" ? srcReg : dstReg;
  const proxy = await startFaultProxy(target.url, (r) => s.fault(r, img));
  const srcHost = s.side === "source" ? proxy.host : srcReg.host;
  const dstHost = s.side === "destination" ? proxy.host : dstReg.host;
  const dstRepo = { registry: dstHost, repository: uniqueRepo("faultdst") };
  const minimum = [img.config, ...img.layers].reduce((a, b) => a + b.desc.size, 0);
  const verify: RegistryClient = clientFor(dstReg);
  const direct = { registry: dstReg.host, repository: dstRepo.repository };
  const through = () => (s.side === "source" ? proxy.bytes.down : proxy.bytes.up);
  const record = (outcome: Outcome["outcome"], error?: string) =>
    outcomes.push({
      scenario: s.name,
      mode,
      outcome,
      throughProxy: through(),
      minimum,
      faults: proxy.injected,
      ...(error ? { error } : {}),
    });
  const staging = tmpDir("ferry-fault-staging-");
  const clients: RegistryClient[] = [verify];
  try {
    let failure: Error | undefined;
    if (mode === "engine") {
      const src = clientFor({ ...srcReg, host: srcHost }, s.client ?? FAST);
      const dst = clientFor({ ...dstReg, host: dstHost }, s.client ?? FAST);
      clients.push(src, dst);
      try {
        const report = await new TransferEngine().copy(
          new RegistrySource(src, { ...repo, registry: srcHost, tag: "v1" }),
          new RegistrySink(dst, dstRepo),
          { tags: ["v1"] },
        );
        expect(report.digest).toBe(img.manifest.digest);
      } catch (e) {
        failure = e as Error;
      }
    } else {
      const client = clientForBoth(srcReg, srcHost, dstReg, dstHost, s.client ?? FAST);
      clients.push(client);
      const r = await runCopyWorkflow(
        {
          source: formatReference({ ...repo, registry: srcHost, tag: "v1" }),
          destination: `${dstHost}/${dstRepo.repository}:v1`,
        },
        {
          deps: {
            staging: new FsStagingStore(staging),
            client,
            // the 700 KB layer is staged in 256 KiB steps and 64 KiB parts; the small blobs go direct
            defaults: {
              stepBytes: 256 * 1024,
              partBytes: 64 * 1024,
              chunkBytes: 256 * 1024,
              directMaxBytes: 128 * 1024,
            },
          },
          retryIntervalMs: 1,
        },
      );
      if (r.status === "SUCCEEDED") expect(r.output).toMatchObject({ digest: img.manifest.digest });
      else failure = new Error(`${r.error}: ${r.cause}`);
    }
    if (!failure) {
      // byte-identical at the destination, read back with verification
      for (const b of [img.config, ...img.layers]) {
        expect((await readAll(await verify.getBlob(direct, b.desc))).length).toBe(b.desc.size);
      }
      record(s.expect === "survive" ? "survived" : "WRONG");
      expect(s.expect).toBe("survive");
      expect(proxy.injected).toBeGreaterThan(0);
      return;
    }
    if (s.expect === "survive") {
      record("WRONG", failure.message);
      throw failure;
    }
    // a clear error naming a registry, and nothing half-done at the destination
    expect(failure.message).toMatch(s.message!);
    expect(failure.message).toMatch(/127\.0\.0\.1:\d+/);
    expect(await verify.headManifest({ ...direct, tag: "v1" })).toBeUndefined();
    expect(await verify.headBlob(direct, big(img))).toBeUndefined();
    record("failed clearly", failure.message.slice(0, 160));
  } finally {
    for (const c of clients) await c.close();
    await proxy.close();
    removeTmpDir(staging);
  }
}

describe.each(["engine", "workflow"] as const)(
  "copy under injected faults (%s, distribution registries)",
  (mode) => {
    for (const s of scenarios) {
      it(`${s.name} → ${s.expect === "survive" ? "completes, byte-identical" : "fails clearly, nothing half-done"}`, async () => {
        await runScenario(s, mode, regs.anon, regs.basic);
      });
    }
  },
);

describe("copy under injected faults (engine, special cases)", () => {
  it("blob GET redirected to object storage that throttles (503 Slow Down) and must not see credentials", async () => {
    const { img, repo } = await makeSource(regs.basic);
    let throttled = 0;
    const authSeen: (string | undefined)[] = [];
    const storage = http.createServer((req, res) => {
      authSeen.push(req.headers.authorization);
      if (throttled++ < 2) {
        res.writeHead(503, { "content-type": "application/xml" });
        res.end("<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>");
        return;
      }
      const digest = new URL(req.url!, "http://x").searchParams.get("d")!;
      http.get(
        {
          host: "127.0.0.1",
          port: new URL(regs.anon.url).port,
          path: `/v2/${viaAnon.repository}/blobs/${digest}`,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, { "content-length": up.headers["content-length"] ?? "" });
          up.pipe(res);
        },
      );
    });
    // the storage server reads the bytes from a public copy on the anonymous registry
    const viaAnon = { registry: regs.anon.host, repository: uniqueRepo("storage") };
    const anonClient = clientFor(regs.anon);
    await new TransferEngine().copy(
      new RegistrySource(clientFor(regs.basic), { ...repo, tag: "v1" }),
      new RegistrySink(anonClient, viaAnon),
      { tags: ["v1"] },
    );
    await new Promise<void>((r) => storage.listen(0, "127.0.0.1", r));
    const sport = (storage.address() as AddressInfo).port;
    const proxy = await startFaultProxy(regs.basic.url, (r) => {
      const m = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(r.url);
      return r.method === "GET" && m && r.headers.authorization
        ? {
            kind: "status",
            status: 307,
            headers: { location: `http://localhost:${sport}/bucket?d=${m[1]}&X-Amz-Signature=s` },
          }
        : undefined;
    });
    const src = clientFor({ ...regs.basic, host: proxy.host }, FAST);
    const dstRepo = { registry: regs.anon.host, repository: uniqueRepo("throttled") };
    try {
      const report = await new TransferEngine().copy(
        new RegistrySource(src, { ...repo, registry: proxy.host, tag: "v1" }),
        new RegistrySink(anonClient, dstRepo),
        { tags: ["v1"] },
      );
      expect(report.digest).toBe(img.manifest.digest);
      expect(authSeen.every((a) => a === undefined)).toBe(true);
      outcomes.push({
        scenario: "503 Slow Down from redirected object storage",
        outcome: "survived",
        mode: "engine",
        throughProxy: report.totals.bytesSent,
        minimum: [img.config, ...img.layers].reduce((a, b) => a + b.desc.size, 0),
        faults: 2,
      });
    } finally {
      await src.close();
      await anonClient.close();
      await proxy.close();
      await new Promise((r) => storage.close(r));
    }
  });

  it("token endpoint failing, then recovering", async () => {
    // A proxy in front of the token registry rewrites the challenge's realm to a token proxy that fails twice.
    const realm = new URL(regs.token.token!.realm);
    let tokenCalls = 0;
    const tokenProxy = await startFaultProxy(realm.origin, () =>
      tokenCalls++ < 2 ? { kind: "status", status: 500 } : undefined,
    );
    const regProxy = await startFaultProxy(regs.token.url, () => ({
      kind: "rewrite-response",
      headers: (h) => {
        const w = h["www-authenticate"];
        return w ? { ...h, "www-authenticate": String(w).replace(realm.origin, tokenProxy.url) } : h;
      },
    }));
    const { img, repo } = await makeSource(regs.anon);
    const src = clientFor(regs.anon, FAST);
    const dst = clientFor({ ...regs.token, host: regProxy.host }, FAST);
    try {
      const report = await new TransferEngine().copy(
        new RegistrySource(src, { ...repo, tag: "v1" }),
        new RegistrySink(dst, { registry: regProxy.host, repository: uniqueRepo("tokfail") }),
        { tags: ["v1"] },
      );
      expect(report.digest).toBe(img.manifest.digest);
      expect(tokenCalls).toBeGreaterThan(2);
      outcomes.push({
        scenario: "token endpoint failing (500 twice)",
        outcome: "survived",
        mode: "engine",
        throughProxy: report.totals.bytesSent,
        minimum: [img.config, ...img.layers].reduce((a, b) => a + b.desc.size, 0),
        faults: 2,
      });
    } finally {
      await src.close();
      await dst.close();
      await regProxy.close();
      await tokenProxy.close();
    }
  });

  it("a registry that is not there: a clear error naming it", async () => {
    const c = clientFor(regs.anon, { ...FAST, retries: 1 });
    try {
      const err = await new TransferEngine()
        .copy(
          new RegistrySource(c, { registry: "127.0.0.1:1", repository: "x", tag: "v1" }),
          new RegistrySink(c, { registry: regs.anon.host, repository: "y" }),
        )
        .catch((e: Error) => e);
      expect((err as Error).message).toMatch(/127\.0\.0\.1:1.*ECONNREFUSED/);
      outcomes.push({
        scenario: "registry not listening (connection refused)",
        outcome: "failed clearly",
        mode: "engine",
        throughProxy: 0,
        minimum: 0,
        faults: 1,
        error: (err as Error).message.slice(0, 160),
      });
    } finally {
      await c.close();
    }
  });
});

afterAll(() => {
  const lines = [
    "| scenario | path | outcome | bytes through the faulty side | blob bytes (minimum) | faults injected |",
    "|---|---|---|---:|---:|---:|",
    ...outcomes
      .sort((a, b) => a.scenario.localeCompare(b.scenario) || a.mode.localeCompare(b.mode))
      .map(
        (o) =>
          `| ${o.scenario} | ${o.mode} | ${o.outcome} | ${o.throughProxy} | ${o.minimum} | ${o.faults} |`,
      ),
  ];
  const survived = outcomes.filter((o) => o.outcome === "survived").length;
  const failed = outcomes.filter((o) => o.outcome === "failed clearly").length;
  const text = `${lines.join("\n")}\n\n${outcomes.length} scenarios: ${survived} survived, ${failed} failed clearly, ${outcomes.length - survived - failed} wrong`;
  const dir = join(import.meta.dirname, "..", "..", ".results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "faults.json"), JSON.stringify(outcomes, null, 2));
  writeFileSync(join(dir, "faults.md"), `${text}\n`);
  console.log(`\nfault scenarios (engine):\n${text}\n`);
});
