/**
 * `--referrers`: what refers to a copied image (signatures, SBOMs, attestations) is copied after it.
 *
 * Found at the source through the referrers API, or its `<alg>-<hex>` tag schema on registries without
 * one (RegistryClient.referrers), and through cosign's `<alg>-<hex>.sig/.att/.sbom` tags. Each referrer
 * is copied by digest; pushing it is what makes it findable at the destination: a registry with the
 * referrers API indexes its subject, and for one without, RegistryClient.putManifest adds it to the
 * destination's referrers tag. So that tag is never copied as it is from the source: it is rebuilt,
 * merged with whatever the destination already lists.
 */
import { referrersTag } from "../registry/referrers.ts";
import type { CopyOptions } from "./engine.ts";
import { RegistrySink, RegistrySource } from "./registry-endpoints.ts";
import type { ImageReport } from "./report.ts";
import type { ImageSink, ImageSource } from "./types.ts";

/** The engine's copy of one image (referrers are images too, and may have referrers of their own). */
export type CopyImage = (source: ImageSource, sink: ImageSink, opts: CopyOptions) => Promise<ImageReport>;

/** cosign's tags next to an image: `<alg>-<hex>` plus these suffixes. */
const COSIGN_SUFFIXES = [".sig", ".att", ".sbom"];

/**
 * Copies what refers to the given manifest digests, registry to registry only (other sinks hold no
 * referrers). Each artifact once, even when several digests list it.
 */
export async function copyReferrers(
  copy: CopyImage,
  source: ImageSource,
  sink: ImageSink,
  digests: string[],
): Promise<ImageReport[]> {
  if (!(source instanceof RegistrySource) || !(sink instanceof RegistrySink)) return [];
  const out: ImageReport[] = [];
  const seen = new Set<string>();
  for (const digest of digests) {
    for (const d of await source.client.referrers(source.ref, digest)) {
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      const src = new RegistrySource(source.client, {
        registry: source.ref.registry,
        repository: source.ref.repository,
        digest: d.digest,
      });
      const report = await copy(src, sink, { tags: [], referrers: true });
      // Already at the destination: its manifest is put again all the same (same bytes, nothing else
      // moves), because that push is what lists it in the destination's referrers tag — after a run
      // that stopped between the two, or a copy by an older ferry, the tag would stay incomplete.
      if (report.upToDate) await sink.putManifest(await src.resolve());
      out.push(report);
    }
    const base = referrersTag(digest);
    for (const tag of COSIGN_SUFFIXES.map((s) => base + s)) {
      const srcRef = { registry: source.ref.registry, repository: source.ref.repository, tag };
      const head = await source.client.headManifest(srcRef);
      if (!head || seen.has(`${tag}@${head.digest}`)) continue;
      seen.add(`${tag}@${head.digest}`);
      out.push(await copy(new RegistrySource(source.client, srcRef), sink, { tags: [tag] }));
    }
  }
  return out;
}
