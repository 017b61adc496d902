/**
 * What happens around the measured load, with a client that records nothing: pushing the seed image
 * (pull / manifest / tags scenarios without --image), reading every pushed image back by digest at the
 * end, and deleting what the run created (--cleanup).
 */
import { mapLimit } from "../shared/concurrency.ts";
import type { RegistryClient } from "../shared/registry/client.ts";
import { FerryError } from "../shared/registry/errors.ts";
import { parseManifest, referencedBlobs } from "../shared/registry/manifest.ts";
import { formatRepository, type Repository } from "../shared/registry/reference.ts";
import { pushBlob } from "../shared/registry/uploads.ts";
import type { BenchConfig } from "./config.ts";
import type { CreatedImage } from "./scenarios.ts";
import { syntheticImage } from "./synth.ts";

/** Pushes one synthetic image of the configured shape as `<repo>:seed-<runId>`. */
export async function pushSeed(client: RegistryClient, config: BenchConfig): Promise<CreatedImage> {
  const repo: Repository = { registry: config.registry, repository: config.repository };
  const tag = `seed-${config.runId}`;
  try {
    client.declarePush(repo);
    const img = await syntheticImage({ ...config.push, reuse: 0 }, config.runId, "seed");
    await mapLimit([...img.layers, img.config], 4, (b) => pushBlob(client, repo, b.desc, b.open));
    await client.putManifest(repo, tag, img.manifest);
    return {
      repository: repo.repository,
      tag,
      digest: img.manifest.digest,
      blobs: [img.config.desc.digest, ...img.layers.map((l) => l.desc.digest)],
      seed: true,
    };
  } catch (err) {
    throw new FerryError(
      "BENCH_SETUP",
      `bench setup: could not push the seed image to ${formatRepository(repo)}:${tag} (give --image to read an existing image): ${(err as Error).message}`,
      { cause: err },
    );
  }
}

export interface ReadbackReport {
  manifests: number;
  blobs: number;
  bytes: number;
  failures: number;
  /** The first failures, one line each. */
  errors: string[];
}

/** Reads every created image back by digest: its manifest (digest-checked) and each blob (digest-verified). */
export async function readBack(
  client: RegistryClient,
  registry: string,
  created: CreatedImage[],
): Promise<ReadbackReport> {
  const out: ReadbackReport = { manifests: 0, blobs: 0, bytes: 0, failures: 0, errors: [] };
  const fail = (what: string, err: unknown) => {
    out.failures++;
    if (out.errors.length < 10) out.errors.push(`${what}: ${(err as Error).message}`);
  };
  const blobsSeen = new Set<string>();
  await mapLimit(created, 8, async (img) => {
    const repo: Repository = { registry, repository: img.repository };
    let blobs: ReturnType<typeof referencedBlobs>;
    try {
      const raw = await client.getManifest({ ...repo, digest: img.digest });
      out.manifests++;
      blobs = referencedBlobs(parseManifest(raw.bytes, raw.mediaType));
      const listed = new Set(blobs.map((b) => b.digest));
      const missing = img.blobs.filter((d) => !listed.has(d));
      if (missing.length) throw new FerryError("READBACK", `manifest does not list ${missing.join(", ")}`);
    } catch (err) {
      fail(`read back ${formatRepository(repo)}@${img.digest}`, err);
      return;
    }
    for (const desc of blobs) {
      const key = `${img.repository}@${desc.digest}`;
      if (blobsSeen.has(key)) continue;
      blobsSeen.add(key);
      try {
        const stream = await client.getBlob(repo, desc);
        for await (const c of stream) out.bytes += (c as Buffer).length;
        out.blobs++;
      } catch (err) {
        fail(`read back blob ${desc.digest} in ${formatRepository(repo)}`, err);
      }
    }
  });
  return out;
}

export interface CleanupReport {
  manifests: number;
  blobs: number;
  failures: number;
  errors: string[];
}

/** Deletes the created manifests (by digest, which drops their tags), then their blobs. */
export async function cleanUp(
  client: RegistryClient,
  registry: string,
  created: CreatedImage[],
): Promise<CleanupReport> {
  const out: CleanupReport = { manifests: 0, blobs: 0, failures: 0, errors: [] };
  const fail = (what: string, err: unknown) => {
    out.failures++;
    if (out.errors.length < 10) out.errors.push(`${what}: ${(err as Error).message}`);
  };
  await mapLimit(created, 8, async (img) => {
    try {
      await client.deleteManifest({ registry, repository: img.repository, digest: img.digest });
      out.manifests++;
    } catch (err) {
      fail(`delete ${registry}/${img.repository}@${img.digest}`, err);
    }
  });
  const blobs = new Map<string, { repository: string; digest: string }>();
  for (const img of created)
    for (const d of img.blobs) blobs.set(`${img.repository}@${d}`, { repository: img.repository, digest: d });
  await mapLimit([...blobs.values()], 8, async (b) => {
    try {
      await client.deleteBlob({ registry, repository: b.repository }, b.digest);
      out.blobs++;
    } catch (err) {
      fail(`delete blob ${b.digest} from ${registry}/${b.repository}`, err);
    }
  });
  return out;
}
