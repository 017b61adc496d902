/**
 * Docker schema 1: the digest is over the canonical payload (signatures removed), never over the bytes
 * of one GET, which the registry signs anew each time. The CLI side is test/integration/cli/schema1.test.ts.
 */
import { describe, expect, it } from "vitest";
import { sha256 } from "../../../shared/registry/digest.ts";
import { InvalidManifestError } from "../../../shared/registry/errors.ts";
import { isSchema1, schema1Payload } from "../../../shared/registry/manifest.ts";
import { MediaType } from "../../../shared/registry/media-types.ts";
import { schema1Image } from "../../helpers/schema1.ts";

const image = schema1Image("old/app", "1.0", [sha256("layer a"), sha256("layer b")]);

describe("schema1Payload", () => {
  it("gives the same payload for every signed rendition, and its digest is not that of the bytes", () => {
    const one = image.sign();
    const two = image.sign();
    expect(one.equals(two)).toBe(false);
    for (const bytes of [one, two]) {
      const payload = Buffer.from(schema1Payload(bytes, MediaType.DockerSchema1Signed, "m"));
      expect(payload.equals(image.payload)).toBe(true);
      expect(sha256(bytes)).not.toBe(image.digest);
    }
  });

  it("an unsigned manifest is its own payload", () => {
    const bytes = image.payload;
    expect(schema1Payload(bytes, MediaType.DockerSchema1, "m")).toBe(bytes);
  });

  it.each([
    ["no signatures", () => image.payload, /has no signatures/],
    [
      "a protected header that is not JSON",
      () => withProtected("bm90IGpzb24"),
      /unreadable protected header/,
    ],
    [
      "a formatLength past the end",
      () => withProtected(header({ formatLength: 1e9, formatTail: "" })),
      /formatLength/,
    ],
    ["no formatTail", () => withProtected(header({ formatLength: 10 })), /formatTail/],
    [
      "signatures over different payloads",
      () => {
        const a = JSON.parse(image.sign().toString()) as { signatures: unknown[] };
        const b = { protected: header({ formatLength: 5, formatTail: "" }) };
        return Buffer.from(JSON.stringify({ ...a, signatures: [...a.signatures, b] }));
      },
      /different payloads/,
    ],
  ])("refuses a signed manifest with %s, naming it", (_, make, message) => {
    let err: Error | undefined;
    try {
      schema1Payload(make(), MediaType.DockerSchema1Signed, "manifest reg/old:1.0");
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(InvalidManifestError);
    expect(err?.message).toMatch(message);
    expect(err?.message).toContain("manifest reg/old:1.0");
  });

  it("isSchema1 goes by the media type, and by the JSON only when the type says nothing", () => {
    const signed = image.sign();
    expect(isSchema1(MediaType.DockerSchema1Signed, Buffer.from("{}"))).toBe(true);
    expect(isSchema1("application/json", signed)).toBe(true);
    expect(isSchema1("", signed)).toBe(true);
    expect(isSchema1(MediaType.OciManifest, signed)).toBe(false);
    expect(isSchema1("application/json", Buffer.from('{"schemaVersion":2}'))).toBe(false);
  });
});

function header(h: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(h)).toString("base64url");
}

function withProtected(p: string): Buffer {
  const json = JSON.parse(image.sign().toString()) as { signatures: { protected: string }[] };
  json.signatures[0]!.protected = p;
  return Buffer.from(JSON.stringify(json));
}
