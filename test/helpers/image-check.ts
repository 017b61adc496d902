/**
 * What a copy left at its destination, read back from the registry itself: the tag, every manifest by
 * digest and every blob, compared with the source byte for byte and digest for digest. And the opposite
 * for a copy that failed: neither the tag, nor any manifest, nor the blobs named are there.
 */
import { createHash } from "node:crypto";
import { expect } from "vitest";
import type { RegistryClient } from "../../shared/registry/client.ts";
import { parseManifest, referencedBlobs } from "../../shared/registry/manifest.ts";
import type { Reference, Repository } from "../../shared/registry/reference.ts";

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** A registry and the reference read through it. */
export interface At {
  client: RegistryClient;
  ref: Reference;
}

/**
 * Asserts that `dst` holds exactly the image `src` holds: GET the destination's tag (same bytes as the
 * source's), then GET every manifest by digest on both sides (same bytes, and the bytes hash to the
 * digest), then HEAD every blob (the descriptor's size) and GET it (bytes hash to the digest). Returns
 * how many manifests and distinct blobs were checked (never zero: an empty walk fails).
 */
export async function expectSameImage(src: At, dst: At): Promise<{ manifests: number; blobs: number }> {
  const srcRoot = await src.client.getManifest(src.ref);
  const dstRoot = await dst.client.getManifest(dst.ref);
  expect(sha256(dstRoot.bytes), `the tag ${dst.ref.tag ?? dst.ref.digest}`).toBe(sha256(srcRoot.bytes));
  const byDigest = (at: At, digest: string): Reference => ({
    registry: at.ref.registry,
    repository: at.ref.repository,
    digest,
  });
  const dstRepo: Repository = { registry: dst.ref.registry, repository: dst.ref.repository };
  const queue = [sha256(srcRoot.bytes)];
  const blobs = new Set<string>();
  let manifests = 0;
  while (queue.length) {
    const digest = queue.shift()!;
    const s = await src.client.getManifest(byDigest(src, digest));
    const d = await dst.client.getManifest(byDigest(dst, digest));
    expect(sha256(d.bytes), `manifest ${digest}`).toBe(digest);
    expect(Buffer.from(d.bytes).equals(Buffer.from(s.bytes)), `manifest ${digest} bytes`).toBe(true);
    manifests++;
    const m = parseManifest(d.bytes, d.mediaType);
    if (m.kind === "index") queue.push(...m.manifests.map((c) => c.digest));
    for (const desc of referencedBlobs(m)) {
      if (blobs.has(desc.digest)) continue;
      blobs.add(desc.digest);
      expect(await dst.client.headBlob(dstRepo, desc.digest), `HEAD blob ${desc.digest}`).toBe(desc.size);
      const h = createHash("sha256");
      let size = 0;
      for await (const c of await dst.client.getBlob(dstRepo, desc)) {
        h.update(c as Buffer);
        size += (c as Buffer).length;
      }
      expect({ digest: `sha256:${h.digest("hex")}`, size }, `GET blob ${desc.digest}`).toEqual({
        digest: desc.digest,
        size: desc.size,
      });
    }
  }
  expect(manifests).toBeGreaterThan(0);
  expect(blobs.size).toBeGreaterThan(0);
  return { manifests, blobs: blobs.size };
}

/**
 * Asserts that a failed copy left nothing at `dst`: no tag, none of `manifests` (digests) and none of
 * `blobs` (digests; at least the bad one). Both lists must be non-empty.
 */
export async function expectNothingAt(
  dst: At,
  what: { manifests: string[]; blobs: string[] },
): Promise<void> {
  expect(what.manifests.length).toBeGreaterThan(0);
  expect(what.blobs.length).toBeGreaterThan(0);
  const repo: Repository = { registry: dst.ref.registry, repository: dst.ref.repository };
  expect(await dst.client.headManifest(dst.ref), `the tag ${dst.ref.tag}`).toBeUndefined();
  for (const digest of what.manifests)
    expect(await dst.client.headManifest({ ...repo, digest }), `manifest ${digest}`).toBeUndefined();
  for (const digest of what.blobs)
    expect(await dst.client.headBlob(repo, digest), `blob ${digest}`).toBeUndefined();
}
