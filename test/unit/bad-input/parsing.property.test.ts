/**
 * Bad input never crashes the parsers: references, digests and manifests either parse or throw ferry's
 * own typed errors with a message, for any input (fast-check), and a table of known-bad inputs gives
 * the expected clear errors.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseLocation } from "../../../cli/endpoints.ts";
import { parseDigest } from "../../../shared/registry/digest.ts";
import { FerryError, InvalidManifestError, InvalidReferenceError } from "../../../shared/registry/errors.ts";
import { MAX_MANIFEST_BYTES, parseManifest, parsePlatform } from "../../../shared/registry/manifest.ts";
import { formatReference, parseReference } from "../../../shared/registry/reference.ts";

const RUNS = Number(process.env.FERRY_FC_RUNS ?? 500);
const refChars = fc.constantFrom(..."abcXYZ019-_.:/@+ \t%\u00e9\u0000".split(""));

describe("reference parsing (property)", () => {
  it("any string parses or throws InvalidReferenceError", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.array(refChars, { maxLength: 80 }).map((a) => a.join("")),
        ),
        (s) => {
          try {
            const ref = parseReference(s);
            // what parses, formats to something that parses to the same
            const again = parseReference(formatReference(ref));
            expect(again).toEqual(ref);
          } catch (e) {
            expect(e).toBeInstanceOf(InvalidReferenceError);
            expect((e as Error).message.length).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("well-formed references round-trip", () => {
    const component = fc
      .stringMatching(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/)
      .filter((s) => s.length > 0 && s.length < 30);
    const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/);
    fc.assert(
      fc.property(
        fc.constantFrom("docker.io", "ghcr.io", "localhost:5000", "127.0.0.1:1234", "registry.example.com"),
        fc.array(component, { minLength: 1, maxLength: 4 }),
        tag,
        (host, parts, t) => {
          const ref = parseReference(`${host}/${parts.join("/")}:${t}`);
          expect(ref.tag).toBe(t);
          expect(parseReference(formatReference(ref))).toEqual(ref);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("digests: any string is valid or InvalidReferenceError", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        try {
          parseDigest(s);
          expect(s).toMatch(/^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/);
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidReferenceError);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe("manifest parsing (property)", () => {
  it("any bytes parse or throw InvalidManifestError", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2000 }),
        fc.constantFrom(undefined, "application/vnd.oci.image.manifest.v1+json", "text/plain"),
        (bytes, ct) => {
          try {
            parseManifest(bytes, ct);
          } catch (e) {
            expect(e).toBeInstanceOf(InvalidManifestError);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("any JSON value parses or throws InvalidManifestError", () => {
    const desc = fc.record(
      {
        mediaType: fc.oneof(fc.string(), fc.integer()),
        digest: fc.oneof(fc.string(), fc.constant(`sha256:${"a".repeat(64)}`)),
        size: fc.oneof(fc.integer(), fc.double(), fc.string()),
      },
      { requiredKeys: [] },
    );
    const manifestish = fc.record(
      {
        schemaVersion: fc.oneof(fc.constant(2), fc.constant(1), fc.integer()),
        mediaType: fc.oneof(
          fc.constant("application/vnd.oci.image.index.v1+json"),
          fc.constant("application/vnd.oci.image.manifest.v1+json"),
          fc.string(),
        ),
        config: fc.oneof(desc, fc.anything()),
        layers: fc.oneof(fc.array(desc, { maxLength: 3 }), fc.anything()),
        manifests: fc.oneof(fc.array(desc, { maxLength: 3 }), fc.anything()),
        fsLayers: fc.oneof(fc.array(fc.record({ blobSum: fc.string() }), { maxLength: 2 }), fc.anything()),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(manifestish, fc.jsonValue()), (value) => {
        try {
          const m = parseManifest(Buffer.from(JSON.stringify(value) ?? "null"));
          // what parses has well-formed descriptors
          const descs =
            m.kind === "index" ? m.manifests : m.kind === "manifest" ? [m.config, ...m.layers] : m.layers;
          for (const d of descs) expect(d.digest).toMatch(/^sha(256|512):/);
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidManifestError);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

const D = `sha256:${"b".repeat(64)}`;
const desc = (extra: Record<string, unknown> = {}) => ({
  mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
  digest: D,
  size: 10,
  ...extra,
});

describe("known-bad inputs give clear errors", () => {
  it.each([
    ["not JSON", "{not json", /not valid JSON/],
    ["an array", "[]", /expected a JSON object/],
    ["unknown schemaVersion", JSON.stringify({ schemaVersion: 3 }), /unsupported schemaVersion 3/],
    [
      "image without config",
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        layers: [],
      }),
      /without config/,
    ],
    [
      "layers not an array",
      JSON.stringify({ schemaVersion: 2, config: desc(), layers: {} }),
      /without a layers array/,
    ],
    [
      "wrong media type",
      JSON.stringify({ schemaVersion: 2, mediaType: "application/x-nope", config: desc(), layers: [] }),
      /unsupported manifest media type/,
    ],
    [
      "descriptor with negative size",
      JSON.stringify({ schemaVersion: 2, config: desc({ size: -1 }), layers: [] }),
      /size must be a non-negative integer/,
    ],
    [
      "descriptor with bad digest",
      JSON.stringify({ schemaVersion: 2, config: desc({ digest: "sha256:xyz" }), layers: [] }),
      /config.*64 lowercase hex/,
    ],
    [
      "index without manifests",
      JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json" }),
      /index without a manifests array/,
    ],
    [
      "platform without os",
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [desc({ platform: { architecture: "amd64" } })],
      }),
      /platform needs os and architecture/,
    ],
    ["schema 1 without fsLayers", JSON.stringify({ schemaVersion: 1 }), /without fsLayers/],
  ])("%s", (_name, text, message) => {
    expect(() => parseManifest(Buffer.from(text))).toThrowError(message);
  });

  it("refuses manifests over the size limit before parsing", () => {
    const big = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 32);
    expect(() => parseManifest(big)).toThrowError(/over the 4194304-byte manifest limit/);
  });

  it.each([
    ["", /empty/],
    ["a".repeat(300), /longer than 255/],
    ["app@sha256:ABC", /lowercase hex/],
    ["app:tag:more", /bad port|repository component/],
    ["app/../etc", /repository component/],
  ])("reference %j", (input, message) => {
    expect(() => parseReference(input)).toThrowError(message);
  });

  it.each([
    ["oci:", /needs a directory/],
    ["rootfs:", /needs a directory/],
    ["docker-archive:", /needs a file/],
    ["containers-storage:x", /does not read or write/],
  ])("location %j", (input, message) => {
    expect(() => parseLocation(input)).toThrowError(message);
  });

  it("platform strings", () => {
    expect(parsePlatform("linux/arm64/v8")).toEqual({ os: "linux", architecture: "arm64", variant: "v8" });
    expect(() => parsePlatform("linux")).toThrowError(/os\/arch/);
    expect(() => parsePlatform("linux/amd64/v1/x")).toThrowError(FerryError);
  });
});
