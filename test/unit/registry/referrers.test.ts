/**
 * The pure parts of the referrers tag schema (OCI distribution spec 1.1): the tag of a digest, the
 * descriptor a pushed referrer gets, and the merge into an existing index. Round trips against real
 * registries are in test/integration/transfer/referrers.test.ts.
 */
import { describe, expect, it } from "vitest";
import { sha256 } from "../../../shared/registry/digest.ts";
import { InvalidManifestError } from "../../../shared/registry/errors.ts";
import type { RawManifest } from "../../../shared/registry/manifest.ts";
import { MediaType } from "../../../shared/registry/media-types.ts";
import { mergeReferrer, parseIndex, referrerOf, referrersTag } from "../../../shared/registry/referrers.ts";

function raw(json: unknown, mediaType: string = MediaType.OciManifest): RawManifest {
  const bytes = Buffer.from(JSON.stringify(json));
  return { bytes, mediaType, digest: sha256(bytes) };
}

const subject = {
  mediaType: MediaType.OciManifest,
  digest: sha256("the image"),
  size: 123,
};
const config = { mediaType: "application/vnd.example.config+json", digest: sha256("{}"), size: 2 };

describe("referrersTag", () => {
  // the table of the spec's "Referrers Tag Schema" section
  it.each([
    [`sha256:${"a".repeat(64)}`, `sha256-${"a".repeat(64)}`],
    [`sha512:${"a".repeat(128)}`, `sha512-${"a".repeat(64)}`],
    [
      "test+algorithm+using+algorithm+separators+and+lots+of+characters+to+excercise+overall+truncation:alsoSome=InTheEncodedSectionToShowHyphenReplacementAndLotsAndLotsOfCharactersToExcerciseEncodedTruncation",
      "test-algorithm-using-algorithm-s-alsoSome-InTheEncodedSectionToShowHyphenReplacementAndLotsAndLot",
    ],
  ])("%s → %s", (digest, tag) => {
    expect(referrersTag(digest)).toBe(tag);
  });
});

describe("referrerOf", () => {
  it("lists an artifact with its artifactType and every annotation", () => {
    const m = raw({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      artifactType: "application/spdx+json",
      config,
      layers: [],
      subject,
      annotations: { "org.example.a": "1", "org.opencontainers.image.created": "2026-01-01T00:00:00Z" },
    });
    expect(referrerOf(m)).toEqual({
      subject: subject.digest,
      descriptor: {
        mediaType: MediaType.OciManifest,
        digest: m.digest,
        size: m.bytes.length,
        artifactType: "application/spdx+json",
        annotations: { "org.example.a": "1", "org.opencontainers.image.created": "2026-01-01T00:00:00Z" },
      },
    });
  });

  it("takes the config's media type when the manifest has no artifactType", () => {
    const m = raw({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [], subject });
    expect(referrerOf(m)?.descriptor).toEqual({
      mediaType: MediaType.OciManifest,
      digest: m.digest,
      size: m.bytes.length,
      artifactType: config.mediaType,
    });
  });

  it("lists an index with a subject by its own artifactType, none when it has none", () => {
    const withType = raw(
      { schemaVersion: 2, mediaType: MediaType.OciIndex, artifactType: "a/b", manifests: [], subject },
      MediaType.OciIndex,
    );
    expect(referrerOf(withType)?.descriptor.artifactType).toBe("a/b");
    const without = raw(
      { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [], subject },
      MediaType.OciIndex,
    );
    expect(referrerOf(without)?.descriptor).toEqual({
      mediaType: MediaType.OciIndex,
      digest: without.digest,
      size: without.bytes.length,
    });
  });

  it("ignores manifests without a subject, or with one that names no digest", () => {
    expect(referrerOf(raw({ schemaVersion: 2, config, layers: [] }))).toBeUndefined();
    expect(
      referrerOf(raw({ schemaVersion: 2, config, layers: [], annotations: { "x.subject": '"subject"' } })),
    ).toBeUndefined();
    expect(
      referrerOf(raw({ schemaVersion: 2, config, layers: [], subject: { digest: "nope" } })),
    ).toBeUndefined();
  });
});

describe("mergeReferrer", () => {
  const a = { mediaType: MediaType.OciManifest, digest: sha256("a"), size: 10, artifactType: "x/a" };
  const b = { mediaType: MediaType.OciManifest, digest: sha256("b"), size: 20, artifactType: "x/b" };

  it("starts an OCI image index when the tag does not exist", () => {
    const bytes = mergeReferrer(undefined, a, "tag");
    expect(JSON.parse(Buffer.from(bytes!).toString())).toEqual({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [a],
    });
  });

  it("keeps every entry and field already there, and adds the new one after them", () => {
    const foreign = { ...b, annotations: { "org.example.by": "another client" }, "x-unknown": true };
    const existing = raw(
      {
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [foreign],
        annotations: { "org.example.index": "kept" },
      },
      MediaType.OciIndex,
    );
    const merged = JSON.parse(Buffer.from(mergeReferrer(existing, a, "tag")!).toString());
    expect(merged).toEqual({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [foreign, a],
      annotations: { "org.example.index": "kept" },
    });
  });

  it("changes nothing when the referrer is listed already", () => {
    const existing = raw(
      { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [b, a] },
      MediaType.OciIndex,
    );
    expect(mergeReferrer(existing, a, "tag")).toBeUndefined();
  });

  it("refuses to overwrite a tag that holds anything but an OCI image index, naming it", () => {
    const image = raw({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [] });
    const err = (() => {
      try {
        mergeReferrer(image, a, "referrers tag reg/app:sha256-abc");
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(InvalidManifestError);
    expect(err?.message).toContain("referrers tag reg/app:sha256-abc");
    expect(err?.message).toContain("not an OCI image index");
    const list = raw({ schemaVersion: 2, manifests: [] }, MediaType.DockerManifestList);
    expect(() => mergeReferrer(list, a, "t")).toThrow(/not an OCI image index/);
  });

  it("parseIndex accepts an OCI index with or without its mediaType field, nothing else", () => {
    expect(parseIndex(raw({ schemaVersion: 2, manifests: [] }, MediaType.OciIndex))?.manifests).toEqual([]);
    expect(parseIndex(raw({ schemaVersion: 2, manifests: [] }, ""))?.manifests).toEqual([]);
    expect(parseIndex(raw({ schemaVersion: 2, manifests: {} }, MediaType.OciIndex))).toBeUndefined();
    expect(
      parseIndex({ bytes: Buffer.from("{"), mediaType: MediaType.OciIndex, digest: sha256("{") }),
    ).toBeUndefined();
  });
});
