/**
 * Files ferry writes, through the built CLI: `oci-archive:` read and written as skopeo reads and writes
 * it, and a pull that fails mid-way leaving no partial output — no new file or directory, and an existing
 * OCI layout byte for byte as it was — for `oci:`, `oci-archive:` and `docker-archive:` alike.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../../shared/registry/digest.ts";
import { MediaType } from "../../../shared/registry/media-types.ts";
import { bytesBlob, imageOf, type SampleImage, sampleMultiPlatform } from "../../../shared/sample/image.ts";
import { type FaultProxy, startFaultProxy } from "../../helpers/fault-proxy.ts";
import { ferry } from "../../helpers/ferry-cli.ts";
import { pushSample, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { describeWithSkopeo, skopeo } from "../../helpers/skopeo.ts";
import { tmpDir } from "../../helpers/tmp.ts";

const regs = registries();
const env = { DOCKER_CONFIG: tmpDir("ferry-cli-files-cfg-") };
const run = (args: string[]) => ferry(args, env);

const push = (images: SampleImage[], index: SampleImage["manifest"] | undefined, tag: string) =>
  pushSample(regs.anon, uniqueRepo("files"), images, index, tag);

const digestOfText = (s: string) => `sha256:${createHash("sha256").update(s, "latin1").digest("hex")}`;

let sample: Awaited<ReturnType<typeof sampleMultiPlatform>>;
let multi: string;
let single: string;

beforeAll(async () => {
  sample = await sampleMultiPlatform("file-outputs");
  multi = await push(sample.images, sample.index, "multi");
  single = await push([sample.images[0]!], undefined, "v1");
});

describeWithSkopeo("oci-archive: as skopeo reads and writes it", () => {
  it("skopeo writes an oci-archive; ferry pushes it, with or without its tag, and the digest is kept", async () => {
    const dir = tmpDir("ferry-oci-archive-");
    const file = join(dir, "from-skopeo.tar");
    await skopeo("copy", "--src-tls-verify=false", `docker://${single}`, `oci-archive:${file}:v1`);
    const inArchive = digestOfText(await skopeo("inspect", "--raw", `oci-archive:${file}:v1`));

    const dst = `${regs.anon.host}/${uniqueRepo("from-oci-archive")}`;
    const tagged = await run(["push", `oci-archive:${file}:v1`, `${dst}:v1`, "--json"]);
    expect(tagged.code, tagged.stderr).toBe(0);
    expect(JSON.parse(tagged.stdout).digest).toBe(inArchive);
    const bare = await run(["copy", `oci-archive:${file}`, `${dst}:v2`, "--json"]);
    expect(bare.code, bare.stderr).toBe(0);
    expect(JSON.parse(bare.stdout).digest).toBe(inArchive);
    const raw = await skopeo("inspect", "--raw", "--tls-verify=false", `docker://${dst}:v2`);
    expect(digestOfText(raw)).toBe(inArchive);

    const wrong = await run(["push", `oci-archive:${file}:nope`, `${dst}:v3`]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/oci-archive:.*no manifest tagged "nope" in index\.json \(tags: v1\)/);
  });

  it("ferry pulls a multi-platform image into an oci-archive that skopeo reads, whole and per platform", async () => {
    const dir = tmpDir("ferry-oci-archive-");
    const file = join(dir, "from-ferry.tar");
    const r = await run(["pull", multi, `oci-archive:${file}:multi`]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(dir)).toEqual(["from-ferry.tar"]); // no temporary layout or tar left beside it
    expect(digestOfText(await skopeo("inspect", "--raw", `oci-archive:${file}:multi`))).toBe(
      sample.index.digest,
    );
    const oci = join(dir, "copied-by-skopeo");
    await skopeo("copy", "--all", `oci-archive:${file}:multi`, `oci:${oci}:multi`);
    for (const image of sample.images) {
      for (const blob of [image.config, ...image.layers])
        expect(sha256(readFileSync(join(oci, "blobs/sha256", blob.desc.digest.slice(7))))).toBe(
          blob.desc.digest,
        );
    }
    // and back into a registry by ferry: the index keeps its digest
    const back = await run([
      "push",
      `oci-archive:${file}:multi`,
      `${regs.anon.host}/${uniqueRepo("back")}:multi`,
      "--json",
    ]);
    expect(back.code, back.stderr).toBe(0);
    expect(JSON.parse(back.stdout).digest).toBe(sample.index.digest);
  });
});

describe("a pull that fails leaves no partial output", () => {
  const MiB = 1024 * 1024;
  let proxy: FaultProxy;
  /** Two 2 MiB layers; the proxy answers 404 for the second, after the first (and the config) arrived. */
  let failing: string;
  let firstLayer: number;

  beforeAll(async () => {
    const layers = [randomBytes(2 * MiB), randomBytes(2 * MiB)].map((bytes) => ({
      blob: bytesBlob(bytes, MediaType.OciLayer),
      diffId: sha256(bytes),
    }));
    firstLayer = layers[0]!.blob.desc.size;
    const image = imageOf(layers, { os: "linux", architecture: "amd64" });
    const ref = await push([image], undefined, "v1");
    const second = layers[1]!.blob.desc.digest;
    proxy = await startFaultProxy(`http://${regs.anon.host}`, (r) =>
      r.method === "GET" && r.url.endsWith(`/blobs/${second}`)
        ? {
            kind: "status",
            status: 404,
            body: JSON.stringify({ errors: [{ code: "BLOB_UNKNOWN", message: "blob unknown" }] }),
          }
        : undefined,
    );
    failing = ref.replace(regs.anon.host, proxy.host);
  });

  afterAll(async () => {
    await proxy?.close();
  });

  /** Pulls the failing image into `dest` (big blobs one at a time: the first layer lands, then the second fails). */
  async function failingPull(dest: string) {
    const down = proxy.bytes.down;
    const r = await run(["pull", failing, dest, "--concurrency", "1"]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/404 Not Found \(BLOB_UNKNOWN/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    // the first layer came down whole before the failure: there was something to take back
    expect(proxy.bytes.down - down).toBeGreaterThanOrEqual(firstLayer);
    return r;
  }

  /** Every file under `dir` with its sha256 and mode. */
  function snapshot(dir: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const rel of readdirSync(dir, { recursive: true }) as string[]) {
      const st = statSync(join(dir, rel));
      out[rel] = st.isFile() ? `${sha256(readFileSync(join(dir, rel)))} ${st.mode}` : `dir ${st.mode}`;
    }
    return out;
  }

  it.each([
    ["oci:", (p: string) => `oci:${join(p, "layout")}:v1`],
    ["oci: in directories that do not exist yet", (p: string) => `oci:${join(p, "a", "b", "layout")}`],
    ["oci-archive:", (p: string) => `oci-archive:${join(p, "image.tar")}:v1`],
    ["docker-archive:", (p: string) => `docker-archive:${join(p, "image.tar")}`],
  ])("%s: nothing is created", async (_, dest) => {
    const parent = tmpDir("ferry-partial-");
    await failingPull(dest(parent));
    expect(readdirSync(parent)).toEqual([]);
  });

  it("an existing OCI layout stays byte for byte as it was: index.json untouched, the blobs it added removed", async () => {
    const layout = join(tmpDir("ferry-partial-"), "layout");
    const good = await run(["pull", single, `oci:${layout}:good`]);
    expect(good.code, good.stderr).toBe(0);
    const before = snapshot(layout);
    expect(Object.keys(before)).toEqual(expect.arrayContaining(["index.json", "oci-layout"]));
    await failingPull(`oci:${layout}:bad`);
    expect(snapshot(layout)).toEqual(before);
    // and it still works: the good image reads back
    const again = await run(["push", `oci:${layout}:good`, `${regs.anon.host}/${uniqueRepo("again")}:good`]);
    expect(again.code, again.stderr).toBe(0);
    expect(existsSync(join(layout, "index.json"))).toBe(true);
  });
});
