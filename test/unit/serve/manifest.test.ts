import { describe, expect, it } from "vitest";
import {
  DOCKER_LIST,
  DOCKER_MANIFEST,
  OCI_INDEX,
  OCI_MANIFEST,
  parseManifest,
} from "../../../serve/manifest.ts";

const d = (c: string) => `sha256:${c.repeat(64)}`;
const config = { mediaType: "application/vnd.oci.image.config.v1+json", digest: d("c"), size: 10 };
const layer = { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: d("1"), size: 20 };
const buf = (v: unknown) => Buffer.from(JSON.stringify(v));

describe("parseManifest", () => {
  it("reads an OCI manifest and lists the blobs it needs", () => {
    const m = parseManifest(
      buf({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] }),
      OCI_MANIFEST,
    );
    expect(m.kind).toBe("manifest");
    expect(m.mediaType).toBe(OCI_MANIFEST);
    expect(m.blobs.map((b) => b.digest)).toEqual([d("c"), d("1")]);
    expect(m.artifactType).toBe(config.mediaType);
  });

  it("lets the Content-Type header decide, with parameters stripped", () => {
    const m = parseManifest(
      buf({ schemaVersion: 2, config, layers: [] }),
      `${DOCKER_MANIFEST}; charset=utf-8`,
    );
    expect(m.mediaType).toBe(DOCKER_MANIFEST);
  });

  it("falls back to the mediaType field, then to the document's shape", () => {
    expect(
      parseManifest(buf({ schemaVersion: 2, mediaType: DOCKER_LIST, manifests: [] }), "application/json")
        .mediaType,
    ).toBe(DOCKER_LIST);
    expect(parseManifest(buf({ schemaVersion: 2, manifests: [] }), undefined).mediaType).toBe(OCI_INDEX);
    expect(parseManifest(buf({ schemaVersion: 2, config, layers: [] }), "").mediaType).toBe(OCI_MANIFEST);
  });

  it("reads an index's children, subject, artifactType and annotations", () => {
    const subject = { mediaType: OCI_MANIFEST, digest: d("5"), size: 3 };
    const m = parseManifest(
      buf({
        schemaVersion: 2,
        manifests: [{ mediaType: OCI_MANIFEST, digest: d("2"), size: 5 }],
        subject,
        artifactType: "application/x-example",
        annotations: { a: "b" },
      }),
      OCI_INDEX,
    );
    expect(m.kind).toBe("index");
    expect(m.children.map((c) => c.digest)).toEqual([d("2")]);
    expect(m.subject).toEqual(subject);
    expect(m.artifactType).toBe("application/x-example");
    expect(m.annotations).toEqual({ a: "b" });
  });

  it("does not require foreign layers to be present", () => {
    const foreign = {
      mediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
      digest: d("f"),
      size: 1,
      urls: ["https://example.com/layer"],
    };
    const m = parseManifest(buf({ schemaVersion: 2, config, layers: [foreign, layer] }), DOCKER_MANIFEST);
    expect(m.blobs.map((b) => b.digest)).toEqual([d("c"), d("1")]);
  });

  it.each([
    ["not JSON", Buffer.from("{"), OCI_MANIFEST],
    ["an array", buf([]), OCI_MANIFEST],
    ["schema 1", buf({ schemaVersion: 1, config, layers: [] }), OCI_MANIFEST],
    [
      "a schema1 media type",
      buf({ schemaVersion: 1 }),
      "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ],
    ["an unknown media type", buf({ schemaVersion: 2, config, layers: [] }), "application/x-nope"],
    [
      "a field contradicting the header",
      buf({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }),
      OCI_MANIFEST,
    ],
    ["no layers", buf({ schemaVersion: 2, config }), OCI_MANIFEST],
    ["no config", buf({ schemaVersion: 2, layers: [] }), OCI_MANIFEST],
    [
      "a bad digest",
      buf({ schemaVersion: 2, config: { ...config, digest: "sha256:x" }, layers: [] }),
      OCI_MANIFEST,
    ],
    ["a negative size", buf({ schemaVersion: 2, config: { ...config, size: -1 }, layers: [] }), OCI_MANIFEST],
    ["bad annotations", buf({ schemaVersion: 2, config, layers: [], annotations: { a: 1 } }), OCI_MANIFEST],
    ["an index without manifests", buf({ schemaVersion: 2 }), OCI_INDEX],
  ])("refuses %s with MANIFEST_INVALID", (_what, bytes, type) => {
    expect(() => parseManifest(bytes, type)).toThrow(
      expect.objectContaining({ code: "MANIFEST_INVALID", status: 400 }),
    );
  });
});
