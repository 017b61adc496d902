import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  header,
  makeImage,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_MANIFEST,
  sha256,
  startTestRegistry,
  type TestRegistry,
} from "./helpers.ts";

const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startTestRegistry();
});
afterAll(async () => {
  await reg.stop();
});

describe("ferry serve: manifests", () => {
  it("round-trips the exact bytes, digest and media type, by tag and by digest", async () => {
    const { bytes, digest } = await makeImage(reg, "rt/app");
    const put = await reg.pushManifest("rt/app", "v1", bytes);
    expect(put.status).toBe(201);
    expect(header(put, "docker-content-digest")).toBe(digest);
    expect(header(put, "location")).toBe(`/v2/rt/app/manifests/${digest}`);

    for (const ref of ["v1", digest]) {
      const get = await reg.api("GET", `/v2/rt/app/manifests/${ref}`, { headers: { accept: OCI_MANIFEST } });
      expect(get.status).toBe(200);
      expect(get.body.equals(bytes)).toBe(true);
      expect(header(get, "content-type")).toBe(OCI_MANIFEST);
      expect(header(get, "docker-content-digest")).toBe(digest);
      expect(header(get, "content-length")).toBe(String(bytes.length));
      const head = await reg.api("HEAD", `/v2/rt/app/manifests/${ref}`);
      expect(head.status).toBe(200);
      expect(head.body.length).toBe(0);
      expect(header(head, "content-length")).toBe(String(bytes.length));
      expect(header(head, "docker-content-digest")).toBe(digest);
    }
    // a percent-encoded colon in the digest reference is accepted too
    expect((await reg.api("HEAD", `/v2/rt/app/manifests/${digest.replace(":", "%3A")}`)).status).toBe(200);
  });

  it("stores the Content-Type pushed (Docker schema2) and accepts PUT by digest", async () => {
    const { manifest } = await makeImage(reg, "rt/docker", 2);
    const docker = { ...manifest, mediaType: DOCKER_MANIFEST };
    const raw = Buffer.from(JSON.stringify(docker));
    const put = await reg.pushManifest("rt/docker", sha256(raw), raw, DOCKER_MANIFEST);
    expect(put.status).toBe(201);
    const get = await reg.api("GET", `/v2/rt/docker/manifests/${sha256(raw)}`);
    expect(header(get, "content-type")).toBe(DOCKER_MANIFEST);
    expect((await reg.api("GET", "/v2/rt/docker/tags/list")).json().tags).toEqual([]);
  });

  it("takes the media type from the mediaType field when Content-Type is generic", async () => {
    const { bytes, digest } = await makeImage(reg, "rt/generic", 3);
    expect((await reg.pushManifest("rt/generic", "t", bytes, "application/json")).status).toBe(201);
    const get = await reg.api("GET", `/v2/rt/generic/manifests/${digest}`);
    expect(header(get, "content-type")).toBe(OCI_MANIFEST);
  });

  it("refuses a PUT by digest whose bytes hash differently", async () => {
    const { bytes } = await makeImage(reg, "rt/wrong", 4);
    const r = await reg.pushManifest("rt/wrong", sha256("other"), bytes);
    expect(r.status).toBe(400);
    expect(r.json().errors[0].code).toBe("DIGEST_INVALID");
  });

  it("refuses manifests over missing blobs with MANIFEST_BLOB_UNKNOWN", async () => {
    const { manifest } = await makeImage(reg, "rt/other", 5);
    // the blobs exist, but in another repository: not visible here
    const r = await reg.pushManifest("rt/missing", "v1", manifest);
    expect(r.status).toBe(400);
    expect(r.json().errors[0].code).toBe("MANIFEST_BLOB_UNKNOWN");
    expect(r.json().errors[0].detail).toBe((manifest.config as { digest: string }).digest);
    expect((await reg.api("GET", "/v2/rt/missing/manifests/v1")).status).toBe(404);
  });

  it("refuses an index over a missing child manifest", async () => {
    const index = {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: sha256("no such manifest"), size: 10 }],
    };
    const r = await reg.pushManifest("rt/index", "v1", index, OCI_INDEX);
    expect(r.status).toBe(400);
    expect(r.json().errors[0].code).toBe("MANIFEST_UNKNOWN");
  });

  it("accepts an index (OCI and Docker list) once its children are present", async () => {
    const a = await makeImage(reg, "rt/multi", 6);
    const b = await makeImage(reg, "rt/multi", 7);
    for (const m of [a, b]) expect((await reg.pushManifest("rt/multi", m.digest, m.bytes)).status).toBe(201);
    const children = [a, b].map((m, i) => ({
      mediaType: OCI_MANIFEST,
      digest: m.digest,
      size: m.bytes.length,
      platform: { architecture: i === 0 ? "amd64" : "arm64", os: "linux" },
    }));
    const index = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children }),
    );
    expect((await reg.pushManifest("rt/multi", "latest", index, OCI_INDEX)).status).toBe(201);
    const get = await reg.api("GET", "/v2/rt/multi/manifests/latest");
    expect(get.body.equals(index)).toBe(true);
    expect(header(get, "content-type")).toBe(OCI_INDEX);

    const list = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_LIST, manifests: children }),
    );
    expect((await reg.pushManifest("rt/multi", "list", list, DOCKER_LIST)).status).toBe(201);
  });

  it("refuses invalid manifests with MANIFEST_INVALID", async () => {
    const { manifest } = await makeImage(reg, "rt/invalid", 8);
    const cases: [unknown, string][] = [
      [Buffer.from("{not json"), OCI_MANIFEST],
      [Buffer.from("[]"), OCI_MANIFEST],
      [{ ...manifest, schemaVersion: 1 }, OCI_MANIFEST],
      [{ ...manifest, layers: undefined }, OCI_MANIFEST],
      [{ ...manifest, config: { mediaType: OCI_CONFIG, digest: "sha256:zz", size: 1 } }, OCI_MANIFEST],
      [manifest, OCI_INDEX], // mediaType field contradicts the header
      [manifest, "application/vnd.docker.distribution.manifest.v1+prettyjws"],
    ];
    for (const [body, type] of cases) {
      const r = await reg.pushManifest("rt/invalid", "v1", body, type);
      expect(r.status, `${type} ${String(body).slice(0, 40)}`).toBe(400);
      expect(r.json().errors[0].code).toBe("MANIFEST_INVALID");
    }
    const badTag = await reg.pushManifest("rt/invalid", "-bad", manifest);
    expect(badTag.status).toBe(400);
  });

  it("refuses manifests over 4 MiB with 413", async () => {
    const { manifest } = await makeImage(reg, "rt/big", 9);
    const big = { ...manifest, annotations: { pad: "x".repeat(4 * 1024 * 1024) } };
    const r = await reg.pushManifest("rt/big", "v1", big);
    expect(r.status).toBe(413);
    expect(r.json().errors[0].code).toBe("MANIFEST_INVALID");
    // the server is still fine afterwards
    expect((await reg.api("GET", "/v2/")).status).toBe(200);
  });

  it("answers MANIFEST_UNKNOWN and NAME_UNKNOWN", async () => {
    const r = await reg.api("GET", "/v2/rt/app/manifests/nope");
    expect(r.status).toBe(404);
    expect(r.json().errors[0].code).toBe("MANIFEST_UNKNOWN");
    const n = await reg.api("GET", "/v2/never/pushed/manifests/latest");
    expect(n.status).toBe(404);
    expect(n.json().errors[0].code).toBe("NAME_UNKNOWN");
  });

  it("deletes tags and manifests (a manifest delete drops its tags)", async () => {
    const { bytes, digest } = await makeImage(reg, "rt/del", 10);
    await reg.pushManifest("rt/del", "a", bytes);
    await reg.pushManifest("rt/del", "b", bytes);
    expect((await reg.api("DELETE", "/v2/rt/del/manifests/a")).status).toBe(202);
    expect((await reg.api("GET", "/v2/rt/del/manifests/a")).status).toBe(404);
    expect((await reg.api("GET", "/v2/rt/del/manifests/b")).status).toBe(200);
    expect((await reg.api("DELETE", `/v2/rt/del/manifests/${digest}`)).status).toBe(202);
    expect((await reg.api("GET", `/v2/rt/del/manifests/${digest}`)).status).toBe(404);
    expect((await reg.api("GET", "/v2/rt/del/manifests/b")).status).toBe(404);
    expect((await reg.api("GET", "/v2/rt/del/tags/list")).json().tags).toEqual([]);
    expect((await reg.api("DELETE", `/v2/rt/del/manifests/${digest}`)).status).toBe(404);
  });
});

describe("ferry serve: listings", () => {
  it("paginates tags with n, last and a Link header", async () => {
    const { bytes } = await makeImage(reg, "list/tags", 11);
    const tags = ["v10", "v2", "latest", "a", "B", "v1"];
    for (const t of tags) expect((await reg.pushManifest("list/tags", t, bytes)).status).toBe(201);
    const sorted = [...tags].sort();
    expect(sorted).toEqual(["B", "a", "latest", "v1", "v10", "v2"]);

    const all = await reg.api("GET", "/v2/list/tags/tags/list");
    expect(all.json()).toEqual({ name: "list/tags", tags: sorted });
    expect(header(all, "link")).toBeUndefined();

    const seen: string[] = [];
    let path: string | undefined = "/v2/list/tags/tags/list?n=4";
    let pages = 0;
    while (path) {
      const r = await reg.api("GET", path);
      expect(r.status).toBe(200);
      seen.push(...r.json().tags);
      const link = header(r, "link");
      path = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1] : undefined;
      pages++;
    }
    expect(seen).toEqual(sorted);
    expect(pages).toBe(2);
    const first = await reg.api("GET", "/v2/list/tags/tags/list?n=4");
    expect(header(first, "link")).toBe('</v2/list/tags/tags/list?last=v1&n=4>; rel="next"');
    const after = await reg.api("GET", "/v2/list/tags/tags/list?last=latest");
    expect(after.json().tags).toEqual(["v1", "v10", "v2"]);
    expect((await reg.api("GET", "/v2/list/tags/tags/list?n=0")).json().tags).toEqual([]);
    expect((await reg.api("GET", "/v2/list/tags/tags/list?n=-1")).status).toBe(400);
    expect((await reg.api("GET", "/v2/nothing/here/tags/list")).json().errors[0].code).toBe("NAME_UNKNOWN");
  });

  it("paginates the catalog", async () => {
    const own = await startTestRegistry();
    try {
      const names = ["zeta", "alpha/one", "alpha", "alpha/two/deep", "beta"];
      for (const [i, name] of names.entries()) {
        const { bytes } = await makeImage(own, name, 20 + i);
        await own.pushManifest(name, "latest", bytes);
      }
      await own.pushBlob("blobs-only", "x"); // no manifest: not in the catalog
      const expected = [...names].sort();
      expect((await own.api("GET", "/v2/_catalog")).json()).toEqual({ repositories: expected });
      const p1 = await own.api("GET", "/v2/_catalog?n=2");
      expect(p1.json().repositories).toEqual(expected.slice(0, 2));
      expect(header(p1, "link")).toBe('</v2/_catalog?last=alpha/one&n=2>; rel="next"');
      const p2 = await own.api("GET", "/v2/_catalog?last=alpha/one&n=2");
      expect(p2.json().repositories).toEqual(expected.slice(2, 4));
      const p3 = await own.api("GET", /<([^>]+)>/.exec(header(p2, "link")!)![1]!);
      expect(p3.json().repositories).toEqual(expected.slice(4));
      expect(header(p3, "link")).toBeUndefined();
    } finally {
      await own.stop();
    }
  });

  it("lists referrers, with artifactType filtering", async () => {
    const subject = await makeImage(reg, "refs/app", 30);
    await reg.pushManifest("refs/app", "v1", subject.bytes);
    const subjectDescriptor = { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.bytes.length };

    const empty = await reg.pushBlob("refs/app", "{}");
    const sig = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: "application/vnd.example.signature",
      config: { mediaType: "application/vnd.oci.empty.v1+json", digest: empty, size: 2 },
      layers: [{ mediaType: "application/vnd.oci.empty.v1+json", digest: empty, size: 2 }],
      subject: subjectDescriptor,
      annotations: { "org.example.kind": "sig" },
    };
    const sigBytes = Buffer.from(JSON.stringify(sig));
    const put = await reg.pushManifest("refs/app", sha256(sigBytes), sigBytes);
    expect(put.status).toBe(201);
    expect(header(put, "oci-subject")).toBe(subject.digest);

    const sbomConfig = await reg.pushBlob("refs/app", '{"sbom":true}');
    const sbom = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.example.sbom", digest: sbomConfig, size: 13 },
      layers: [],
      subject: subjectDescriptor,
    };
    const sbomBytes = Buffer.from(JSON.stringify(sbom));
    expect((await reg.pushManifest("refs/app", sha256(sbomBytes), sbomBytes)).status).toBe(201);

    const all = await reg.api("GET", `/v2/refs/app/referrers/${subject.digest}`);
    expect(all.status).toBe(200);
    expect(header(all, "content-type")).toBe(OCI_INDEX);
    expect(header(all, "oci-filters-applied")).toBeUndefined();
    const expected = [
      {
        mediaType: OCI_MANIFEST,
        digest: sha256(sigBytes),
        size: sigBytes.length,
        artifactType: "application/vnd.example.signature",
        annotations: { "org.example.kind": "sig" },
      },
      // no artifactType: the config media type stands in
      {
        mediaType: OCI_MANIFEST,
        digest: sha256(sbomBytes),
        size: sbomBytes.length,
        artifactType: "application/vnd.example.sbom",
      },
    ].sort((a, b) => (a.digest < b.digest ? -1 : 1));
    expect(all.json()).toEqual({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: expected });

    const filtered = await reg.api(
      "GET",
      `/v2/refs/app/referrers/${subject.digest}?artifactType=${encodeURIComponent("application/vnd.example.sbom")}`,
    );
    expect(header(filtered, "oci-filters-applied")).toBe("artifactType");
    expect(filtered.json().manifests.map((m: { digest: string }) => m.digest)).toEqual([sha256(sbomBytes)]);

    const none = await reg.api("GET", `/v2/refs/app/referrers/${sha256("unknown subject")}`);
    expect(none.status).toBe(200);
    expect(none.json().manifests).toEqual([]);

    expect((await reg.api("DELETE", `/v2/refs/app/manifests/${sha256(sigBytes)}`)).status).toBe(202);
    const after = await reg.api("GET", `/v2/refs/app/referrers/${subject.digest}`);
    expect(after.json().manifests.map((m: { digest: string }) => m.digest)).toEqual([sha256(sbomBytes)]);
  });
});
