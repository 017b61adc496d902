/**
 * Fault injection against the real registry: each scenario copies an image through a fault proxy
 * with the engine and the workflow, and must end byte-identical (the tag, the manifest by digest and
 * every blob read back from the destination and compared with the source) or with a clear error while
 * the destination holds neither tag, manifest nor the bad blob. The bytes that crossed the faulty side
 * are bounded per scenario (nothing read twice after a resumed download; at most the chunk in flight
 * after a broken PATCH; the manifest once more per lost PUT answer). The table of outcomes, bytes and
 * bounds, and its summary line, are computed from the run: printed at the end and written to
 * test/.results/faults.md and faults.json.
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
import { expectNothingAt, expectSameImage } from "../../helpers/image-check.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";
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
  /** The most `throughProxy` may be for a survived scenario (asserted); undefined for failures. */
  bound?: number;
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

/** Chunk size of the chunked uploads (engine CHUNKED and the workflow's chunkBytes alike). */
const CHUNK = 256 * 1024;

const FAST: ClientOptions = {
  retryBaseMs: 10,
  retryMaxMs: 1500,
  headersTimeoutMs: 1500,
  bodyTimeoutMs: 1500,
};
const CHUNKED: ClientOptions = { ...FAST, monolithicMax: 0, chunkSize: CHUNK };

interface Scenario {
  name: string;
  /** Which side the proxy stands in front of. */
  side: "source" | "destination";
  fault: (r: ProxiedRequest, img: SampleImage) => Fault;
  expect: "survive" | "fail";
  message?: RegExp;
  client?: ClientOptions;
  /**
   * What a survived scenario may cost beyond the blobs and one manifest through the faulty side:
   * `broken-response`: the bytes of the download that broke (a resume starts from the last byte consumed,
   * and bytes received but not yet consumed when the connection broke are lost with it);
   * `chunk`: the PATCH chunk in flight; `manifest-per-fault`: the manifest once more per lost answer;
   * `reread`: the big blob once more (bytes that did not match are read again from the start, once).
   * Default: nothing (a refused or stalled request carried no body).
   */
  extra?: "broken-response" | "chunk" | "manifest-per-fault" | "reread";
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
    extra: "broken-response",
    fault: once((r, img) => isBlob(r, big(img)), { kind: "reset-response", after: 100_000 }),
  },
  {
    name: "truncated blob body with a correct Content-Length",
    side: "source",
    expect: "survive",
    extra: "broken-response",
    fault: once((r, img) => isBlob(r, big(img)), { kind: "reset-response", after: -1000 }),
  },
  {
    name: "connection reset in the middle of a PATCH chunk",
    side: "destination",
    expect: "survive",
    client: CHUNKED,
    extra: "chunk",
    fault: once((r) => r.method === "PATCH" && Number(r.headers["content-length"]) > 200_000, {
      kind: "reset-request",
      after: 100_000,
    }),
  },
  {
    name: "answer to a manifest PUT lost",
    side: "destination",
    expect: "survive",
    extra: "manifest-per-fault",
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
    name: "blob bytes that do not match the digest, on every read",
    side: "source",
    expect: "fail",
    // blamed on the source (registry, repository, blob), never reported as the destination's refusal
    message: /blob sha256:[0-9a-f]{64} read from 127\.0\.0\.1:\d+\/faultsrc\/.*does not match expected/,
    fault: (r, img) => (isBlob(r, big(img)) ? { kind: "corrupt", at: 1234 } : undefined),
  },
  {
    name: "a source response corrupted once",
    side: "source",
    expect: "survive",
    extra: "reread",
    fault: once((r, img) => isBlob(r, big(img)), { kind: "corrupt", at: 1234 }),
  },
  {
    name: "stale Range header after the first chunk (ECR)",
    side: "destination",
    expect: "survive",
    client: CHUNKED,
    extra: "chunk",
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
    extra: "chunk",
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
    extra: "chunk",
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

const blobBytes = (img: SampleImage) => [img.config, ...img.layers].reduce((a, b) => a + b.desc.size, 0);

/**
 * Records a scenario's outcome once its assertions have run: "survived" or "failed clearly" only when
 * every assertion passed, "WRONG" (and the assertion's error) otherwise.
 */
async function recorded(
  base: Pick<Outcome, "scenario" | "mode" | "minimum">,
  measure: () => Pick<Outcome, "throughProxy" | "faults" | "bound">,
  check: () => Promise<{ outcome: "survived" | "failed clearly"; error?: string }>,
): Promise<void> {
  try {
    const r = await check();
    const m = measure();
    outcomes.push({ ...base, ...m, ...r, ...(r.outcome === "survived" ? {} : { bound: undefined }) });
  } catch (e) {
    outcomes.push({ ...base, ...measure(), outcome: "WRONG", error: (e as Error).message.slice(0, 160) });
    throw e;
  }
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
  const minimum = blobBytes(img);
  const manifestBytes = img.manifest.bytes.length;
  // every blob once and the manifest once, plus what the scenario's fault may cost
  const bound = () =>
    minimum +
    manifestBytes +
    (s.extra === "broken-response" ? proxy.bytes.cut : 0) +
    (s.extra === "chunk" ? CHUNK : 0) +
    (s.extra === "manifest-per-fault" ? manifestBytes * proxy.injected : 0) +
    (s.extra === "reread" ? BIG : 0);
  // read-back clients go straight to the registries, not through the proxy
  const verify: RegistryClient = clientFor(dstReg);
  const srcDirect: RegistryClient = clientFor(srcReg);
  const direct = { registry: dstReg.host, repository: dstRepo.repository };
  const through = () => (s.side === "source" ? proxy.bytes.down : proxy.bytes.up);
  const staging = tmpDir("ferry-fault-staging-");
  const clients: RegistryClient[] = [verify, srcDirect];
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
              chunkBytes: CHUNK,
              directMaxBytes: 128 * 1024,
            },
          },
          retryIntervalMs: 1,
        },
      );
      if (r.status === "SUCCEEDED") expect(r.output).toMatchObject({ digest: img.manifest.digest });
      else failure = new Error(`${r.error}: ${r.cause}`);
    }
    await recorded(
      { scenario: s.name, mode, minimum },
      () => ({ throughProxy: through(), faults: proxy.injected, bound: bound() }),
      async () => {
        expect(proxy.injected, "faults injected").toBeGreaterThan(0);
        if (s.expect === "survive") {
          if (failure) throw failure;
          // the destination itself, read back: tag, manifest by digest, every blob, against the source
          const checked = await expectSameImage(
            { client: srcDirect, ref: { ...repo, tag: "v1" } },
            { client: verify, ref: { ...direct, tag: "v1" } },
          );
          expect(checked).toEqual({ manifests: 1, blobs: 1 + img.layers.length });
          // every blob crossed the faulty side, and no more than the scenario's fault may cost
          expect(through()).toBeGreaterThanOrEqual(minimum);
          expect(through()).toBeLessThanOrEqual(bound());
          return { outcome: "survived" };
        }
        expect(failure, "the copy was expected to fail").toBeDefined();
        // a clear error naming a registry, and nothing half-done at the destination
        expect(failure!.message).toMatch(s.message!);
        expect(failure!.message).toMatch(/127\.0\.0\.1:\d+/);
        await expectNothingAt(
          { client: verify, ref: { ...direct, tag: "v1" } },
          { manifests: [img.manifest.digest], blobs: [big(img)] },
        );
        return { outcome: "failed clearly", error: failure!.message.slice(0, 160) };
      },
    );
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

describe.each(["engine", "workflow"] as const)("--chunk-size on the %s path", (mode) => {
  it("sends PATCHes of exactly that size (the last one shorter), for every blob, whatever its size", async () => {
    const { img, repo } = await makeSource(regs.anon);
    const proxy = await startFaultProxy(regs.basic.url, () => undefined);
    const dstRepo = { registry: proxy.host, repository: uniqueRepo("chunks") };
    const staging = tmpDir("ferry-chunk-staging-");
    const clients: RegistryClient[] = [];
    try {
      if (mode === "engine") {
        const src = clientFor(regs.anon, CHUNKED);
        const dst = clientFor({ ...regs.basic, host: proxy.host }, CHUNKED);
        clients.push(src, dst);
        await new TransferEngine().copy(
          new RegistrySource(src, { ...repo, tag: "v1" }),
          new RegistrySink(dst, dstRepo),
          { tags: ["v1"] },
        );
      } else {
        const client = clientForBoth(regs.anon, regs.anon.host, regs.basic, proxy.host, CHUNKED);
        clients.push(client);
        const r = await runCopyWorkflow(
          {
            source: formatReference({ ...repo, tag: "v1" }),
            destination: `${proxy.host}/${dstRepo.repository}:v1`,
          },
          {
            deps: {
              staging: new FsStagingStore(staging),
              client,
              defaults: {
                stepBytes: 512 * 1024,
                partBytes: 64 * 1024,
                chunkBytes: CHUNK,
                directMaxBytes: 128 * 1024,
              },
            },
            retryIntervalMs: 1,
          },
        );
        expect(r.cause).toBeUndefined();
      }
      const sizes = proxy.requests
        .filter((r) => r.method === "PATCH")
        .map((r) => Number(r.headers["content-length"]))
        .sort((a, b) => b - a);
      // the 700 KB layer in chunks of 256 KiB; the config and the small layer, each one (short) chunk
      const expected = [CHUNK, CHUNK, BIG - 2 * CHUNK, img.config.desc.size, img.layers[1]!.desc.size].sort(
        (a, b) => b - a,
      );
      expect(sizes).toEqual(expected);
      // and no blob went up in one monolithic PUT
      const puts = proxy.requests.filter((r) => r.method === "PUT" && r.url.includes("/blobs/uploads/"));
      expect(puts.length).toBe(3);
      expect(puts.every((r) => Number(r.headers["content-length"] ?? 0) === 0)).toBe(true);
    } finally {
      for (const c of clients) await c.close();
      await proxy.close();
      removeTmpDir(staging);
    }
  });
});

describe("copy under injected faults (engine, special cases)", () => {
  it("blob GET redirected to object storage that throttles (503 Slow Down) and must not see credentials", async () => {
    const { img, repo } = await makeSource(regs.basic);
    let requests = 0;
    let throttled = 0;
    let served = 0;
    const authSeen: (string | undefined)[] = [];
    const storage = http.createServer((req, res) => {
      authSeen.push(req.headers.authorization);
      if (requests++ < 2) {
        throttled++;
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
          up.on("data", (c: Buffer) => {
            served += c.length;
          });
          up.pipe(res);
        },
      );
    });
    // the storage server reads the bytes from a public copy on the anonymous registry
    const viaAnon = { registry: regs.anon.host, repository: uniqueRepo("storage") };
    const anonClient = clientFor(regs.anon);
    const basicClient = clientFor(regs.basic);
    await new TransferEngine().copy(
      new RegistrySource(basicClient, { ...repo, tag: "v1" }),
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
    const minimum = blobBytes(img);
    await recorded(
      { scenario: "503 Slow Down from redirected object storage", mode: "engine", minimum },
      // the faulty side is the storage: the blob bytes it served; a 503 is a fault it injected
      () => ({ throughProxy: served, faults: throttled, bound: minimum }),
      async () => {
        try {
          const report = await new TransferEngine().copy(
            new RegistrySource(src, { ...repo, registry: proxy.host, tag: "v1" }),
            new RegistrySink(anonClient, dstRepo),
            { tags: ["v1"] },
          );
          expect(report.digest).toBe(img.manifest.digest);
          // every blob was fetched from storage (each redirected), none with the registry's credentials
          expect(authSeen.length).toBe(throttled + 1 + img.layers.length);
          expect(authSeen.every((a) => a === undefined)).toBe(true);
          expect(throttled).toBe(2);
          await expectSameImage(
            { client: basicClient, ref: { ...repo, tag: "v1" } },
            { client: anonClient, ref: { ...dstRepo, tag: "v1" } },
          );
          // each blob once from storage: the throttled attempts carried no blob bytes
          expect(served).toBe(minimum);
          return { outcome: "survived" };
        } finally {
          await src.close();
          await proxy.close();
          await new Promise((r) => storage.close(r));
        }
      },
    );
    await anonClient.close();
    await basicClient.close();
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
    const verify = clientFor(regs.token);
    const dstRepo = { registry: regProxy.host, repository: uniqueRepo("tokfail") };
    const minimum = blobBytes(img);
    const bound = minimum + img.manifest.bytes.length;
    try {
      await recorded(
        { scenario: "token endpoint failing (500 twice)", mode: "engine", minimum },
        // the faulty side is the token endpoint; the bytes are those sent to the registry behind it
        () => ({ throughProxy: regProxy.bytes.up, faults: tokenProxy.injected, bound }),
        async () => {
          const report = await new TransferEngine().copy(
            new RegistrySource(src, { ...repo, tag: "v1" }),
            new RegistrySink(dst, dstRepo),
            { tags: ["v1"] },
          );
          expect(report.digest).toBe(img.manifest.digest);
          expect(tokenProxy.injected).toBe(2);
          expect(tokenCalls).toBeGreaterThan(2);
          await expectSameImage(
            { client: src, ref: { ...repo, tag: "v1" } },
            { client: verify, ref: { ...dstRepo, registry: regs.token.host, tag: "v1" } },
          );
          expect(regProxy.bytes.up).toBeGreaterThanOrEqual(minimum);
          expect(regProxy.bytes.up).toBeLessThanOrEqual(bound);
          return { outcome: "survived" };
        },
      );
    } finally {
      await src.close();
      await dst.close();
      await verify.close();
      await regProxy.close();
      await tokenProxy.close();
    }
  });

  it("a registry that is not there: a clear error naming it", async () => {
    // every connection attempt, as the client reports it, is a fault: nobody listens on port 1
    const refused: string[] = [];
    const c = clientFor(regs.anon, {
      ...FAST,
      retries: 1,
      observer: (e) => {
        if (e.error && e.url.includes("127.0.0.1:1/")) refused.push(e.error);
      },
    });
    try {
      await recorded(
        { scenario: "registry not listening (connection refused)", mode: "engine", minimum: 0 },
        () => ({ throughProxy: 0, faults: refused.length }),
        async () => {
          const err = await new TransferEngine()
            .copy(
              new RegistrySource(c, { registry: "127.0.0.1:1", repository: "x", tag: "v1" }),
              new RegistrySink(c, { registry: regs.anon.host, repository: "y" }),
            )
            .catch((e: Error) => e);
          expect(err).toBeInstanceOf(Error);
          expect((err as Error).message).toMatch(/127\.0\.0\.1:1.*ECONNREFUSED/);
          expect(refused.length).toBeGreaterThan(0);
          return { outcome: "failed clearly", error: (err as Error).message.slice(0, 160) };
        },
      );
    } finally {
      await c.close();
    }
  });
});

/** The table and its summary line, both from the outcomes of this run. */
function faultsTable(rows: Outcome[]): string {
  const lines = [
    "| scenario | path | outcome | bytes through the faulty side | at most (asserted) | blob bytes (minimum) | faults injected |",
    "|---|---|---|---:|---:|---:|---:|",
    ...[...rows]
      .sort((a, b) => a.scenario.localeCompare(b.scenario) || a.mode.localeCompare(b.mode))
      .map(
        (o) =>
          `| ${o.scenario} | ${o.mode} | ${o.outcome} | ${o.throughProxy} | ${o.bound ?? "–"} | ${o.minimum} | ${o.faults} |`,
      ),
  ];
  const survived = rows.filter((o) => o.outcome === "survived").length;
  const failed = rows.filter((o) => o.outcome === "failed clearly").length;
  return `${lines.join("\n")}\n\n${rows.length} scenarios: ${survived} survived, ${failed} failed clearly, ${rows.length - survived - failed} wrong`;
}

afterAll(() => {
  const text = faultsTable(outcomes);
  const dir = join(import.meta.dirname, "..", "..", ".results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "faults.json"), JSON.stringify(outcomes, null, 2));
  writeFileSync(join(dir, "faults.md"), `${text}\n`);
  console.log(`\nfault scenarios:\n${text}\n`);
});
