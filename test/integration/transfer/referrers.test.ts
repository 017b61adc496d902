import { afterAll, describe, expect, it } from "vitest";
import { sha256 } from "../../../shared/registry/digest.ts";
import { MediaType } from "../../../shared/registry/media-types.ts";
import { pushBlob } from "../../../shared/registry/uploads.ts";
import { bytesBlob, imageOf, tarLayer, writeSample } from "../../../shared/sample/image.ts";
import { TransferEngine } from "../../../shared/transfer/engine.ts";
import { RegistrySink, RegistrySource } from "../../../shared/transfer/registry-endpoints.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";

const regs = registries();
const anon = clientFor(regs.anon);
const tok = clientFor(regs.token);
afterAll(async () => {
  await anon.close();
  await tok.close();
});

describe("--referrers", () => {
  it("copies artifacts attached to the image: referrers tag schema and cosign tags", async () => {
    const src = { registry: regs.anon.host, repository: uniqueRepo("signed") };
    const img = imageOf([await tarLayer([{ name: "app", content: "v1" }])], {
      os: "linux",
      architecture: "amd64",
    });
    await writeSample(new RegistrySink(anon, src), [img], undefined, "v1");
    const subject = {
      mediaType: img.manifest.mediaType,
      digest: img.manifest.digest,
      size: img.manifest.bytes.length,
    };

    // an SBOM artifact whose subject is the image (OCI 1.1), listed under the fallback tag sha256-<hex>
    const empty = bytesBlob(Buffer.from("{}"), MediaType.OciEmpty);
    const sbom = bytesBlob(Buffer.from('{"spdxVersion":"SPDX-2.3"}'), "application/spdx+json");
    for (const b of [empty, sbom]) await pushBlob(anon, src, b.desc, b.open);
    const artifactBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        artifactType: "application/spdx+json",
        config: empty.desc,
        layers: [sbom.desc],
        subject,
      }),
    );
    const artifact = {
      bytes: artifactBytes,
      mediaType: MediaType.OciManifest,
      digest: sha256(artifactBytes),
    };
    await anon.putManifest(src, artifact.digest, artifact);
    const fallbackBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [
          {
            mediaType: MediaType.OciManifest,
            digest: artifact.digest,
            size: artifactBytes.length,
            artifactType: "application/spdx+json",
          },
        ],
      }),
    );
    const fallbackTag = img.manifest.digest.replace(":", "-");
    await anon.putManifest(src, fallbackTag, {
      bytes: fallbackBytes,
      mediaType: MediaType.OciIndex,
      digest: sha256(fallbackBytes),
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
      { os: "linux", architecture: "amd64" },
    );
    await writeSample(new RegistrySink(anon, src), [sig], undefined, `${fallbackTag}.sig`);

    expect((await anon.referrers(src, img.manifest.digest)).map((d) => d.digest)).toEqual([artifact.digest]);

    const dst = { registry: regs.token.host, repository: uniqueRepo("signed-copy") };
    const report = await new TransferEngine().copy(
      new RegistrySource(anon, { ...src, tag: "v1" }),
      new RegistrySink(tok, dst),
      { tags: ["v1"], referrers: true },
    );
    expect(report.referrers.map((r) => r.digest).sort()).toEqual(
      [artifact.digest, sig.manifest.digest, sha256(fallbackBytes)].sort(),
    );
    expect((await tok.headManifest({ ...dst, digest: artifact.digest }))?.digest).toBe(artifact.digest);
    expect((await tok.headManifest({ ...dst, tag: `${fallbackTag}.sig` }))?.digest).toBe(sig.manifest.digest);
    expect((await tok.referrers(dst, img.manifest.digest)).map((d) => d.digest)).toEqual([artifact.digest]);
    expect(await tok.headBlob(dst, sbom.desc.digest)).toBe(sbom.desc.size);

    // without --referrers nothing but the image moves
    const plain = { registry: regs.token.host, repository: uniqueRepo("unsigned-copy") };
    const r2 = await new TransferEngine().copy(
      new RegistrySource(anon, { ...src, tag: "v1" }),
      new RegistrySink(tok, plain),
      { tags: ["v1"] },
    );
    expect(r2.referrers).toEqual([]);
    expect(await tok.headManifest({ ...plain, tag: `${fallbackTag}.sig` })).toBeUndefined();
  });
});
