/**
 * Text a registry chooses — error messages, tags, repository names — reaches the terminal with its
 * control characters escaped: an ANSI/OSC sequence is shown as `\x1b…`, never executed.
 */
import { afterAll, describe, expect, it } from "vitest";
import { ferry } from "../../helpers/ferry-cli.ts";
import { hostileServer } from "../../helpers/hostile.ts";

const ESC = "\x1b";
const NASTY = `${ESC}]0;pwned${"\x07"}${ESC}[2J${ESC}[31mred\u009b31m\u202eevil`;

const hostile = await hostileServer((r, res) => {
  if (r.url === "/v2/") return res.writeHead(200).end("{}");
  if (r.url.startsWith("/v2/app/tags/list")) {
    return res
      .writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ tags: ["ok", NASTY] }));
  }
  if (r.url.startsWith("/v2/_catalog")) {
    return res.writeHead(200).end(JSON.stringify({ repositories: [`team/${NASTY}`] }));
  }
  res
    .writeHead(404, { "content-type": "application/json" })
    .end(JSON.stringify({ errors: [{ code: `MANIFEST_UNKNOWN${ESC}[1m`, message: NASTY }] }));
});
afterAll(() => hostile.close());

function expectNoControl(text: string) {
  expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
}

describe("registry-provided text on the terminal", () => {
  it("an error message's escape sequences are escaped", async () => {
    const out = await ferry(["inspect", `${hostile.host}/app:v1`]);
    expect(out.code).toBe(1);
    expectNoControl(out.stderr);
    expect(out.stderr).toContain("\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31mred\\x9b31m\\u202eevil");
    expect(out.stderr).toContain("MANIFEST_UNKNOWN\\x1b[1m");
  });

  it("tags and repository names are printed escaped", async () => {
    const tags = await ferry(["tags", `${hostile.host}/app`]);
    expect(tags.code).toBe(0);
    expect(tags.stdout.split("\n")[0]).toBe("ok");
    expectNoControl(tags.stdout);
    expect(tags.stdout).toContain("\\x1b[31mred");
    const catalog = await ferry(["catalog", hostile.host]);
    expect(catalog.code).toBe(0);
    expectNoControl(catalog.stdout);
    expect(catalog.stdout).toContain("team/\\x1b]0;pwned");
  });
});
