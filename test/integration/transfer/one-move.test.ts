/**
 * One blob, one move per run: a `--from-file` run promoting one multi-platform image, stored in three
 * source repositories, to three repositories of one destination registry reads each unique blob from
 * the source once and uploads it once; the two other repositories get it by cross-repository mount.
 * Counted at proxies in front of both registries.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sampleMultiPlatform, writeSample } from "../../../shared/sample/image.ts";
import { RegistrySink } from "../../../shared/transfer/registry-endpoints.ts";
import { startFaultProxy } from "../../helpers/fault-proxy.ts";
import { ferry } from "../../helpers/ferry-cli.ts";
import { expectSameImage } from "../../helpers/image-check.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { removeTmpDir, tmpDir } from "../../helpers/tmp.ts";

const regs = registries();
const dir = tmpDir("ferry-one-move-");
afterAll(() => removeTmpDir(dir));

describe("one blob, one move per run", () => {
  it("three source repositories → three destination repositories: each blob read once, uploaded once, mounted twice", async () => {
    const anon = clientFor(regs.anon);
    const { images, index } = await sampleMultiPlatform("one-move");
    const srcRepos = [uniqueRepo("om-src"), uniqueRepo("om-src"), uniqueRepo("om-src")];
    for (const r of srcRepos)
      await writeSample(
        new RegistrySink(anon, { registry: regs.anon.host, repository: r }),
        images,
        index,
        "v1",
      );
    await anon.close();
    const blobs = new Set(images.flatMap((i) => [i.config, ...i.layers].map((b) => b.desc.digest)));

    const src = await startFaultProxy(regs.anon.url, () => undefined);
    const dst = await startFaultProxy(regs.serve.url, () => undefined);
    try {
      const dstRepos = [uniqueRepo("om-dst"), uniqueRepo("om-dst"), uniqueRepo("om-dst")];
      const list = join(dir, "list.txt");
      writeFileSync(
        list,
        srcRepos.map((r, i) => `${src.host}/${r}:v1 ${dst.host}/${dstRepos[i]}:v1`).join("\n"),
      );
      const out = await ferry(["copy", "--from-file", list, "--json"]);
      expect(out.stderr).toBe("");
      expect(out.code).toBe(0);

      for (const d of blobs) {
        const reads = src.requests.filter((r) => r.method === "GET" && r.url.includes(`/blobs/${d}`));
        expect(reads, `source reads of ${d}`).toHaveLength(1);
        const uploads = dst.requests.filter(
          (r) =>
            (r.method === "PUT" || r.method === "PATCH") &&
            r.url.includes("/blobs/uploads/") &&
            decodeURIComponent(r.url).includes(`digest=${d}`),
        );
        expect(uploads, `uploads of ${d}`).toHaveLength(1);
        const mounts = dst.requests.filter(
          (r) => r.method === "POST" && decodeURIComponent(r.url).includes(`mount=${d}`),
        );
        expect(mounts, `mounts of ${d}`).toHaveLength(2);
      }
      const check = clientFor(regs.serve);
      const from = clientFor(regs.anon);
      try {
        for (let i = 0; i < 3; i++) {
          await expectSameImage(
            { client: from, ref: { registry: regs.anon.host, repository: srcRepos[i]!, tag: "v1" } },
            { client: check, ref: { registry: regs.serve.host, repository: dstRepos[i]!, tag: "v1" } },
          );
        }
      } finally {
        await check.close();
        await from.close();
      }
    } finally {
      await src.close();
      await dst.close();
    }
  });
});
