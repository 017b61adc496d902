/**
 * Referrers (signatures, SBOMs, attestations) between real registries: ferry serve has the referrers
 * API (it answers a push with a `subject` with `OCI-Subject`), distribution 2.8 has not, so there the
 * pusher keeps the `sha256-<hex>` referrers tag (OCI distribution spec 1.1, "Referrers Tag Schema").
 */
import { afterAll, describe, expect, it } from "vitest";
import type { RegistryClient } from "../../../shared/registry/client.ts";
import { sha256 } from "../../../shared/registry/digest.ts";
import type { Descriptor, RawManifest } from "../../../shared/registry/manifest.ts";
import { MediaType } from "../../../shared/registry/media-types.ts";
import type { Repository } from "../../../shared/registry/reference.ts";
import { referrersTag } from "../../../shared/registry/referrers.ts";
import { pushBlob } from "../../../shared/registry/uploads.ts";
import { bytesBlob, imageOf, tarLayer, writeSample } from "../../../shared/sample/image.ts";
import { TransferEngine } from "../../../shared/transfer/engine.ts";
import { RegistrySink, RegistrySource } from "../../../shared/transfer/registry-endpoints.ts";
import type { RegistryInfo } from "../../helpers/context.ts";
import { ferry } from "../../helpers/ferry-cli.ts";
import { hostileServer } from "../../helpers/hostile.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { describeWithSkopeo, skopeo } from "../../helpers/skopeo.ts";

const regs = registries();
const anon = clientFor(regs.anon);
const tok = clientFor(regs.token);
const serve = clientFor(regs.serve);
afterAll(async () => {
  await anon.close();
  await tok.close();
  await serve.close();
});

const PLATFORM = { os: "linux", architecture: "amd64" };

/** An image pushed under `tag`, with its descriptor as a subject. */
async function pushImage(client: RegistryClient, repo: Repository, content: string, tag = "v1") {
  const img = imageOf([await tarLayer([{ name: "app", content }])], PLATFORM);
  await writeSample(new RegistrySink(client, repo), [img], undefined, tag);
  const subject = {
    mediaType: img.manifest.mediaType,
    digest: img.manifest.digest,
    size: img.manifest.bytes.length,
  };
  return { img, subject };
}

interface ArtifactSpec {
  /** The manifest's artifactType; without it the referrers list takes the config's media type. */
  artifactType?: string;
  configMediaType?: string;
  content: string;
  annotations?: Record<string, string>;
}

/** An OCI 1.1 artifact manifest whose subject is `subject`, with its blobs (not pushed). */
function artifactOf(subject: Descriptor, spec: ArtifactSpec) {
  const config = bytesBlob(Buffer.from("{}"), spec.configMediaType ?? MediaType.OciEmpty);
  const layer = bytesBlob(Buffer.from(spec.content), "application/octet-stream");
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      ...(spec.artifactType ? { artifactType: spec.artifactType } : {}),
      config: config.desc,
      layers: [layer.desc],
      subject,
      ...(spec.annotations ? { annotations: spec.annotations } : {}),
    }),
  );
  const manifest: RawManifest = { bytes, mediaType: MediaType.OciManifest, digest: sha256(bytes) };
  return { manifest, blobs: [config, layer], layer };
}

/** Pushes an artifact through ferry's client (which keeps the referrers tag where needed). */
async function pushArtifact(
  client: RegistryClient,
  repo: Repository,
  subject: Descriptor,
  spec: ArtifactSpec,
) {
  const a = artifactOf(subject, spec);
  for (const b of a.blobs) await pushBlob(client, repo, b.desc, b.open);
  await client.putManifest(repo, a.manifest.digest, a.manifest);
  return a;
}

/** The descriptor the spec wants in a referrers list for `a`. */
function listed(a: { manifest: RawManifest }, artifactType: string, annotations?: Record<string, string>) {
  return {
    mediaType: MediaType.OciManifest,
    digest: a.manifest.digest,
    size: a.manifest.bytes.length,
    artifactType,
    ...(annotations ? { annotations } : {}),
  };
}

/** The referrers tag of `subject` as stored, read with plain HTTP (no ferry code): undefined on 404. */
async function tagIndex(reg: RegistryInfo, repo: Repository, subject: string) {
  const res = await fetch(`${reg.url}/v2/${repo.repository}/manifests/${referrersTag(subject)}`, {
    headers: { accept: MediaType.OciIndex },
  });
  if (res.status === 404) return undefined;
  expect(res.status).toBe(200);
  return (await res.json()) as { schemaVersion: number; mediaType: string; manifests: Descriptor[] };
}

async function tagsOf(client: RegistryClient, repo: Repository): Promise<string[]> {
  const out: string[] = [];
  for await (const t of client.tags(repo)) out.push(t);
  return out;
}

describe("--referrers", () => {
  it("copies artifacts attached to the image: referrers tag schema and cosign tags", async () => {
    const src = { registry: regs.anon.host, repository: uniqueRepo("signed") };
    const { img, subject } = await pushImage(anon, src, "v1");

    // an SBOM artifact whose subject is the image (OCI 1.1): distribution has no referrers API, so
    // ferry's putManifest lists it under the referrers tag sha256-<hex>
    const sbom = await pushArtifact(anon, src, subject, {
      artifactType: "application/spdx+json",
      content: '{"spdxVersion":"SPDX-2.3"}',
    });
    const fallbackTag = referrersTag(img.manifest.digest);
    expect(await tagIndex(regs.anon, src, img.manifest.digest)).toEqual({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [listed(sbom, "application/spdx+json")],
    });

    // a cosign-style signature under sha256-<hex>.sig
    const sig = imageOf(
      [
        {
          blob: bytesBlob(
            Buffer.from("signature payload"),
            "application/vnd.dev.cosign.simplesigning.v1+json",
          ),
          diffId: "",
        },
      ],
      PLATFORM,
    );
    await writeSample(new RegistrySink(anon, src), [sig], undefined, `${fallbackTag}.sig`);

    expect((await anon.referrers(src, img.manifest.digest)).map((d) => d.digest)).toEqual([
      sbom.manifest.digest,
    ]);

    const dst = { registry: regs.token.host, repository: uniqueRepo("signed-copy") };
    const report = await new TransferEngine().copy(
      new RegistrySource(anon, { ...src, tag: "v1" }),
      new RegistrySink(tok, dst),
      { tags: ["v1"], referrers: true },
    );
    // the source's referrers tag is not copied as it is: the destination's is rebuilt by the pushes
    expect(report.referrers.map((r) => r.digest).sort()).toEqual(
      [sbom.manifest.digest, sig.manifest.digest].sort(),
    );
    expect((await tok.headManifest({ ...dst, digest: sbom.manifest.digest }))?.digest).toBe(
      sbom.manifest.digest,
    );
    expect((await tok.headManifest({ ...dst, tag: `${fallbackTag}.sig` }))?.digest).toBe(sig.manifest.digest);
    expect((await tok.referrers(dst, img.manifest.digest)).map((d) => d.digest)).toEqual([
      sbom.manifest.digest,
    ]);
    expect(await tok.headBlob(dst, sbom.layer.desc.digest)).toBe(sbom.layer.desc.size);

    // without --referrers nothing but the image moves
    const plain = { registry: regs.token.host, repository: uniqueRepo("unsigned-copy") };
    const r2 = await new TransferEngine().copy(
      new RegistrySource(anon, { ...src, tag: "v1" }),
      new RegistrySink(tok, plain),
      { tags: ["v1"] },
    );
    expect(r2.referrers).toEqual([]);
    expect(await tok.headManifest({ ...plain, tag: `${fallbackTag}.sig` })).toBeUndefined();
    expect(await tok.headManifest({ ...plain, tag: fallbackTag })).toBeUndefined();
  });
});

describe("the referrers tag on registries without the referrers API", () => {
  it("putManifest keeps it on distribution (no OCI-Subject) and leaves it alone on ferry serve (OCI-Subject)", async () => {
    const onDist = { registry: regs.anon.host, repository: uniqueRepo("refs-dist") };
    const onServe = { registry: regs.serve.host, repository: uniqueRepo("refs-serve") };
    for (const [client, reg, repo] of [
      [anon, regs.anon, onDist],
      [serve, regs.serve, onServe],
    ] as const) {
      const { img, subject } = await pushImage(client, repo, "x");
      const a = await pushArtifact(client, repo, subject, {
        configMediaType: "application/vnd.example.sig.config+json",
        content: "sig",
        annotations: { "org.opencontainers.image.created": "2026-01-01T00:00:00Z" },
      });
      // either way the client finds it: the API on serve, the tag on distribution
      expect(await client.referrers(repo, img.manifest.digest)).toEqual([
        listed(a, "application/vnd.example.sig.config+json", {
          "org.opencontainers.image.created": "2026-01-01T00:00:00Z",
        }),
      ]);
      const tag = await tagIndex(reg, repo, img.manifest.digest);
      if (reg === regs.serve) {
        expect(tag).toBeUndefined();
        expect(await tagsOf(client, repo)).toEqual(["v1"]);
      } else {
        // no artifactType in the manifest: the config's media type, as the spec says
        expect(tag?.manifests).toEqual([
          listed(a, "application/vnd.example.sig.config+json", {
            "org.opencontainers.image.created": "2026-01-01T00:00:00Z",
          }),
        ]);
        expect((await tagsOf(client, repo)).sort()).toEqual([referrersTag(img.manifest.digest), "v1"].sort());
      }
    }
  });

  it("concurrent pushes of referrers of one image through one client keep every entry", async () => {
    const repo = { registry: regs.anon.host, repository: uniqueRepo("refs-concurrent") };
    const { img, subject } = await pushImage(anon, repo, "c");
    const specs = ["a", "b", "c", "d", "e"].map((n) => ({
      artifactType: `application/vnd.example.${n}`,
      content: n,
    }));
    const pushed = await Promise.all(specs.map((s) => pushArtifact(anon, repo, subject, s)));
    const tag = await tagIndex(regs.anon, repo, img.manifest.digest);
    expect(tag?.manifests.map((d) => d.digest).sort()).toEqual(pushed.map((a) => a.manifest.digest).sort());
    expect(tag?.manifests).toHaveLength(5);
    // the client's artifactType filter applies to the tag's list too
    expect(
      (await anon.referrers(repo, img.manifest.digest, { artifactType: "application/vnd.example.c" })).map(
        (d) => d.digest,
      ),
    ).toEqual([pushed[2]!.manifest.digest]);
  });

  it("a referrer already at the destination is listed when the copy runs again", async () => {
    // the referrer reached the destination without its tag entry (an older ferry, another tool, or a
    // run that stopped between the two pushes): pushed here with plain HTTP, no ferry code
    const src = { registry: regs.serve.host, repository: uniqueRepo("refs-rerun-src") };
    const dst = { registry: regs.anon.host, repository: uniqueRepo("refs-rerun-dst") };
    const { img, subject } = await pushImage(serve, src, "r");
    const sbom = await pushArtifact(serve, src, subject, {
      artifactType: "application/spdx+json",
      content: "s",
    });
    await writeSample(new RegistrySink(anon, dst), [img], undefined, "v1");
    for (const b of sbom.blobs) await pushBlob(anon, dst, b.desc, b.open);
    const put = await fetch(`${regs.anon.url}/v2/${dst.repository}/manifests/${sbom.manifest.digest}`, {
      method: "PUT",
      headers: { "content-type": MediaType.OciManifest },
      body: sbom.manifest.bytes,
    });
    expect(put.status).toBe(201);
    expect(await tagIndex(regs.anon, dst, img.manifest.digest)).toBeUndefined();

    const report = await new TransferEngine().copy(
      new RegistrySource(serve, { ...src, tag: "v1" }),
      new RegistrySink(anon, dst),
      { tags: ["v1"], referrers: true },
    );
    expect(report.upToDate).toBe(true);
    expect(report.referrers.map((r) => [r.digest, r.upToDate])).toEqual([[sbom.manifest.digest, true]]);
    expect((await tagIndex(regs.anon, dst, img.manifest.digest))?.manifests).toEqual([
      listed(sbom, "application/spdx+json"),
    ]);
  });
});

describe("RegistryClient.referrers", () => {
  it("referrers() follows the Link pages of the referrers API", async () => {
    const subject = sha256("paged subject");
    const entry = (n: string) => ({
      mediaType: MediaType.OciManifest,
      digest: sha256(n),
      size: 1,
      artifactType: "x/y",
    });
    const index = (manifests: unknown[]) =>
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests });
    const paged = await hostileServer((r, res) => {
      if (r.url === "/v2/") return res.writeHead(200).end("{}");
      if (r.url === `/v2/app/referrers/${subject}`)
        return res
          .writeHead(200, {
            "content-type": MediaType.OciIndex,
            link: `</v2/app/referrers/${subject}?page=2>; rel="next"`,
          })
          .end(index([entry("one")]));
      if (r.url === `/v2/app/referrers/${subject}?page=2`)
        return res.writeHead(200, { "content-type": MediaType.OciIndex }).end(index([entry("two")]));
      res.writeHead(404).end();
    });
    const client = clientFor({ host: paged.host, url: paged.url, auth: "none", storageDir: "" });
    try {
      const found = await client.referrers({ registry: paged.host, repository: "app" }, subject);
      expect(found.map((d) => d.digest)).toEqual([sha256("one"), sha256("two")]);
    } finally {
      await client.close();
      await paged.close();
    }
  });
});

describeWithSkopeo("ferry copy --referrers: ferry serve → distribution → ferry serve", () => {
  it("lists copied referrers under the referrers tag, merges a later one, and a copy from there finds both", async () => {
    const src = { registry: regs.serve.host, repository: uniqueRepo("sbom-src") };
    const mid = { registry: regs.anon.host, repository: uniqueRepo("sbom-mid") };
    const end = { registry: regs.serve.host, repository: uniqueRepo("sbom-end") };
    const { img, subject } = await pushImage(serve, src, "sbom");
    const tag = referrersTag(img.manifest.digest);
    const sbom = await pushArtifact(serve, src, subject, {
      artifactType: "application/spdx+json",
      content: '{"spdxVersion":"SPDX-2.3"}',
      annotations: { "org.example.kind": "sbom" },
    });
    const copy = (from: Repository, to: Repository) =>
      ferry([
        "copy",
        `docker://${from.registry}/${from.repository}:v1`,
        `docker://${to.registry}/${to.repository}:v1`,
        "--referrers",
        "-q",
      ]);
    /** The referrers tag at distribution, as skopeo (an independent client) reads it. */
    const skopeoIndex = async () =>
      JSON.parse(
        await skopeo(
          "inspect",
          "--raw",
          "--tls-verify=false",
          `docker://${mid.registry}/${mid.repository}:${tag}`,
        ),
      ) as {
        mediaType: string;
        manifests: Descriptor[];
      };

    const first = await copy(src, mid);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const index1 = await skopeoIndex();
    expect(index1.mediaType).toBe(MediaType.OciIndex);
    expect(index1.manifests).toEqual([listed(sbom, "application/spdx+json", { "org.example.kind": "sbom" })]);

    // a signature added at the source later: the next copy adds it, the SBOM stays, nothing twice
    const sig = await pushArtifact(serve, src, subject, {
      artifactType: "application/vnd.example.signature",
      content: "signed",
    });
    const second = await copy(src, mid);
    expect(second.code).toBe(0);
    const expected = [
      listed(sbom, "application/spdx+json", { "org.example.kind": "sbom" }),
      listed(sig, "application/vnd.example.signature"),
    ];
    expect((await skopeoIndex()).manifests).toEqual(expected);
    const third = await copy(src, mid);
    expect(third.code).toBe(0);
    expect((await skopeoIndex()).manifests).toEqual(expected);

    // from distribution (no referrers API) on: the referrers are found through the tag
    const onward = await copy(mid, end);
    expect(onward.stderr).toBe("");
    expect(onward.code).toBe(0);
    const found = await serve.referrers(end, img.manifest.digest);
    expect(found.map((d) => d.digest).sort()).toEqual([sbom.manifest.digest, sig.manifest.digest].sort());
    expect(await serve.headBlob(end, sbom.layer.desc.digest)).toBe(sbom.layer.desc.size);
    // ferry serve indexes them itself: no referrers tag is written there
    expect(await tagsOf(serve, end)).toEqual(["v1"]);
  });
});
