import { describe, expect, it } from "vitest";
import { parseHtpasswd } from "../../../serve/auth.ts";
import { paginate } from "../../../serve/handlers/listing.ts";
import {
  isValidName,
  isValidTag,
  parseContentRange,
  parseDigest,
  parseRange,
  requireDigest,
} from "../../../serve/names.ts";
import { Layout } from "../../../serve/storage/layout.ts";
import { rangeHeader } from "../../../serve/storage/uploads.ts";

const HEX = "a".repeat(64);

describe("repository names", () => {
  it.each(["a", "library/ubuntu", "a.b/c_d/e__f/g-h/i---j", "0", "x".repeat(255)])("accepts %s", (name) => {
    expect(isValidName(name)).toBe(true);
  });
  it.each([
    "",
    "..",
    "../x",
    "a/../b",
    "a/./b",
    "/a",
    "a/",
    "a//b",
    "A",
    "a/B",
    "%2e%2e",
    "a%2fb",
    "a b",
    "-a",
    "a-",
    "a._b",
    "a...b",
    "_a",
    "x".repeat(256),
  ])("refuses %j", (name) => {
    expect(isValidName(name)).toBe(false);
  });
});

describe("tags and digests", () => {
  it("checks tags", () => {
    expect(isValidTag("latest")).toBe(true);
    expect(isValidTag("_v1.2-rc")).toBe(true);
    expect(isValidTag("A".repeat(128))).toBe(true);
    for (const bad of ["", ".x", "-x", "a/b", "..", "a:b", "A".repeat(129)])
      expect(isValidTag(bad)).toBe(false);
  });

  it("parses sha256 and sha512 digests only", () => {
    expect(parseDigest(`sha256:${HEX}`)).toEqual({ algorithm: "sha256", hex: HEX, value: `sha256:${HEX}` });
    expect(parseDigest(`sha512:${"b".repeat(128)}`)?.algorithm).toBe("sha512");
    for (const bad of [
      `sha256:${HEX.toUpperCase()}`,
      `sha256:${HEX}0`,
      `md5:${HEX}`,
      HEX,
      "sha256:../../x",
    ]) {
      expect(parseDigest(bad)).toBeUndefined();
    }
    expect(() => requireDigest(undefined)).toThrow(
      expect.objectContaining({ code: "DIGEST_INVALID", status: 400 }),
    );
  });
});

describe("ranges", () => {
  it("parses upload Content-Range", () => {
    expect(parseContentRange("0-99")).toEqual({ start: 0, end: 99 });
    expect(parseContentRange("bytes 5-9")).toEqual({ start: 5, end: 9 });
    expect(parseContentRange("bytes=5-9/100")).toEqual({ start: 5, end: 9 });
    expect(parseContentRange("9-5")).toBeUndefined();
    expect(parseContentRange("x-5")).toBeUndefined();
  });

  it("interprets GET Range against a size", () => {
    expect(parseRange(undefined, 10)).toEqual({ kind: "full" });
    expect(parseRange("bytes=2-4", 10)).toEqual({ kind: "partial", start: 2, end: 4 });
    expect(parseRange("bytes=2-", 10)).toEqual({ kind: "partial", start: 2, end: 9 });
    expect(parseRange("bytes=8-100", 10)).toEqual({ kind: "partial", start: 8, end: 9 });
    expect(parseRange("bytes=-3", 10)).toEqual({ kind: "partial", start: 7, end: 9 });
    expect(parseRange("bytes=-30", 10)).toEqual({ kind: "partial", start: 0, end: 9 });
    expect(parseRange("bytes=10-", 10)).toEqual({ kind: "unsatisfiable" });
    expect(parseRange("bytes=0-1,3-4", 10)).toEqual({ kind: "full" });
    expect(parseRange("items=0-1", 10)).toEqual({ kind: "full" });
  });

  it("formats the session Range like distribution", () => {
    expect(rangeHeader(0)).toBe("0-0");
    expect(rangeHeader(1)).toBe("0-0");
    expect(rangeHeader(100)).toBe("0-99");
  });
});

describe("pagination", () => {
  const items = ["a", "b", "c", "d", "e"];
  const q = (s: string) => new URLSearchParams(s);

  it("pages with n and last and links to the next page", () => {
    expect(paginate(items, q(""), "/p")).toEqual({ page: items, link: undefined });
    expect(paginate(items, q("n=2"), "/p")).toEqual({
      page: ["a", "b"],
      link: '</p?last=b&n=2>; rel="next"',
    });
    expect(paginate(items, q("n=2&last=b"), "/p")).toEqual({
      page: ["c", "d"],
      link: '</p?last=d&n=2>; rel="next"',
    });
    expect(paginate(items, q("n=2&last=d"), "/p")).toEqual({ page: ["e"], link: undefined });
    expect(paginate(items, q("n=5"), "/p")).toEqual({ page: items, link: undefined });
    expect(paginate(items, q("last=zzz"), "/p")).toEqual({ page: [], link: undefined });
    expect(paginate(items, q("n=0"), "/p")).toEqual({ page: [], link: undefined });
  });

  it("refuses a bad n", () => {
    for (const n of ["-1", "x", "1.5"]) {
      expect(() => paginate(items, q(`n=${n}`), "/p")).toThrow(
        expect.objectContaining({ code: "PAGINATION_NUMBER_INVALID" }),
      );
    }
  });
});

describe("htpasswd", () => {
  it("reads bcrypt entries and skips comments", () => {
    const hash = `$2y$05$${"a".repeat(53)}`;
    const users = parseHtpasswd(`# comment\n\nferry:${hash}\r\nother:${hash.replace("$2y$", "$2b$")}\n`);
    expect([...users.keys()]).toEqual(["ferry", "other"]);
  });
  it("refuses other hash formats", () => {
    expect(() => parseHtpasswd("ferry:$apr1$abc$def\n")).toThrow(/bcrypt/);
    expect(() => parseHtpasswd("no-colon\n")).toThrow(/malformed/);
  });
});

describe("storage layout", () => {
  it("keeps every path under the root", () => {
    const layout = new Layout("/srv/registry");
    const digest = parseDigest(`sha256:${HEX}`)!;
    expect(layout.blob(digest)).toBe(`/srv/registry/blobs/sha256/aa/${HEX}`);
    expect(layout.manifestLink("a/b", digest)).toBe(
      `/srv/registry/repositories/a/b/_manifests/revisions/sha256/${HEX}`,
    );
    expect(layout.tag("a/b", "v1")).toBe("/srv/registry/repositories/a/b/_manifests/tags/v1");
    expect(() => layout.repo("../../etc")).toThrow(/escapes/);
    expect(() => layout.inside("..", "x")).toThrow(/escapes/);
  });
});
