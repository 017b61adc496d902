/** A file the user names to the load tester that cannot be read: one usage error naming it. */
import { describe, expect, it } from "vitest";
import { readReport } from "../../../load/compare.ts";
import { loadTrace } from "../../../load/trace.ts";
import { convertLogs } from "../../../load/trace-convert.ts";

const missing = "/nonexistent/ferry-input.json";

describe("unreadable inputs", () => {
  it.each([
    ["a trace", () => loadTrace([missing]), `cannot read trace ${missing}: ENOENT`],
    ["a registry log", () => convertLogs([missing]), `cannot read log ${missing}: ENOENT`],
    ["a report", () => readReport(missing), `cannot read ${missing}: ENOENT`],
  ])("%s: a usage error naming the file", async (_, read, message) => {
    await expect(read()).rejects.toMatchObject({ code: "USAGE", message: expect.stringContaining(message) });
  });
});
