import { createRequire } from "node:module";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { runOnAws } from "../../../load/aws.ts";
import { parseBenchConfig, stateMachineRegion } from "../../../load/config.ts";
import definition from "../../../load/fanout.asl.json" with { type: "json" };
import { fanoutDefinition, runFanout } from "../../../load/fanout.ts";
import { renderHtml } from "../../../load/html.ts";
import { Metrics } from "../../../load/metrics.ts";
import { buildReport, formatReport } from "../../../load/report.ts";
import { makeAggregateHandler, makeWorkerHandler, readResult } from "../../../load/results.ts";
import { mergeWorkerResults, type WorkerInput, type WorkerResult } from "../../../load/runner.ts";
import { syntheticImage } from "../../../load/synth.ts";
import { seededStream } from "../../../shared/sample/seeded.ts";
import { FsStagingStore } from "../../../shared/staging/fs.ts";
import { putJson } from "../../../shared/staging/types.ts";
import { tmpDir } from "../../helpers/tmp.ts";

async function bytesOf(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(Buffer.from(c as Buffer));
  return Buffer.concat(parts);
}

describe("synthetic content", () => {
  it("is deterministic and seekable from any offset, for any compressibility", async () => {
    for (const c of [0, 0.3, 0.5, 1]) {
      const size = 200_000 + 13;
      const all = await bytesOf(seededStream("seed", size, 0, c));
      expect(all.length).toBe(size);
      for (const offset of [0, 1, 15, 16, 17, 65_535, 65_536, 100_000, size - 1])
        expect((await bytesOf(seededStream("seed", size, offset, c))).equals(all.subarray(offset))).toBe(
          true,
        );
    }
  });

  it("compresses as configured", async () => {
    const size = 1024 * 1024;
    const random = gzipSync(await bytesOf(seededStream("x", size, 0, 0))).length;
    const half = gzipSync(await bytesOf(seededStream("x", size, 0, 0.5))).length;
    expect(random).toBeGreaterThan(size * 0.99);
    expect(half / size).toBeGreaterThan(0.45);
    expect(half / size).toBeLessThan(0.55);
  });

  it("reuses pool layers across iterations and makes the others fresh", async () => {
    const shape = {
      layers: 4,
      layerSizeMin: 1000,
      layerSizeMax: 5000,
      compressibility: 0,
      reuse: 0.5,
      repos: 1,
      concurrency: 2,
    };
    const pool = new Map();
    const a = await syntheticImage(shape, "run1", "i0", pool);
    const b = await syntheticImage(shape, "run1", "i1", pool);
    const da = a.layers.map((l) => l.desc.digest);
    const db = b.layers.map((l) => l.desc.digest);
    expect(da.slice(0, 2)).toEqual(db.slice(0, 2));
    expect(da.slice(2).some((d) => db.includes(d))).toBe(false);
    expect(a.layers.map((l) => l.pooled)).toEqual([true, true, false, false]);
    for (const l of a.layers) expect(l.desc.size).toBeGreaterThanOrEqual(1000);
    expect(a.manifest.digest).not.toBe(b.manifest.digest);
  });
});

/** A worker result with known values, as a real worker would serialise it. */
function fakeWorker(input: WorkerInput): WorkerResult {
  const m = new Metrics();
  for (let i = 1; i <= 10; i++) {
    m.observe({
      op: "manifest.get",
      method: "GET",
      url: "u",
      status: 200,
      ms: i * (input.worker + 1),
      attempt: 0,
    });
    m.iteration("manifest", i * (input.worker + 1) + 0.5);
  }
  m.count("blobsVerified", input.worker);
  return JSON.parse(JSON.stringify({ ...m.result(), created: [] }));
}

describe("Step Functions fan-out", () => {
  it("has exactly the two task placeholders, and substitutes them", () => {
    const text = JSON.stringify(definition);
    expect([...text.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]).sort()).toEqual([
      "BenchAggregateFunctionArn",
      "BenchWorkerFunctionArn",
    ]);
    const def = JSON.stringify(
      fanoutDefinition({ BenchWorkerFunctionArn: "arn:w", BenchAggregateFunctionArn: "arn:a" }),
    );
    expect(def).toContain('"Resource":"arn:w"');
    expect(def).toContain('"Resource":"arn:a"');
    expect(() => fanoutDefinition({ BenchWorkerFunctionArn: "arn:w" })).toThrow(/BenchAggregateFunctionArn/);
  });

  it("is valid Amazon States Language", () => {
    const validate = createRequire(import.meta.url)("asl-validator") as (
      d: unknown,
      o?: object,
    ) => { isValid: boolean; errorsText: () => string };
    const r = validate(fanoutDefinition());
    expect(r.errorsText()).toBe("");
    expect(r.isValid).toBe(true);
  });

  it("runs N workers through the Map, hands their results over in the staging store, merges them exactly", async () => {
    const config = parseBenchConfig("localhost:5000", { scenario: "manifest", vus: "3", workers: "3" });
    const inputs: WorkerInput[] = [0, 1, 2].map((worker) => ({ config, worker, workers: 3, targets: [] }));
    const results = inputs.map(fakeWorker);
    const store = new FsStagingStore(tmpDir("ferry-fanout-"));
    const seen: number[] = [];
    const out = await runFanout(
      inputs,
      async (i) => {
        seen.push(i.worker);
        const resultKey = `bench/${config.runId}/worker-${i.worker}.json`;
        await putJson(store, resultKey, results[i.worker]);
        return { worker: i.worker, resultKey };
      },
      makeAggregateHandler(store),
    );
    expect(seen.sort()).toEqual([0, 1, 2]);
    // the state machine carries keys only; the merge is in the store
    expect(out).toEqual({ resultKey: `bench/${config.runId}/result.json` });
    expect(await store.list(`bench/${config.runId}/`)).toEqual(
      ["result.json", "worker-0.json", "worker-1.json", "worker-2.json"].map(
        (f) => `bench/${config.runId}/${f}`,
      ),
    );
    const merged = await readResult(store, out.resultKey);
    expect(merged).toEqual(mergeWorkerResults(results));
    expect(merged.workers).toBe(3);
    expect(merged.requests["manifest.get"]!.count).toBe(30);
    expect(merged.counters.blobsVerified).toBe(3);
  });

  it("the worker refuses a malformed event with a clear error, before any load", async () => {
    const worker = makeWorkerHandler({ store: new FsStagingStore(tmpDir("ferry-fanout-")) });
    const config = parseBenchConfig("localhost:5000", { scenario: "manifest" });
    for (const bad of [
      undefined,
      {},
      { config: {}, worker: 0, workers: 1, targets: [] },
      { config, worker: 1, workers: 1, targets: [] },
      { config: { ...config, runId: "../x" }, worker: 0, workers: 1, targets: [] },
      { config, worker: 0, workers: 1 },
    ])
      await expect(worker(bad as never)).rejects.toThrow(/^bench worker: expected \{ config/);
  });

  it("the Aggregate state refuses bad input with a clear error", async () => {
    const store = new FsStagingStore(tmpDir("ferry-fanout-"));
    const aggregate = makeAggregateHandler(store);
    await expect(aggregate({} as never)).rejects.toThrow(/expected \{ results: \[\{ resultKey \}/);
    await expect(aggregate({ results: [{ resultKey: 42 }] } as never)).rejects.toThrow(/expected/);
    await expect(
      aggregate({
        results: [{ resultKey: "bench/a/worker-0.json" }, { resultKey: "bench/b/worker-1.json" }],
      }),
    ).rejects.toThrow(/results of one run under bench\/<runId>\//);
    await expect(aggregate({ results: [{ resultKey: "transfers/x/plan.json" }] })).rejects.toThrow(/bench\//);
    await expect(aggregate({ results: [{ resultKey: "bench/a/worker-0.json" }] })).rejects.toThrow(
      /bench\/a\/worker-0\.json does not exist/,
    );
  });
});

describe("the fan-out on AWS (Step Functions stood in for)", () => {
  const arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:ferry-bench-fanout";
  const config = parseBenchConfig("localhost:5000", { scenario: "manifest", vus: "2", workers: "2" });
  const inputs: WorkerInput[] = [0, 1].map((worker) => ({ config, worker, workers: 2, targets: [] }));
  const sfnAnswering = (describe: Record<string, unknown>) => ({
    send: async (c: { input: unknown }) =>
      c.constructor.name === "StartExecutionCommand" ? { executionArn: `${arn}:x` } : describe,
  });

  it("a failed execution ends with its status, error and cause", async () => {
    const sfn = sfnAnswering({ status: "FAILED", error: "Lambda.Unknown", cause: "worker timed out" });
    await expect(runOnAws(inputs, { stateMachineArn: arn, sfn, pollMs: 1 })).rejects.toThrow(
      /ended FAILED: Lambda\.Unknown \(worker timed out\)/,
    );
  });

  it("a start that is refused names the state machine", async () => {
    const sfn = {
      send: async () => {
        throw new Error("ExecutionAlreadyExists: Execution Already Exists");
      },
    };
    await expect(runOnAws(inputs, { stateMachineArn: arn, sfn, pollMs: 1 })).rejects.toThrow(
      /cannot start arn:aws:states:.*ferry-bench-fanout: ExecutionAlreadyExists/,
    );
  });

  it("refuses an execution input over 256 KiB, and an ARN that is not a state machine", async () => {
    // the Map's output lists { worker, resultKey } for each worker (~70 bytes): about 3,500 fit
    const n = 5000;
    const many = Array.from({ length: n }, (_, worker) => ({ ...inputs[0]!, worker, workers: n }));
    await expect(runOnAws(many, { stateMachineArn: arn, sfn: sfnAnswering({}), pollMs: 1 })).rejects.toThrow(
      /5000 workers make a \d+-byte state payload, over Step Functions' 256 KiB: use fewer --workers/,
    );
    expect(stateMachineRegion(arn)).toBe("eu-west-1");
    expect(() => stateMachineRegion("arn:aws:states:eu-west-1:123456789012:execution:x:y")).toThrow(
      /expected arn:aws:states:<region>/,
    );
  });
});

describe("reports", () => {
  it("renders one self-contained HTML file with uPlot inlined and the data embedded", () => {
    const config = parseBenchConfig("localhost:5000", { scenario: "manifest" });
    const result = mergeWorkerResults([fakeWorker({ config, worker: 0, workers: 1, targets: [] })]);
    const report = buildReport(config, result, { images: ["localhost:5000/app:</script><b>x"] });
    const html = renderHtml(report);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+href=/i);
    expect(html).not.toMatch(/@import|url\(\s*["']?https?:/i);
    expect(html).toContain("uPlot");
    expect(html).not.toContain("</script><b>x");
    const data = /<script id="data" type="application\/json">(.*?)<\/script>/s.exec(html)?.[1];
    const parsed = JSON.parse(data!) as { requests: Record<string, { count: number[] }> };
    expect(parsed.requests["manifest.get"]!.count.reduce((a, b) => a + b, 0)).toBe(10);
    const text = formatReport(report);
    expect(text).toContain("manifest.get");
    expect(text).toContain("errors: none");
  });
});
