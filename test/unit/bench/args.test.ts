/**
 * The benchmarks' command lines (bench/args.ts): every script reads its options one way, and a mistake
 * ends it before any work with one line naming what was wrong, the usage, and exit status 2.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BenchUsageError, parseBenchArgs, usage } from "../../../bench/args.ts";

const SPEC = {
  runs: { kind: "count", default: "3" },
  rate: { kind: "number", default: "0.5", value: "P" },
  only: { kind: "list", default: "1,2" },
  sizes: { kind: "counts", default: "250,1000" },
  json: { kind: "path", value: "FILE" },
  disk: { kind: "flag" },
} as const;

describe("bench options", () => {
  it("reads each kind, with its default when not given", () => {
    expect(parseBenchArgs(SPEC, [])).toEqual({
      runs: 3,
      rate: 0.5,
      only: ["1", "2"],
      sizes: [250, 1000],
      json: undefined,
      disk: false,
    });
    expect(
      parseBenchArgs(SPEC, [
        "--runs",
        "7",
        "--rate=0",
        "--only",
        "3,,5",
        "--sizes",
        "2000",
        "--json",
        "out.json",
        "--disk",
      ]),
    ).toEqual({ runs: 7, rate: 0, only: ["3", "5"], sizes: [2000], json: "out.json", disk: true });
  });

  it.each([
    [["--run", "5"], "Unknown option '--run'"],
    [["--runs", "0"], '--runs takes a positive whole number, not "0"'],
    [["--runs", "2.5"], '--runs takes a positive whole number, not "2.5"'],
    [["--runs", "x"], '--runs takes a positive whole number, not "x"'],
    [["--rate=-1"], '--rate takes a number ≥ 0, not "-1"'],
    [["--sizes", "250,1e3"], '--sizes takes positive whole numbers, not "250,1e3"'],
    [["--sizes", "0"], '--sizes takes positive whole numbers, not "0"'],
    [["--runs"], "Option '--runs <value>' argument missing"],
    [["--json", ""], "--json needs a value"],
    [["5"], "Unexpected argument '5'"],
  ])("refuses %j: %s", (argv, message) => {
    expect(() => parseBenchArgs(SPEC, argv)).toThrow(BenchUsageError);
    expect(() => parseBenchArgs(SPEC, argv)).toThrow(message);
  });

  it("shows the usage from the same declaration", () => {
    expect(usage("npm run bench --", SPEC)).toBe(
      "usage: npm run bench -- [--runs N] [--rate P] [--only A,B] [--sizes A,B] [--json FILE] [--disk]",
    );
  });

  it("a script given a wrong option stops before any work: one line, its usage, exit 2, no stack trace", async () => {
    const script = join(import.meta.dirname, "..", "..", "..", "bench", "cold-start.ts");
    const { code, stdout, stderr } = await new Promise<{
      code: number | null;
      stdout: string;
      stderr: string;
    }>((resolve) => {
      const child = execFile(
        process.execPath,
        [script, "--runs", "5", "--only", "nope"],
        (_e, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
      );
    });
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr.trim().split("\n")).toEqual([
      expect.stringMatching(/^npm run bench:cold --: --only names functions \(resolve, .*\), not nope$/),
      expect.stringMatching(/^usage: npm run bench:cold -- \[--runs N\]/),
    ]);
  });
});
