/**
 * The `--from-file` list format and the failure lists written in it (shared/transfer/copy-list.ts): a
 * failure list always parses back to exactly its failed pairs, whatever the errors say, and keeps no
 * upload session, query string or control character.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { comment, formatFailureList, parseCopyList } from "../../../shared/transfer/copy-list.ts";

const ref = fc
  .tuple(
    fc.constantFrom("registry.example.com", "127.0.0.1:5000", "123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
    fc.array(fc.stringMatching(/^[a-z0-9]{1,8}$/), { minLength: 1, maxLength: 3 }),
    fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}$/),
  )
  .map(([host, path, tag]) => `${host}/${path.join("/")}:${tag}`);

describe("failure lists", () => {
  it("parse back to exactly the failed pairs, in order, whatever the errors hold (newlines, #, controls)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ source: ref, destination: ref, error: fc.string({ maxLength: 300 }) }), {
          minLength: 1,
          maxLength: 20,
        }),
        fc.array(fc.string({ maxLength: 80 }), { maxLength: 3 }),
        (failures, header) => {
          const text = formatFailureList(failures, header);
          const parsed = parseCopyList(text, "failures.txt");
          expect(parsed.map((l) => [l.source, l.destination])).toEqual(
            failures.map((f) => [f.source, f.destination]),
          );
          // every pair has its error right above it, as one comment line
          const lines = text.split("\n");
          for (const l of parsed) expect(lines[l.line - 2]).toMatch(/^# /);
          expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f]/);
        },
      ),
    );
  });

  it("keep no upload session, query string or credential-bearing URL part from an error", () => {
    const error =
      "PATCH https://registry.example.com/v2/app/blobs/uploads/4f2c9a1e-77b0-4d7e-9f0a-0c9c3e2b1a55?_state=abc.def&digest=sha256%3A1 answered 500;" +
      " redirected to https://bucket.s3.amazonaws.com/layer?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA";
    const c = comment(error);
    expect(c).toContain("/v2/app/blobs/uploads/<session>");
    expect(c).not.toMatch(/4f2c9a1e|_state|abc\.def|deadbeef|AKIA|X-Amz/);
    expect(c).toContain("https://bucket.s3.amazonaws.com/layer?…");
  });

  it("a failure whose input was not recorded stays a comment: nothing to re-run", () => {
    const text = formatFailureList([{ error: "States.TaskFailed: lost" }], ["header"]);
    expect(parseCopyList(text, "f")).toEqual([]);
    expect(text).toBe("# header\n# States.TaskFailed: lost\n#   (not re-runnable: ? → ?)\n");
  });

  it("a malformed list line is a usage error naming file and line", () => {
    expect(() => parseCopyList("a.io/x:1 b.io/y:1\n\na.io/x:1\n", "list.txt")).toThrow(
      /list\.txt:3: expected "SRC DST", got "a\.io\/x:1"/,
    );
  });
});
