import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { createGzip } from "node:zlib";
import { RegistryClient } from "../shared/registry/client.ts";
import { MediaType } from "../shared/registry/media-types.ts";
import { imageOf, type SampleBlob, writeSample } from "../shared/sample/image.ts";
import { seededStream } from "../shared/sample/seeded.ts";
import { RegistrySink } from "../shared/transfer/registry-endpoints.ts";
import { startDistribution } from "../test/helpers/distribution.ts";
import { bulkCommands } from "./bulk.ts";
import { useRamStorage } from "./lib.ts";

useRamStorage(false);
async function gz(seed: string, raw: number): Promise<SampleBlob> {
  const make = () => seededStream(seed, raw).pipe(createGzip({ level: 1 }));
  const h = createHash("sha256");
  let size = 0;
  for await (const c of make()) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return {
    desc: { mediaType: MediaType.OciLayerGzip, digest: `sha256:${h.digest("hex")}`, size },
    open: async () => make(),
  } as SampleBlob;
}
const src = await startDistribution({ auth: "none" });
const dsts = await Promise.all([...Array(12).keys()].map(() => startDistribution({ auth: "none" })));
const client = new RegistryClient();
for (let i = 0; i < 50; i++) {
  const layers = await Promise.all([0, 1, 2, 3, 4].map((j) => gz(`small-${i}-${j}`, 100 * 1024)));
  const img = imageOf(
    layers.map((blob) => ({ blob, diffId: blob.desc.digest })),
    { os: "linux", architecture: "amd64" },
  );
  await writeSample(
    new RegistrySink(client, { registry: src.host, repository: `bulk/app${i}` }),
    [img],
    undefined,
    "v1",
  );
}
await client.close();
dsts.forEach((d, k) => {
  const dir = `/tmp/hb/${k}`;
  mkdirSync(dir, { recursive: true });
  const c = bulkCommands(src.host, d.host, 50, dir);
  writeFileSync(`${dir}/cmd`, JSON.stringify(c));
});
writeFileSync("/tmp/hb/hosts", `${src.host} ${dsts.map((d) => d.host).join(" ")}\n`);
console.log("ready");
setInterval(() => {}, 1e9);
