/**
 * `ferry bench -s replay` against real distribution registries. What the registry receives is counted at
 * a recording proxy (or read from its own log) and must match the trace record by record: one GET per
 * GET record of an object of the recorded size, one blob push per PUT record; skipped records counted;
 * seeding apart from the replay's figures. Timing is checked without a stopwatch: every request's intended
 * start is its record's offset divided by the speed (the schedule), and none starts before it.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BenchFlags, parseBenchConfig } from "../../../load/config.ts";
import type { BenchReport } from "../../../load/report.ts";
import { BENCH_SETUP_USER_AGENT, runBench } from "../../../load/run.ts";
import { BENCH_USER_AGENT } from "../../../load/runner.ts";
import { loadTrace, type RawTraceRecord } from "../../../load/trace.ts";
import { traceText } from "../../../load/trace-convert.ts";
import { SYNTH_DEFAULTS, synthTrace } from "../../../load/trace-synth.ts";
import { S3StagingStore } from "../../../shared/staging/s3.ts";
import { type RunningDistribution, startDistribution } from "../../helpers/distribution.ts";
import { FANOUT_ARN, fanoutEnvironment, localFanout } from "../../helpers/fanout.ts";
import { type FaultProxy, type ProxiedRequest, startFaultProxy } from "../../helpers/fault-proxy.ts";
import { ferry, ferryJson } from "../../helpers/ferry-cli.ts";
import { uniqueRepo } from "../../helpers/registry-client.ts";
import { startS3 } from "../../helpers/s3.ts";
import { tmpDir } from "../../helpers/tmp.ts";

let reg: RunningDistribution;
let proxy: FaultProxy;
beforeAll(async () => {
  reg = await startDistribution({ auth: "none" });
  proxy = await startFaultProxy(reg.url, () => undefined);
});
afterAll(async () => {
  await proxy?.close();
  await reg?.stop();
});

const ua = (q: ProxiedRequest) => String(q.headers["user-agent"]);
const ofRun = (runId: string, agent: string) => (q: ProxiedRequest) =>
  ua(q).startsWith(`${agent} run=${runId}`);
/** What a proxied request is: a GET of a manifest or blob by digest, a push's completion, or else. */
function kindOf(q: ProxiedRequest): string {
  const [path = "", query = ""] = q.url.split("?");
  const m = /^\/v2\/.+\/(manifests|blobs)\/(sha256:[0-9a-f]{64})$/.exec(path);
  if (q.method === "GET" && m) return `${m[1] === "blobs" ? "blob" : "manifest"} ${m[2]}`;
  if (q.method === "PUT" && /\/blobs\/uploads\//.test(path) && /(^|&)digest=/.test(query)) return "push";
  return `${q.method} other`;
}

let runs = 0;
const runId = () => `r${process.pid}x${Date.now().toString(36)}x${++runs}`;
const config = (target: string, flags: BenchFlags) =>
  parseBenchConfig(target, { scenario: "replay", runId: runId(), ...flags });

/** A production-shaped trace with small objects (a few hundred records), and a file of records to skip. */
function traceFiles(dir: string): { files: string[]; skipped: Record<string, number> } {
  const records = synthTrace({
    ...SYNTH_DEFAULTS,
    requests: 300,
    spanSeconds: 30,
    clients: 6,
    images: 25,
    layerMedian: 6 * 1024,
    layerSigma: 1,
    seed: "replay-test",
  });
  // shuffled: the reader sorts
  const shuffled = records.map((r, i) => [((i * 7919) % 301) / 301, r] as const).sort((a, b) => a[0] - b[0]);
  const main = join(dir, "trace.json");
  writeFileSync(main, traceText(shuffled.map(([, r]) => r)));
  const at = records[10]!.timestamp;
  const base: RawTraceRecord = { ...records[0]!, timestamp: at };
  const extra: RawTraceRecord[] = [
    { ...base, "http.request.method": "HEAD" },
    { ...base, "http.request.method": "POST", "http.request.uri": "v2/u001/app0001/blobs/uploads/" },
    { ...base, "http.request.uri": "v2/u001/app0001/tags/list" },
    { ...base, "http.response.status": 404 },
    { ...base, "http.response.written": 0 },
  ];
  const second = join(dir, "more.json");
  writeFileSync(second, traceText(extra));
  return { files: [main, second], skipped: { method: 2, path: 1, status: 1, size: 1 } };
}

describe("ferry bench -s replay against the real registry", () => {
  it("one GET per GET record of an object of the recorded size, one push per PUT record, on schedule", async () => {
    const dir = tmpDir("ferry-replay-");
    const { files, skipped } = traceFiles(dir);
    const trace = await loadTrace(files);
    const repo = uniqueRepo("replay");
    const speed = 10;
    const c = config(`${proxy.host}/${repo}`, {
      trace: files,
      speed: String(speed),
      state: join(dir, "state"),
    });
    const starts = new Map<number, { intended: number; actual: number }>();
    const seen = proxy.requests.length;
    const r = await runBench(c, {
      onReplayStart: (i, intended, actual) => starts.set(i, { intended, actual }),
    });
    const load = proxy.requests.slice(seen).filter(ofRun(c.runId, BENCH_USER_AGENT));
    const setup = proxy.requests.slice(seen).filter(ofRun(c.runId, BENCH_SETUP_USER_AGENT));

    const gets = trace.records.filter((x) => x.method === "GET");
    const puts = trace.records.filter((x) => x.method === "PUT");
    expect(gets.length).toBeGreaterThan(200);
    expect(puts.length).toBeGreaterThan(5);
    // the objects the trace reads, as seeded (the --state file): each GET record's URI → digest and size
    const state = JSON.parse(readFileSync(join(dir, "state", "replay-state.json"), "utf8")) as {
      targets: Record<string, Record<string, { digest: string; size: number; served: string }>>;
    };
    const mapping = state.targets[`${proxy.host}/${repo}`]!;
    for (const g of gets) expect(mapping[g.uri]!.size, g.uri).toBe(g.size);
    const expected = gets.map((g) => `${mapping[g.uri]!.served} ${mapping[g.uri]!.digest}`).sort();
    expect(
      load
        .map(kindOf)
        .filter((k) => !k.startsWith("push") && !k.includes("other"))
        .sort(),
    ).toEqual(expected);
    expect(load.filter((q) => kindOf(q) === "push")).toHaveLength(puts.length);
    expect(r.replay!.sent).toEqual({ gets: gets.length, puts: puts.length });
    const blobBytes = gets.filter((g) => mapping[g.uri]!.served === "blob").reduce((a, g) => a + g.size, 0);
    expect(r.requests.find((o) => o.name === "blob.get")!.bytes).toBe(blobBytes);
    expect(r.verification.verifyFailures).toBe(0);
    expect(r.iterations).toMatchObject({ total: trace.records.length, failed: 0, aborted: 0 });

    // skipped records counted by reason
    expect(r.replay!.trace.skipped).toEqual(skipped);
    expect(r.replay!.trace).toMatchObject({ read: trace.records.length + 5, used: trace.records.length });

    // the schedule: each record's intended start is its offset / speed; none starts early
    expect(starts.size).toBe(trace.records.length);
    trace.records.forEach((rec, i) => {
      const s = starts.get(i)!;
      expect(s.intended).toBeCloseTo(rec.at / speed, 6);
      expect(s.actual).toBeGreaterThanOrEqual(s.intended);
    });
    // the report's timing is computed from those starts
    const t = r.replay!.timing;
    expect(t.started).toBe(trace.records.length);
    expect(t.onTimeShare).toBeCloseTo(t.onTime / t.started, 12);
    expect(t.scheduledSeconds).toBeCloseTo(trace.spanMs / speed / 1000, 9);

    // seeding is not in the replay's figures: the report counts the load's requests only
    expect(setup.length).toBeGreaterThan(0);
    expect(r.totals.requests).toBe(load.length);
    expect(r.replay!.seeding).toMatchObject({ objects: Object.keys(mapping).length, fromState: 0 });

    // a second run with the same --state pushes nothing: no set-up request at all
    const again = config(`${proxy.host}/${repo}`, { trace: files, maxRate: true, state: join(dir, "state") });
    const before = proxy.requests.length;
    const r2 = await runBench(again);
    expect(proxy.requests.slice(before).filter(ofRun(again.runId, BENCH_SETUP_USER_AGENT))).toEqual([]);
    expect(r2.replay!.seeding.fromState).toBe(Object.keys(mapping).length);
    expect(r2.iterations).toMatchObject({ total: trace.records.length, failed: 0 });
    expect(r2.replay!.timing.onTimeShare).toBeNull(); // --max-rate: no schedule
  });

  it("a malformed trace: one clear error naming the file and the record, exit 2, nothing sent", async () => {
    const dir = tmpDir("ferry-replay-bad-");
    const good = { ...synthTrace({ ...SYNTH_DEFAULTS, requests: 2 })[0]! };
    const { timestamp: _, ...noTime } = good;
    const cases: [string, string, RegExp][] = [
      ["json.json", '[{"http.request.method": "GET",', /^ferry: trace .*json\.json: not valid JSON/],
      [
        "missing.json",
        JSON.stringify([good, noTime]),
        /^ferry: trace .*missing\.json: record 2: missing "timestamp"$/,
      ],
      [
        "time.json",
        JSON.stringify([{ ...good, timestamp: "20/06/2017 02:41" }]),
        /^ferry: trace .*time\.json: record 1: "timestamp" is not an ISO 8601 time/,
      ],
    ];
    const seen = proxy.requests.length;
    for (const [name, text, expected] of cases) {
      const file = join(dir, name);
      writeFileSync(file, text);
      const out = await ferry(
        ["bench", `${proxy.host}/${uniqueRepo("replay")}`, "-s", "replay", "--trace", file],
        {
          FERRY_FROM_SOURCE: "1",
        },
      );
      expect(out.code, name).toBe(2);
      expect(out.stdout).toBe("");
      expect(out.stderr.trim().split("\n"), name).toEqual([expect.stringMatching(expected)]);
    }
    expect(proxy.requests.length).toBe(seen);
  });
});

describe("trace convert: record a registry's traffic, replay it against another", () => {
  it("distribution's own JSON log of pushes and pulls, replayed elsewhere, gives the same request mix", async () => {
    const a = await startDistribution({ auth: "none", jsonLog: true });
    const b = await startDistribution({ auth: "none" });
    const bProxy = await startFaultProxy(b.url, () => undefined);
    try {
      const dir = tmpDir("ferry-convert-");
      // a session on registry A: pushes (read back by digest), then pulls of the first image
      const repo = uniqueRepo("recorded");
      const push = await runBench(
        parseBenchConfig(`${a.host}/${repo}`, {
          scenario: "push",
          iterations: "3",
          vus: "1",
          layers: "2",
          layerSize: "4KiB-24KiB",
          runId: runId(),
          duration: "60s",
        }),
      );
      const img = push.created[0]!;
      await runBench(
        parseBenchConfig(`${a.host}/${repo}`, {
          scenario: "pull",
          image: [`${a.host}/${img.repository}:${img.tag}`],
          iterations: "2",
          vus: "1",
          runId: runId(),
          duration: "60s",
        }),
      );
      // what A's log says it served (its "response completed" JSON records). One snapshot of the log for
      // both the count here and the conversion: the registry may still be writing lines for the last
      // requests, and two reads of a growing file can differ.
      const snapshot = join(dir, "a.log");
      writeFileSync(snapshot, readFileSync(a.logFile, "utf8"));
      const logged = readFileSync(snapshot, "utf8")
        .split("\n")
        .filter((l) => l.includes('"msg":"response completed"'))
        .map((l) => JSON.parse(l) as Record<string, string | number>);
      const count = (f: (e: Record<string, string | number>) => boolean) => logged.filter(f).length;
      const uri = (e: Record<string, string | number>) => String(e["http.request.uri"]);
      const aGetManifests = count(
        (e) =>
          e["http.request.method"] === "GET" &&
          e["http.response.status"] === 200 &&
          /\/manifests\//.test(uri(e)),
      );
      const aGetBlobs = count(
        (e) =>
          e["http.request.method"] === "GET" &&
          e["http.response.status"] === 200 &&
          /\/blobs\/sha256:/.test(uri(e)),
      );
      const aPushes = count(
        (e) => e["http.request.method"] === "PUT" && /\/blobs\/uploads\/.*[?&]digest=/.test(uri(e)),
      );
      expect(aGetManifests).toBeGreaterThan(0);
      expect(aGetBlobs).toBeGreaterThan(0);
      expect(aPushes).toBeGreaterThan(0);

      const tracePath = join(dir, "recorded.json");
      const conv = await ferry(["bench", "trace", "convert", snapshot, "-o", tracePath], {
        FERRY_FROM_SOURCE: "1",
      });
      expect(conv.stderr).toBe("");
      expect(conv.code).toBe(0);
      expect(conv.stdout).toMatch(/names, references and clients replaced by keyed hashes/);
      const trace = await loadTrace([tracePath]);
      const n = (method: string, kind: string) =>
        trace.records.filter((r) => r.method === method && r.kind === kind).length;
      // the trace holds exactly what A served: every GET, and every push (each read back, so of a known size)
      expect(n("GET", "manifest")).toBe(aGetManifests);
      expect(n("GET", "blob")).toBe(aGetBlobs);
      expect(n("PUT", "blob")).toBe(aPushes);
      expect(readFileSync(tracePath, "utf8")).not.toContain(repo);

      // replayed against B: the same mix arrives there
      const replayId = runId();
      const r = await ferryJson<BenchReport>(
        [
          "bench",
          `${bProxy.host}/${uniqueRepo("replayed")}`,
          "-s",
          "replay",
          "--trace",
          tracePath,
          "--speed",
          "4",
          "--run-id",
          replayId,
          "--json",
        ],
        { FERRY_FROM_SOURCE: "1" },
      );
      const load = bProxy.requests.filter(ofRun(replayId, BENCH_USER_AGENT)).map(kindOf);
      expect(load.filter((k) => k.startsWith("manifest "))).toHaveLength(aGetManifests);
      expect(load.filter((k) => k.startsWith("blob "))).toHaveLength(aGetBlobs);
      expect(load.filter((k) => k === "push")).toHaveLength(aPushes);
      expect(r.iterations.failed).toBe(0);
    } finally {
      await bProxy.close();
      await a.stop();
      await b.stop();
    }
  });
});

describe("replay, distributed", () => {
  it("--workers 2 --via-workflow: the trace split by client, every record replayed once, one merged report", async () => {
    const dir = tmpDir("ferry-replay-wf-");
    const { files } = traceFiles(dir);
    const trace = await loadTrace(files);
    const id = runId();
    const r = await ferryJson<BenchReport>(
      [
        "bench",
        `${proxy.host}/${uniqueRepo("replay")}`,
        "-s",
        "replay",
        "--trace",
        files[0]!,
        "--trace",
        files[1]!,
        "--speed",
        "20",
        "--workers",
        "2",
        "--via-workflow",
        "--run-id",
        id,
        "--json",
      ],
      { FERRY_FROM_SOURCE: "1" },
    );
    expect(r.workers).toBe(2);
    expect(r.viaWorkflow).toBe(true);
    expect(r.iterations).toMatchObject({ total: trace.records.length, failed: 0 });
    expect(r.replay!.timing.started).toBe(trace.records.length);
    const load = proxy.requests.filter(ofRun(id, BENCH_USER_AGENT));
    expect(load.filter((q) => kindOf(q) === "push")).toHaveLength(
      trace.records.filter((x) => x.method === "PUT").length,
    );
    // each trace client's requests came from one worker
    const workerOf = new Map<string, Set<string>>();
    for (const q of load) {
      const m = /worker=(\d+) client=(\d+)/.exec(ua(q))!;
      workerOf.set(m[2]!, (workerOf.get(m[2]!) ?? new Set()).add(m[1]!));
    }
    expect(workerOf.size).toBe(6);
    for (const ws of workerOf.values()) expect(ws.size).toBe(1);
    expect(new Set([...workerOf.values()].flatMap((s) => [...s]))).toEqual(new Set(["0", "1"]));
  });

  it("on AWS: the parts go to the staging bucket, the execution input carries the configuration only", async () => {
    const dir = tmpDir("ferry-replay-aws-");
    const { files } = traceFiles(dir);
    const trace = await loadTrace(files);
    const s3 = await startS3("ferry-replay");
    const restore = fanoutEnvironment(s3, proxy.host);
    const arn = FANOUT_ARN;
    const { sfn, commands, settled } = localFanout();
    try {
      const c = config(`${proxy.host}/${uniqueRepo("replay")}`, {
        trace: files,
        speed: "20",
        workers: "2",
        stateMachine: arn,
        stagingBucket: s3.bucket,
      });
      const r = await runBench(c, {
        aws: { stateMachineArn: arn, sfn, pollMs: 50, s3Endpoint: s3.endpoint, startLeadMs: 0 },
      });
      await settled();
      const started = commands.find((x) => x.name === "StartExecutionCommand")?.input.input as string;
      const store = new S3StagingStore({ bucket: s3.bucket, endpoint: s3.endpoint });
      expect(await store.list(`bench/${c.runId}/trace/`)).toEqual(
        [0, 1].map((w) => `bench/${c.runId}/trace/worker-${w}.json`),
      );
      // the state machine's input: the configuration once, the worker indices — not the trace
      expect(started.length).toBeLessThan(4096);
      expect(started).not.toMatch(/blobs\/|manifests\//);
      expect(r.workers).toBe(2);
      expect(r.iterations).toMatchObject({ total: trace.records.length, failed: 0 });
      expect(r.replay!.timing.started).toBe(trace.records.length);
    } finally {
      restore();
      await s3.stop();
    }
  });
});

describe("compare and the HTML pages", () => {
  it("two replays of one trace side by side (text and HTML); a replay of another part of the trace is refused", async () => {
    const dir = tmpDir("ferry-compare-");
    const { files } = traceFiles(dir);
    const target = `${proxy.host}/${uniqueRepo("replay")}`;
    const run = async (name: string, extra: string[]) => {
      const out = await ferry(
        ["bench", target, "-s", "replay", "--trace", files[0]!, "--speed", "20", "--json", ...extra],
        { FERRY_FROM_SOURCE: "1" },
      );
      expect(out.code, out.stderr).toBe(0);
      writeFileSync(join(dir, name), out.stdout);
      return join(dir, name);
    };
    const html = join(dir, "run.html");
    const a = await run("a.json", ["--html", html]);
    const b = await run("b.json", []);
    const page = readFileSync(html, "utf8");
    expect(page).toContain("Trace replay");
    expect(page).toContain("Object popularity");
    expect(page).not.toMatch(/<script[^>]+src=|<link[^>]+href=/i);

    const cmpHtml = join(dir, "compare.html");
    const cmp = await ferry(["bench", "compare", a, b, "--html", cmpHtml], { FERRY_FROM_SOURCE: "1" });
    expect(cmp.stderr).toBe("");
    expect(cmp.code).toBe(0);
    expect(cmp.stdout).toMatch(/^ferry bench compare: replay/);
    expect(cmp.stdout).toMatch(/replay schedule\n\s+on time/);
    expect(cmp.stdout).toMatch(/iteration get\.blob\n\s+count\s+(\d+)\s+\1\s/);
    expect(readFileSync(cmpHtml, "utf8")).not.toMatch(/<script[^>]+src=/i);

    const c = await run("c.json", ["--limit-requests", "100"]);
    const refused = await ferry(["bench", "compare", a, c], { FERRY_FROM_SOURCE: "1" });
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe("");
    expect(refused.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(/^ferry: not comparable: .*a\.json and .*c\.json replayed different traces/),
    ]);
  });
});
