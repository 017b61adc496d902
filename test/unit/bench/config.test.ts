import { describe, expect, it } from "vitest";
import {
  type BenchFlags,
  parseBenchConfig,
  parseDuration,
  parseMix,
  parseTarget,
  workerShare,
} from "../../../load/config.ts";
import { FerryError } from "../../../shared/registry/errors.ts";

function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FerryError);
    expect((e as FerryError).code).toBe("USAGE");
    const msg = (e as Error).message;
    expect(msg).not.toContain("\n");
    return msg;
  }
  throw new Error("expected a usage error");
}

const parse = (flags: BenchFlags, target: string | undefined = "localhost:5000") =>
  parseBenchConfig(target, flags);

describe("ferry bench options", () => {
  it("has sensible defaults: pull, closed model with 4 VUs for 10 s, verification and read-back on", () => {
    const c = parse({});
    expect(c).toMatchObject({
      registry: "localhost:5000",
      repository: "ferry-bench",
      scenario: "pull",
      durationMs: 10_000,
      model: { kind: "closed", vus: 4, thinkMs: 0, rampUpMs: 0 },
      verify: true,
      readback: true,
      cleanup: false,
      retries: 0,
      workers: 1,
    });
    expect(c.runId).toMatch(/^[a-z0-9]+$/);
  });

  it("parses targets: a registry, or a registry and repository", () => {
    expect(parseTarget("localhost:5000")).toEqual({ registry: "localhost:5000" });
    expect(parseTarget("127.0.0.1:5000/team/app")).toEqual({
      registry: "127.0.0.1:5000",
      repository: "team/app",
    });
    expect(parseTarget("docker://registry.example.com/app")).toEqual({
      registry: "registry.example.com",
      repository: "app",
    });
    expect(parseTarget("myregistry")).toEqual({ registry: "myregistry" });
  });

  it.each([
    [undefined, /needs a target/],
    ["", /needs a target/],
    ["http://localhost:5000", /not a URL/],
    ["localhost:5000/app:v1", /not an image/],
    ["app/repo", /must start with a registry host/],
    ["localhost:99999", /not a registry host/],
    ["localhost:5000/UPPER", /lowercase/],
  ])("rejects target %j", (target, message) => {
    expect(usageError(() => parseBenchConfig(target, {}))).toMatch(message);
  });

  it.each<[BenchFlags, RegExp]>([
    [{ duration: "0" }, /--duration must be more than zero/],
    [{ duration: "0s" }, /--duration must be more than zero/],
    [{ duration: "-5s" }, /--duration must be more than zero/],
    [{ duration: "soon" }, /--duration: invalid duration "soon"/],
    [{ rate: "-3" }, /--rate must be at least 0/],
    [{ rate: "0" }, /--rate must be more than zero/],
    [{ rate: "abc" }, /--rate: expected a number/],
    [{ vus: "0" }, /--vus must be at least 1/],
    [{ vus: "-2" }, /--vus must be at least 1/],
    [{ vus: "2.5" }, /--vus: expected a whole number/],
    [{ iterations: "0" }, /--iterations must be at least 1/],
    [
      { scenario: "stress" },
      /unknown scenario "stress" \(one of pull, push, mixed, manifest, catalog, tags, replay\)/,
    ],
    [{ rate: "10", vus: "3" }, /not both/],
    [{ rate: "10", think: "1s" }, /closed model/],
    [{ maxVus: "5" }, /open model/],
    [{ think: "-1s" }, /--think must be zero or more/],
    [{ rampUp: "20s", duration: "10s" }, /--ramp-up must be shorter than --duration/],
    [{ reuse: "1.5" }, /--reuse must be between 0 and 1/],
    [{ compressibility: "-0.1" }, /--compressibility must be between 0 and 1/],
    [{ layerSize: "4MiB-1MiB" }, /min ≤ max/],
    [{ layerSize: "0" }, /--layer-size must be at least 1 byte/],
    [{ layers: "0" }, /--layers must be at least 1/],
    [{ manifestOp: "put" }, /--manifest-op must be head, get or both/],
    [{ mix: "pull=1" }, /--mix applies to --scenario mixed/],
    [{ scenario: "mixed", mix: "pull=0,push=0" }, /at least one positive weight/],
    [{ scenario: "mixed", mix: "pull=1,delete=2" }, /unknown scenario "delete"/],
    [{ scenario: "push", image: ["localhost:5000/app:v1"] }, /--image applies to/],
    [{ image: ["other:5000/app:v1"] }, /not on the target registry/],
    [{ workers: "0" }, /--workers must be at least 1/],
    [{ workers: "8", vus: "4" }, /at least one VU per worker/],
    [{ viaWorkflow: true }, /--via-workflow fans out --workers N/],
    [{ timeout: "0" }, /--timeout must be more than zero/],
    [{ platform: "linux" }, /--platform/],
  ])("rejects %j", (flags, message) => {
    expect(usageError(() => parse(flags))).toMatch(message);
  });

  it("parses durations and the open model", () => {
    expect(parseDuration("1.5s", "--d")).toBe(1500);
    expect(parseDuration("250ms", "--d")).toBe(250);
    expect(parseDuration("2m", "--d")).toBe(120_000);
    expect(parseDuration("3", "--d")).toBe(3000);
    expect(parse({ rate: "12.5", maxVus: "7", duration: "2s" }).model).toEqual({
      kind: "open",
      rate: 12.5,
      maxVus: 7,
    });
  });

  it("parses the push shape", () => {
    const c = parse({
      scenario: "push",
      layers: "5",
      layerSize: "256KiB-4MiB",
      reuse: "0.4",
      repos: "3",
      chunkSize: "1MiB",
    });
    expect(c.push).toMatchObject({
      layers: 5,
      layerSizeMin: 256 * 1024,
      layerSizeMax: 4 * 1024 * 1024,
      reuse: 0.4,
      repos: 3,
      chunkSize: 1024 * 1024,
    });
  });

  it("parses mixes in either spelling", () => {
    expect(parseMix("pull=9,push=1")).toEqual([
      { kind: "pull", weight: 9 },
      { kind: "push", weight: 1 },
    ]);
    expect(parseMix("manifest:3, catalog:1")).toEqual([
      { kind: "manifest", weight: 3 },
      { kind: "catalog", weight: 1 },
    ]);
  });

  it("splits VUs, rate and iterations over workers without losing any", () => {
    const c = parse({ vus: "10", iterations: "101", workers: "3" });
    const shares = [0, 1, 2].map((i) => workerShare(c, i, 3));
    expect(shares.map((s) => (s.model.kind === "closed" ? s.model.vus : 0))).toEqual([4, 3, 3]);
    expect(shares.map((s) => s.iterations)).toEqual([34, 34, 33]);
    const o = parse({ rate: "90", maxVus: "10", workers: "3" });
    const rates = [0, 1, 2].map((i) => workerShare(o, i, 3).model);
    expect(rates.every((m) => m.kind === "open" && m.rate === 30)).toBe(true);
  });
});
