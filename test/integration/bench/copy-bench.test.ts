/**
 * `npm run bench` compares the same work on both sides: its bulk rows' command lines (bench/bulk.ts) put
 * the images into the same destination repositories and tags for ferry copy --from-file, ferry sync and
 * skopeo sync, and its re-run row is a real re-run for skopeo too (it skips what ferry put there). The
 * floor (bench/floor.ts) copies the image ferry copies, whole: every blob, then the manifest.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { bulkCommands, bulkRepositories } from "../../../bench/bulk.ts";
import { bundleFloor, ferryShebang } from "../../../bench/lib.ts";
import { RegistryClient } from "../../../shared/registry/client.ts";
import { imageOf, seededBlob, writeSample } from "../../../shared/sample/image.ts";
import { RegistrySink } from "../../../shared/transfer/registry-endpoints.ts";
import { type RunningDistribution, startDistribution } from "../../helpers/distribution.ts";
import { skopeoMissing } from "../../helpers/skopeo.ts";
import { removeTmpDir, tmpDir } from "../../helpers/tmp.ts";

const run = promisify(execFile);
const N = 2;
const started: RunningDistribution[] = [];
const dir = tmpDir("ferry-bench-test-");
afterAll(async () => {
  await Promise.all(started.map((d) => d.stop()));
  removeTmpDir(dir);
});

async function registry(): Promise<RunningDistribution> {
  const d = await startDistribution({ auth: "none" });
  started.push(d);
  return d;
}

/** Every repository of `host` with the digest of its `v1` tag. */
async function contents(host: string): Promise<Record<string, string | undefined>> {
  const c = new RegistryClient();
  try {
    const out: Record<string, string | undefined> = {};
    for await (const r of c.catalog(host))
      out[r] = (await c.headManifest({ registry: host, repository: r, tag: "v1" }))?.digest;
    return out;
  } finally {
    await c.close();
  }
}

describe("npm run bench: the bulk rows", () => {
  it("ferry copy, ferry sync and skopeo sync write the same repositories and tags, and skopeo's re-run skips what is present", async () => {
    if (skopeoMissing() && process.env.CI) throw new Error(skopeoMissing());
    const src = await registry();
    const client = new RegistryClient();
    for (const repository of bulkRepositories(N)) {
      const layer = await seededBlob(`bench-test-${repository}`, 10_000);
      const img = imageOf([{ blob: layer, diffId: layer.desc.digest }], {
        os: "linux",
        architecture: "amd64",
      });
      await writeSample(new RegistrySink(client, { registry: src.host, repository }), [img], undefined, "v1");
    }
    await client.close();
    const expected = await contents(src.host);
    expect(Object.keys(expected)).toEqual(bulkRepositories(N));

    const byFerry = await registry();
    const f = bulkCommands(src.host, byFerry.host, N, dir).ferry;
    await run(f[0], f[1]);
    expect(await contents(byFerry.host)).toEqual(expected);

    const bySync = await registry();
    const y = bulkCommands(src.host, bySync.host, N, dir)["ferry sync"];
    await run(y[0], y[1]);
    expect(await contents(bySync.host)).toEqual(expected);

    const bySkopeo = await registry();
    const s = bulkCommands(src.host, bySkopeo.host, N, dir)["skopeo sync"];
    await run(s[0], s[1]);
    expect(await contents(bySkopeo.host)).toEqual(expected);

    // The re-run row: skopeo sync into what ferry prepared finds every image present.
    const again = bulkCommands(src.host, byFerry.host, N, dir)["skopeo sync"];
    const out = await run(again[0], again[1]);
    expect(
      `${out.stdout}${out.stderr}`.match(/Skipping: image already present at destination/g),
    ).toHaveLength(N);
    expect(await contents(byFerry.host)).toEqual(expected);
  });
});

describe("npm run bench: the floor", () => {
  // as the bench runs it: bundled as the CLI is, with the ferry executable's Node flags
  const floor = async (...a: string[]) =>
    run(process.execPath, [...ferryShebang().nodeFlags, await bundleFloor(dir), ...a]);

  it.each(["undici", "http"])(
    "copies the image whole through %s: every blob, then the manifest",
    async (c) => {
      const src = await registry();
      const dst = await registry();
      const client = new RegistryClient();
      const layers = await Promise.all([1, 2, 3].map((i) => seededBlob(`floor-${c}-${i}`, 300_000 * i)));
      const img = imageOf(
        layers.map((l) => ({ blob: l, diffId: l.desc.digest })),
        { os: "linux", architecture: "amd64" },
      );
      await writeSample(
        new RegistrySink(client, { registry: src.host, repository: "f/img" }),
        [img],
        undefined,
        "v1",
      );
      await floor(c, `${src.host}/f/img:v1`, `${dst.host}/f/img:v1`, "2");
      const repo = { registry: dst.host, repository: "f/img" };
      expect((await client.headManifest({ ...repo, tag: "v1" }))?.digest).toBe(img.manifest.digest);
      for (const b of [img.config, ...img.layers])
        expect(await client.headBlob(repo, b.desc.digest), b.desc.digest).toBe(b.desc.size);
      await client.close();
    },
  );
});
