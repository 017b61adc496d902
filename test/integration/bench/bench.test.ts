/**
 * `ferry bench` against real distribution registries: every scenario runs a fixed number of iterations
 * (or of open-model arrivals) and its report must match what the registry received (its access log, or
 * a recording proxy), request by request; failing targets are reported, not crashed on; the local Step
 * Functions fan-out merges N workers. No assertion depends on how fast the machine is: durations given
 * here are caps far above what the iterations need, so that a hang fails instead of hanging.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BenchFlags, parseBenchConfig } from "../../../load/config.ts";
import type { BenchReport } from "../../../load/report.ts";
import { runBench } from "../../../load/run.ts";
import { BENCH_USER_AGENT } from "../../../load/runner.ts";
import { StaticCredentials } from "../../../shared/registry/auth/credentials.ts";
import { S3StagingStore } from "../../../shared/staging/s3.ts";
import { type RunningDistribution, startDistribution } from "../../helpers/distribution.ts";
import { FANOUT_ARN, fanoutEnvironment, localFanout } from "../../helpers/fanout.ts";
import { startFaultProxy } from "../../helpers/fault-proxy.ts";
import { ferry, ferryJson } from "../../helpers/ferry-cli.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { startS3 } from "../../helpers/s3.ts";
import { tmpDir } from "../../helpers/tmp.ts";
import { until } from "../../helpers/until.ts";

/** The ferry operation a request is, from its method and path (as the access log and the proxy see it). */
function opOf(method: string, url: string): string {
  const [path = "", query = ""] = url.split("?");
  if (path === "/v2/") return "ping";
  if (path === "/v2/_catalog") return "catalog";
  if (path.endsWith("/tags/list")) return "tags.list";
  if (path.includes("/manifests/")) return `manifest.${method.toLowerCase()}`;
  if (/\/blobs\/uploads\/?$/.test(path) && method === "POST")
    return query.includes("mount=") ? "blob.mount" : "upload.post";
  if (path.includes("/blobs/uploads/"))
    return (
      { PATCH: "upload.patch", PUT: "upload.put", GET: "upload.status", DELETE: "upload.delete" }[method] ??
      "?"
    );
  if (path.includes("/blobs/")) return `blob.${method.toLowerCase()}`;
  return `? ${method} ${path}`;
}

function tally(entries: { method: string; url: string }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of entries) {
    const op = opOf(e.method, e.url);
    out[op] = (out[op] ?? 0) + 1;
  }
  return out;
}

/** What the report says each operation did (upload.complete is a PUT to an upload, like upload.put). */
function reported(r: BenchReport): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of r.requests) {
    const op = o.name === "upload.complete" ? "upload.put" : o.name;
    out[op] = (out[op] ?? 0) + o.count;
  }
  return out;
}

let reg: RunningDistribution;
beforeAll(async () => {
  reg = await startDistribution({ auth: "none", accessLog: true });
});
afterAll(async () => {
  await reg?.stop();
});

/** Requests a report counted, over every operation. */
const requestCount = (r: BenchReport) => r.requests.reduce((a, o) => a + o.count, 0);

/**
 * The registry's access log lines for a run's load (not its setup). distribution writes a line after it
 * answered, so the last lines may land after the run returned: read until the log holds as many lines
 * as the report counted requests (the comparison that follows then finds any that differ).
 */
async function accessLog(
  runId: string,
  expected: number,
): Promise<{ method: string; url: string; status: number }[]> {
  const read = () =>
    readFileSync(reg.logFile, "utf8")
      .split("\n")
      // access log lines only (error lines carry the User-Agent too)
      .filter((l) => /^\S+ - \S+ \[/.test(l) && l.includes(`"${BENCH_USER_AGENT} run=${runId} `))
      .map((l) => {
        const m = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3})/.exec(l);
        if (!m) throw new Error(`unparsed access log line: ${l}`);
        return { method: m[1]!, url: m[2]!, status: Number(m[3]) };
      });
  return until(() => {
    const lines = read();
    return lines.length >= expected ? lines : undefined;
  }, `${expected} access log lines of run ${runId}`);
}

/** A cap on a run that is meant to end by its iteration count: reached only if something hangs. */
const CAP = "60s";

let runs = 0;
function config(target: string, flags: BenchFlags) {
  return parseBenchConfig(target, {
    runId: `t${process.pid}x${Date.now().toString(36)}x${++runs}`,
    ...flags,
  });
}

describe("ferry bench scenarios: the report matches what the registry received", () => {
  it("pull: every blob digest-verified, every request counted once", async () => {
    const c = config(`${reg.host}/${uniqueRepo("bench")}`, {
      scenario: "pull",
      iterations: "6",
      duration: CAP,
      vus: "2",
      layers: "2",
      layerSize: "64KiB-512KiB",
    });
    const r = await runBench(c);
    const log = await accessLog(c.runId, requestCount(r));
    expect(r.iterations.total).toBe(6);
    expect(r.iterations.failed).toBe(0);
    expect(reported(r)).toEqual(tally(log));
    expect(log.length).toBeGreaterThan(0);
    expect(log.every((l) => l.status === 200)).toBe(true);
    const op = (n: string) => r.requests.find((o) => o.name === n)!;
    expect(op("manifest.head").count).toBe(r.iterations.total);
    expect(op("blob.get").count).toBe(3 * r.iterations.total); // config + 2 layers
    expect(r.verification.blobsVerified).toBe(op("blob.get").count);
    expect(r.verification.verifyFailures).toBe(0);
    expect(op("blob.get").bytes).toBe(r.iterations.byKind[0]!.bytes - op("manifest.get").bytes);
    expect(op("blob.get").latency!.p50).toBeGreaterThan(0);
    expect(r.series.requests["blob.get"]!.count.reduce((a, b) => a + b, 0)).toBe(op("blob.get").count);
    expect(r.created).toHaveLength(1); // the seed image, listed
    expect(r.created[0]!.seed).toBe(true);
    // what the load cost this process, measured over the load phase
    expect(r.client!.processes).toBe(1);
    expect(r.client!.cpuSeconds).toBeGreaterThan(0);
    expect(r.client!.cpuPerRequestUs).toBeCloseTo((r.client!.cpuSeconds / r.totals.requests) * 1e6, 6);
    expect(r.client!.busiestEventLoop).toBeGreaterThan(0);
    expect(r.client!.busiestEventLoop).toBeLessThanOrEqual(1);
  });

  it("push with reused layers across repositories: uploads, dedupe, mounts, read-back and cleanup", async () => {
    const repo = uniqueRepo("bench");
    const c = config(`${reg.host}/${repo}`, {
      scenario: "push",
      iterations: "6",
      duration: CAP,
      vus: "2",
      layers: "3",
      layerSize: "32KiB-128KiB",
      reuse: "0.34",
      repos: "3",
      cleanup: true,
    });
    const r = await runBench(c);
    const log = await accessLog(c.runId, requestCount(r));
    expect(r.iterations.failed).toBe(0);
    expect(reported(r)).toEqual(tally(log));
    const count = (n: string) => r.requests.find((o) => o.name === n)?.count ?? 0;
    const pushes = r.iterations.total;
    expect(pushes).toBe(6);
    expect(count("manifest.put")).toBe(pushes);
    expect(count("blob.head")).toBe(4 * pushes); // config + 3 layers, each checked first
    // the pooled layer is uploaded once per repository at most, then found (dedupe) or mounted: the
    // third push (repository 2) starts after one of the first two finished, so it mounts from there
    expect(count("blob.mount")).toBeGreaterThanOrEqual(1);
    expect(r.requests.find((o) => o.name === "blob.mount")!.statuses["201"]).toBeGreaterThanOrEqual(1);
    expect(count("upload.put")).toBeLessThan(4 * pushes);
    expect(r.created).toHaveLength(pushes);
    expect(new Set(r.created.map((x) => x.repository))).toEqual(
      new Set([0, 1, 2].map((i) => `${repo}-${i}`)),
    );
    expect(r.verification.readback).toMatchObject({ manifests: pushes, failures: 0 });
    expect(r.cleanup).toMatchObject({ manifests: pushes, failures: 0 });
    const client = clientFor({ ...registries().anon, host: reg.host });
    try {
      const first = r.created[0]!;
      expect(
        await client.headManifest({ registry: reg.host, repository: first.repository, digest: first.digest }),
      ).toBeUndefined();
      expect(
        await client.headBlob({ registry: reg.host, repository: first.repository }, first.blobs[1]!),
      ).toBeUndefined();
    } finally {
      await client.close();
    }
  });

  it("manifest, open model: arrivals at the set rate, timed from their intended start", async () => {
    // 40/s over 1 s is 40 arrivals, whatever the machine does; with room for all 40 in flight none waits
    // in the queue (so none can be dropped), and the grace lets late ones finish
    const c = config(`${reg.host}/${uniqueRepo("bench")}`, {
      scenario: "manifest",
      rate: "40",
      maxVus: "40",
      duration: "1s",
      grace: CAP,
    });
    const r = await runBench(c);
    const log = await accessLog(c.runId, requestCount(r));
    expect(r.iterations.total).toBe(40);
    expect(r.iterations.dropped).toBe(0);
    expect(reported(r)).toEqual({ "manifest.head": 20, "manifest.get": 20 });
    expect(tally(log)).toEqual({ "manifest.head": 20, "manifest.get": 20 });
    // response time (from the intended start) is never shorter than the service time
    const it = r.iterations.byKind[0]!.latency!;
    const get = r.requests.find((o) => o.name === "manifest.get")!.latency!;
    expect(it.min).toBeGreaterThanOrEqual(
      Math.min(get.min, r.requests.find((o) => o.name === "manifest.head")!.latency!.min) * 0.99,
    );
    // the time series holds every request, in whichever seconds they fell
    for (const op of ["manifest.head", "manifest.get"])
      expect(r.series.requests[op]!.count.reduce((a, b) => a + b, 0)).toBe(20);
  });

  it("tags and catalog listings, following Link pages", async () => {
    const repo = uniqueRepo("bench");
    // chunked uploads on the way: PATCH 512-byte chunks, then PUT ?digest=
    const seed = config(`${reg.host}/${repo}`, {
      scenario: "push",
      iterations: "3",
      duration: CAP,
      vus: "1",
      layers: "1",
      layerSize: "1KiB",
      chunkSize: "512",
    });
    const rs = await runBench(seed);
    expect(reported(rs)).toEqual(tally(await accessLog(seed.runId, requestCount(rs))));
    const patches = rs.requests.find((o) => o.name === "upload.patch")!;
    expect(patches.count).toBe(3 * (2 + 1)); // per image: a 1 KiB layer in 2 chunks, a small config in 1
    expect(patches.bytes).toBeGreaterThan(3 * 1024); // layers and configs, counted as they were sent
    expect(rs.requests.find((o) => o.name === "upload.complete")!.count).toBe(6);
    const tags = config(`${reg.host}/${repo}`, {
      scenario: "tags",
      iterations: "4",
      duration: CAP,
      vus: "2",
      pageSize: "2",
    });
    const rt = await runBench(tags);
    expect(rt.iterations).toMatchObject({ total: 4, failed: 0 });
    const tl = await accessLog(tags.runId, requestCount(rt));
    expect(reported(rt)).toEqual(tally(tl));
    // distribution 2.8 pages its catalog (not its tag lists): 2 listings in pages of one repository
    const repos = (await (await fetch(`${reg.url}/v2/_catalog?n=1000`)).json()) as { repositories: string[] };
    const cat = config(reg.host, {
      scenario: "catalog",
      iterations: "2",
      duration: CAP,
      vus: "1",
      pageSize: "1",
    });
    const rc = await runBench(cat);
    expect(rc.iterations).toMatchObject({ total: 2, failed: 0 });
    expect(rc.requests[0]!.count).toBeGreaterThanOrEqual(2 * repos.repositories.length);
    expect(reported(rc)).toEqual(tally(await accessLog(cat.runId, requestCount(rc))));
  });

  it("token auth: token fetches are measured as their own operation", async () => {
    const tok = registries().token;
    const repo = uniqueRepo("bench");
    const c = config(`${tok.host}/${repo}`, {
      scenario: "push",
      iterations: "4",
      duration: CAP,
      vus: "2",
      clientPerVu: true,
      layers: "1",
      layerSize: "4KiB",
    });
    const credentials = new StaticCredentials().set(tok.host, {
      username: tok.username!,
      password: tok.password!,
    });
    const r = await runBench(c, { clientOptions: { credentials } });
    expect(r.iterations).toMatchObject({ total: 4, failed: 0 });
    const token = r.requests.find((o) => o.name === "token")!;
    const recorded = (await (await fetch(tok.token!.requestsUrl)).json()) as {
      scopes: string[];
      status: number;
    }[];
    const mine = recorded.filter((t) => t.scopes.includes(`repository:${repo}:pull,push`));
    expect(mine).toHaveLength(token.count);
    // one per VU client, then cached (two blobs answered 401 at once on first contact may each fetch one)
    expect(token.count).toBeGreaterThanOrEqual(2);
    expect(token.count).toBeLessThanOrEqual(4);
    expect(token.latency!.p50).toBeGreaterThan(0);
    // the 401 challenges that led to them are counted as answers, not failures
    expect(r.totals.failedRequests).toBe(0);
  });
});

describe("ferry bench against a failing target: reported, not crashed on", () => {
  it("counts 500s and 429s by status and code, exactly as the proxy injected them", async () => {
    const repo = uniqueRepo("bench");
    const seen = { manifests: 0, blobs: 0 };
    const injected = { 500: 0, 429: 0 };
    const proxy = await startFaultProxy(reg.url, (q) => {
      if (!String(q.headers["user-agent"]).startsWith(BENCH_USER_AGENT) || q.method !== "GET")
        return undefined;
      if (q.url.includes("/manifests/") && ++seen.manifests % 3 === 0) {
        injected[500]++;
        return { kind: "status", status: 500 };
      }
      if (q.url.includes("/blobs/") && ++seen.blobs % 4 === 0) {
        injected[429]++;
        return {
          kind: "status",
          status: 429,
          headers: { "retry-after": "1" },
          body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}',
        };
      }
      return undefined;
    });
    try {
      const c = config(`${proxy.host}/${repo}`, {
        scenario: "pull",
        iterations: "9",
        duration: CAP,
        vus: "2",
        layers: "2",
        layerSize: "8KiB",
      });
      const r = await runBench(c);
      const load = proxy.requests.filter((q) => String(q.headers["user-agent"]).startsWith(BENCH_USER_AGENT));
      expect(reported(r)).toEqual(tally(load));
      expect(injected[500]).toBeGreaterThan(0);
      expect(injected[429]).toBeGreaterThan(0);
      expect(r.errors.requests.byStatus).toEqual({ "500": injected[500], "429": injected[429] });
      expect(r.errors.requests.byCode).toEqual({ HTTP_500: injected[500], TOOMANYREQUESTS: injected[429] });
      expect(r.totals.failedRequests).toBe(proxy.injected);
      expect(r.iterations.failed).toBeGreaterThan(0);
      expect(r.iterations.ok).toBeGreaterThan(0);
      expect(Object.keys(r.errors.iterations.byCode).sort()).toEqual(["HTTP_500", "TOOMANYREQUESTS"]);
      expect(r.errors.samples.TOOMANYREQUESTS).toMatch(/429 Too Many Requests/);
    } finally {
      await proxy.close();
    }
  });

  it("stops by itself when the registry stalls: in-flight iterations are aborted after the grace period", async () => {
    // The proxy holds every request until its client goes away: runBench returns only if the tool
    // aborts by itself (the test's timeout is the failure), and the proxy sees each stalled request's
    // connection closed by the client.
    const proxy = await startFaultProxy(reg.url, (q) =>
      String(q.headers["user-agent"]).startsWith(BENCH_USER_AGENT)
        ? { kind: "stall", ms: 600_000 }
        : undefined,
    );
    try {
      const c = config(`${proxy.host}/${uniqueRepo("bench")}`, {
        scenario: "manifest",
        duration: "300ms",
        grace: "200ms",
        vus: "3",
        layers: "1",
        layerSize: "1KiB",
      });
      const r = await runBench(c);
      expect(r.iterations).toMatchObject({ total: 0, aborted: 3 });
      expect(r.totals.failedRequests).toBe(0); // the tool gave up: not the registry's failures
      const stalled = proxy.requests.filter((q) =>
        String(q.headers["user-agent"]).startsWith(BENCH_USER_AGENT),
      );
      expect(stalled).toHaveLength(3); // one per VU, none answered
      await until(() => proxy.abandoned === 3, "the 3 stalled connections to be closed by the client");
    } finally {
      await proxy.close();
    }
  });

  it("counts corrupted blobs as verification failures and exits 1 saying so", async () => {
    const proxy = await startFaultProxy(reg.url, (q) =>
      String(q.headers["user-agent"]).startsWith(BENCH_USER_AGENT) &&
      q.method === "GET" &&
      /\/blobs\/sha256/.test(q.url)
        ? { kind: "corrupt", at: 100 }
        : undefined,
    );
    try {
      const out = await ferry(
        [
          "bench",
          `${proxy.host}/${uniqueRepo("bench")}`,
          "--iterations",
          "2",
          "--vus",
          "1",
          "--layers",
          "1",
          "--json",
        ],
        { FERRY_FROM_SOURCE: "1" },
      );
      expect(out.code).toBe(1);
      expect(out.stderr.trim().split("\n")).toEqual([
        expect.stringMatching(/^ferry: bench: \d+ digest verification/),
      ]);
      const r = JSON.parse(out.stdout) as BenchReport;
      expect(r.verification.verifyFailures).toBe(4); // config and layer of both pulls
      expect(r.errors.iterations.byCode).toEqual({ DIGEST_MISMATCH: 2 });
    } finally {
      await proxy.close();
    }
  });

  it("a wrong port: a report full of connection errors, one line on stderr, exit 1", async () => {
    const out = await ferry(
      [
        "bench",
        "127.0.0.1:1",
        "-s",
        "manifest",
        "--image",
        "127.0.0.1:1/app:v1",
        "--iterations",
        "3",
        "-d",
        CAP,
        "-c",
        "1",
      ],
      { FERRY_FROM_SOURCE: "1" },
    );
    expect(out.code).toBe(1);
    expect(out.stdout).toMatch(/failed iterations by code: ECONNREFUSED/);
    expect(out.stdout).toMatch(/failed requests by status: connection/);
    expect(out.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(/^ferry: bench: all 3 iterations failed \(ECONNREFUSED: /),
    ]);
  });
});

describe("ferry bench, distributed and on the command line", () => {
  it("fans 3 workers out through the local Step Functions workflow and merges them into one report", async () => {
    const html = join(tmpDir("ferry-bench-"), "report.html");
    const runId = `w${process.pid}x${Date.now().toString(36)}`;
    const r = await ferryJson<BenchReport>(
      [
        "bench",
        `${reg.host}/${uniqueRepo("bench")}`,
        "--scenario",
        "mixed",
        "--mix",
        "pull=2,push=1,manifest=1",
        "--workers",
        "3",
        "--via-workflow",
        "--vus",
        "3",
        "--iterations",
        "12",
        "--duration",
        CAP,
        "--layers",
        "1",
        "--layer-size",
        "16KiB",
        "--run-id",
        runId,
        "--json",
        "--html",
        html,
      ],
      { FERRY_FROM_SOURCE: "1" },
    );
    expect(r.workers).toBe(3);
    expect(r.viaWorkflow).toBe(true);
    expect(r.iterations.total).toBe(12);
    expect(Object.fromEntries(r.iterations.byKind.map((k) => [k.name, k.count]))).toEqual({
      manifest: 3,
      pull: 6,
      push: 3,
    });
    expect(reported(r)).toEqual(tally(await accessLog(runId, requestCount(r))));
    expect(r.verification.readback).toMatchObject({ manifests: 4, failures: 0 }); // 3 pushes + the seed
    // three in-process workers share one process: its CPU is counted once
    expect(r.client!.processes).toBe(1);
    const page = readFileSync(html, "utf8");
    expect(page).not.toMatch(/<script[^>]+src=|<link[^>]+href=/i);
    expect(page).toContain("Latency over time");
  });

  it("on AWS: starts the fan-out state machine, the Lambda handlers hand results over in S3, same report", async () => {
    // Only the Step Functions control plane is stood in for: StartExecution runs the deployed definition
    // locally (aws-local-stepfunctions) with the real Lambda handlers, which write to a real S3 server.
    const s3 = await startS3("ferry-bench-results");
    // The worker's registry client connects to public addresses only, as in every Lambda function:
    // the harness registry on loopback is declared private, as a deployment would declare it.
    const restore = fanoutEnvironment(s3, reg.host);
    const runId = `aws${process.pid}x${Date.now().toString(36)}`;
    const arn = FANOUT_ARN;
    const { sfn, commands, settled, output } = localFanout();
    try {
      const config = parseBenchConfig(`${reg.host}/${uniqueRepo("bench")}`, {
        scenario: "manifest",
        workers: "2",
        viaWorkflow: true,
        vus: "2",
        iterations: "6",
        duration: CAP,
        runId,
      });
      const report = await runBench(config, {
        aws: { stateMachineArn: arn, sfn, pollMs: 50, s3Endpoint: s3.endpoint, startLeadMs: 0 },
      });
      await settled();
      expect(commands[0]).toMatchObject({
        name: "StartExecutionCommand",
        input: { stateMachineArn: arn, name: `ferry-bench-${runId}` },
      });
      expect(commands.at(-1)!.name).toBe("DescribeExecutionCommand");
      expect(JSON.parse(output()!)).toEqual({ resultKey: `bench/${runId}/result.json`, bucket: s3.bucket });
      const store = new S3StagingStore({ bucket: s3.bucket, endpoint: s3.endpoint });
      expect(await store.list(`bench/${runId}/`)).toEqual(
        ["result.json", "worker-0.json", "worker-1.json"].map((f) => `bench/${runId}/${f}`),
      );
      expect(report.workers).toBe(2);
      expect(report.iterations.total).toBe(6);
      expect(reported(report)).toEqual(tally(await accessLog(runId, requestCount(report))));
    } finally {
      restore();
      await s3.stop();
    }
  });

  it("--state-machine: a clear error for a bad ARN, a missing --workers, or both fan-outs", async () => {
    const cases: [string[], RegExp][] = [
      [
        ["--state-machine", "arn:aws:lambda:eu-west-1:1:function:x", "--workers", "2"],
        /--state-machine: expected arn:aws:states:/,
      ],
      [["--state-machine", "arn:aws:states:eu-west-1:123456789012:stateMachine:f"], /give --workers/],
      [
        [
          "--state-machine",
          "arn:aws:states:eu-west-1:123456789012:stateMachine:f",
          "--workers",
          "2",
          "--via-workflow",
        ],
        /choose one/,
      ],
      [["--s3-endpoint", "http://127.0.0.1:1"], /--s3-endpoint applies to --state-machine/],
    ];
    for (const [args, expected] of cases) {
      const out = await ferry(["bench", "localhost:5000", ...args], { FERRY_FROM_SOURCE: "1" });
      expect(out.code, args.join(" ")).toBe(2);
      expect(out.stderr.trim().split("\n"), args.join(" ")).toEqual([expect.stringMatching(expected)]);
    }
  });

  it("bad options: exit 2 and one clear line each", async () => {
    const cases: [string[], RegExp][] = [
      [["bench"], /^ferry: bench needs a target: ferry bench <registry>\[\/<repo>\]/],
      [
        ["bench", "localhost:5000", "--duration", "0"],
        /^ferry: --duration must be more than zero \(got "0"\)$/,
      ],
      [["bench", "localhost:5000", "--rate", "-5"], /^ferry: --rate must be at least 0 \(got -5\)$/],
      [
        ["bench", "localhost:5000", "--scenario", "stress"],
        /^ferry: unknown scenario "stress" \(one of pull, push/,
      ],
    ];
    const outs = await Promise.all(cases.map(([args]) => ferry(args, { FERRY_FROM_SOURCE: "1" })));
    outs.forEach((out, i) => {
      expect(out.code, cases[i]![0].join(" ")).toBe(2);
      expect(out.stdout).toBe("");
      expect(out.stderr.trim().split("\n")).toEqual([expect.stringMatching(cases[i]![1])]);
    });
  });
});
