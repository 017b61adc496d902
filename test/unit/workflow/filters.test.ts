import { describe, expect, it } from "vitest";
import {
  matchesAny,
  nameSelected,
  parseRange,
  parseVersion,
  satisfies,
  selectTags,
} from "../../../shared/workflow/filters.ts";

const sat = (tag: string, range: string) => satisfies(parseVersion(tag)!, parseRange(range));

describe("tag filters", () => {
  it("semver ranges: comparators, caret, tilde, x-ranges, hyphens, alternatives", () => {
    expect(sat("1.2.3", ">=1.2.0 <2")).toBe(true);
    expect(sat("2.0.0", ">=1.2.0 <2")).toBe(false);
    expect(sat("v1.9.9", "^1.4")).toBe(true);
    expect(sat("1.3.9", "^1.4")).toBe(false);
    expect(sat("0.2.5", "^0.2.1")).toBe(true);
    expect(sat("0.3.0", "^0.2.1")).toBe(false);
    expect(sat("2.0.9", "~2.0.1")).toBe(true);
    expect(sat("2.1.0", "~2.0.1")).toBe(false);
    expect(sat("1.7.0", "1.x")).toBe(true);
    expect(sat("2.0.0", "1.x")).toBe(false);
    expect(sat("1.5.0", "1.0 - 2.0")).toBe(true);
    expect(sat("2.0.9", "1.0 - 2.0")).toBe(true); // as npm: <=2.0 means <2.1.0
    expect(sat("2.1.0", "1.0 - 2.0")).toBe(false);
    expect(sat("3.1.0", "<2 || >=3.1")).toBe(true);
    expect(sat("5.0.0", "*")).toBe(true);
    expect(sat("1", ">0.9")).toBe(true);
  });

  it("pre-releases match only a range naming one of the same version", () => {
    expect(sat("1.3.0-rc.1", "^1.2")).toBe(false);
    expect(sat("1.3.0-rc.1", ">=1.3.0-rc.0 <1.4")).toBe(true);
    expect(sat("2.0.0-beta", "<2")).toBe(false);
  });

  it("selects with include/exclude (whole names), semver and latest N, highest first", () => {
    const tags = ["latest", "v1.0.0", "v1.1.0", "v1.10.0", "v2.0.0-rc1", "v2.0.0", "dev-1", "1.2"];
    expect(selectTags(tags, { include: ["v.*"], exclude: [".*-rc.*"] })).toEqual([
      "v1.0.0",
      "v1.1.0",
      "v1.10.0",
      "v2.0.0",
    ]);
    expect(selectTags(tags, { semver: "^1" })).toEqual(["v1.10.0", "1.2", "v1.1.0", "v1.0.0"]);
    expect(selectTags(tags, { latest: 2 })).toEqual(["v2.0.0", "v2.0.0-rc1"]);
    expect(selectTags(tags, { include: ["dev"] })).toEqual([]); // whole-name match
    expect(nameSelected("team/app", ["team/.*"], [".*/legacy"])).toBe(true);
    expect(nameSelected("team/legacy", ["team/.*"], [".*/legacy"])).toBe(false);
    expect(matchesAny("v1.2.3", ["v\\d+\\.\\d+\\.\\d+"])).toBe(true);
    expect(matchesAny("v1.2.3-rc", ["v\\d+\\.\\d+\\.\\d+"])).toBe(false);
  });

  it("refuses malformed ranges", () => {
    expect(() => parseRange(">=banana")).toThrow(/not a version/);
  });
});
