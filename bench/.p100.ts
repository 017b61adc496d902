import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createGzip } from "node:zlib";
import { RegistryClient } from "../shared/registry/client.ts";
import { MediaType } from "../shared/registry/media-types.ts";
import { imageOf, type SampleBlob, writeSample } from "../shared/sample/image.ts";
import { seededStream } from "../shared/sample/seeded.ts";
import { RegistrySink } from "../shared/transfer/registry-endpoints.ts";
import { startDistribution } from "../test/helpers/distribution.ts";
import { useRamStorage } from "./lib.ts";

useRamStorage(false);
const MiB = 1024 * 1024;
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
const dsts = await Promise.all([...Array(10).keys()].map(() => startDistribution({ auth: "none" })));
const layers = await Promise.all([...Array(10).keys()].map((i) => gz(`mid-${i}`, 10 * MiB)));
const client = new RegistryClient();
const img = imageOf(
  layers.map((blob) => ({ blob, diffId: blob.desc.digest })),
  { os: "linux", architecture: "amd64" },
);
await writeSample(
  new RegistrySink(client, { registry: src.host, repository: "bench/mid" }),
  [img],
  undefined,
  "v1",
);
await client.close();
writeFileSync("/tmp/h/hosts", `${src.host} ${dsts.map((d) => d.host).join(" ")}\n`);
console.log("ready");
setInterval(() => {}, 1e9);
