/**
 * `npm run bench:soak`: a bounded soak — many copies in a row and concurrently through a fault proxy
 * injecting random faults (resets, 5xx, lost answers) into real distribution registries. Reports RSS at
 * start and end and the JS heap after GC (no leak; the process also hosts the two fault proxies), open sockets against the baseline, faults injected, and verifies every image
 * at the destination. Options: --rounds N (default 15), --images N (default 8), --fault-rate P (default 0.03).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { RegistryClient } from "../shared/registry/client.ts";
import { imageOf, type SampleImage, seededBlob, tarLayer, writeSample } from "../shared/sample/image.ts";
import { TransferEngine } from "../shared/transfer/engine.ts";
import { RegistrySink, RegistrySource } from "../shared/transfer/registry-endpoints.ts";
import { startDistribution } from "../test/helpers/distribution.ts";
import { type Fault, startFaultProxy } from "../test/helpers/fault-proxy.ts";
import { benchArgs } from "./args.ts";
import { table } from "./lib.ts";

const opts = benchArgs(
  "npm run bench:soak --",
  {
    rounds: { kind: "count", default: "15" },
    images: { kind: "count", default: "8" },
    "fault-rate": { kind: "number", default: "0.03", value: "P" },
  },
  (a) => (a["fault-rate"] > 1 ? `--fault-rate is a probability (0 to 1), not ${a["fault-rate"]}` : undefined),
);
const ROUNDS = opts.rounds;
const IMAGES = opts.images;
const RATE = opts["fault-rate"];
const MiB = 1024 * 1024;

function randomFault(method: string, url: string): Fault {
  if (Math.random() >= RATE) return undefined;
  if (method === "GET" && url.includes("/blobs/"))
    return Math.random() < 0.5
      ? { kind: "reset-response", after: 1000 + Math.floor(Math.random() * 200_000) }
      : { kind: "status", status: 503 };
  if (method === "PATCH") return { kind: "reset-request", after: Math.floor(Math.random() * 100_000) };
  if (method === "PUT" && url.includes("/manifests/")) return { kind: "drop-response" };
  return { kind: "status", status: [500, 502, 503, 429][Math.floor(Math.random() * 4)]! };
}

const sockets = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length;
const rss = () => process.memoryUsage().rss / MiB;
/** Live JS heap after a full collection: what a leak would grow. */
const heap = () => {
  globalThis.gc?.();
  return process.memoryUsage().heapUsed / MiB;
};

async function main() {
  const srcReg = await startDistribution({ auth: "none" });
  const dstReg = await startDistribution({ auth: "none" });
  const seed = new RegistryClient();
  const images: SampleImage[] = [];
  for (let i = 0; i < IMAGES; i++) {
    const big = await seededBlob(`soak-${i}`, 512 * 1024 + i);
    const small = await tarLayer([{ name: `f${i}`, content: `image ${i}` }]);
    const img = imageOf([{ blob: big, diffId: big.desc.digest }, small], {
      os: "linux",
      architecture: "amd64",
    });
    await writeSample(
      new RegistrySink(seed, { registry: srcReg.host, repository: `soak/img${i}` }),
      [img],
      undefined,
      "v1",
    );
    images.push(img);
  }
  await seed.close();
  const srcProxy = await startFaultProxy(srcReg.url, (r) => randomFault(r.method, r.url), { record: false });
  const dstProxy = await startFaultProxy(dstReg.url, (r) => randomFault(r.method, r.url), { record: false });
  await sleep(100);
  const baselineSockets = sockets();
  const heapStart = heap();
  const rssStart = rss();
  let rssMax = rssStart;
  let copies = 0;
  let failed = 0;
  const errors = new Map<string, number>();
  const t0 = performance.now();
  for (let round = 0; round < ROUNDS; round++) {
    const client = new RegistryClient({
      retryBaseMs: 20,
      retryMaxMs: 500,
      monolithicMax: 256 * 1024,
      chunkSize: 256 * 1024,
    });
    const engine = new TransferEngine({ concurrency: 6 });
    await Promise.all(
      images.map(async (_img, i) => {
        try {
          await engine.copy(
            new RegistrySource(client, { registry: srcProxy.host, repository: `soak/img${i}`, tag: "v1" }),
            new RegistrySink(client, { registry: dstProxy.host, repository: `soak/r${round}/img${i}` }),
            { tags: ["v1"] },
          );
          copies++;
        } catch (e) {
          failed++;
          const key = (e as Error).message
            .replace(/127\.0\.0\.1:\d+/g, "HOST")
            .replace(/sha256:[a-f0-9]+/g, "DIGEST")
            .replace(/r\d+\/img\d+/g, "REPO")
            .slice(0, 140);
          errors.set(key, (errors.get(key) ?? 0) + 1);
        }
      }),
    );
    await client.close();
    rssMax = Math.max(rssMax, rss());
    process.stderr.write(
      `  round ${round + 1}/${ROUNDS}: ${copies} copied, ${failed} failed clearly, rss ${rss().toFixed(1)} MiB, heap ${heap().toFixed(1)} MiB\n`,
    );
  }
  const seconds = (performance.now() - t0) / 1000;
  await sleep(200);
  const heapEnd = heap();
  const rssEnd = rss();
  const endSockets = sockets();

  // every image that was reported copied verifies at the destination (read directly, no faults)
  const verify = new RegistryClient();
  let verified = 0;
  let missing = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, img] of images.entries()) {
      const repo = { registry: dstReg.host, repository: `soak/r${round}/img${i}` };
      const head = await verify.headManifest({ ...repo, tag: "v1" });
      if (!head) {
        missing++;
        continue;
      }
      if (head.digest !== img.manifest.digest)
        throw new Error(`${repo.repository}: wrong digest ${head.digest}`);
      for (const b of [img.config, ...img.layers]) {
        for await (const _ of await verify.getBlob(repo, b.desc)) {
          // verified while streaming
        }
      }
      verified++;
    }
  }
  await verify.close();
  await srcProxy.close();
  await dstProxy.close();
  await srcReg.stop();
  await dstReg.stop();
  if (verified !== copies) throw new Error(`${copies} copies reported, ${verified} verified`);
  process.stdout.write(
    `\nferry soak: ${ROUNDS} rounds × ${IMAGES} images in ${seconds.toFixed(1)} s, fault rate ${RATE} per request\n${table(
      [
        ["measure", "value"],
        ["copies completed and verified", verified],
        ["copies failed clearly (no manifest pushed)", failed],
        ["destination images missing = failed", missing],
        ["faults injected (source + destination)", srcProxy.injected + dstProxy.injected],
        ["JS heap after GC, start MiB", heapStart],
        ["JS heap after GC, end MiB", heapEnd],
        ["RSS start MiB", rssStart],
        ["RSS end MiB", rssEnd],
        ["RSS max MiB", rssMax],
        ["TCP sockets baseline", baselineSockets],
        ["TCP sockets at end", endSockets],
      ],
    )}\n`,
  );
  for (const [k, v] of errors) process.stdout.write(`  ${v} × ${k}\n`);
}

await main();
