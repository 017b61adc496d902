/**
 * `npm run bench`: ferry against skopeo, side by side in one run, between two local distribution
 * registries (loopback, filesystem storage, a fresh destination registry for every run).
 *
 *   1. one 1 GiB image (4 × 256 MiB uncompressed layers)   ferry copy  vs skopeo copy --all --preserve-digests
 *   2. one 100 MiB image (10 × 10 MiB gzip layers)          ferry copy  vs skopeo copy --all --preserve-digests
 *   3. 50 small images (5 × 100 KiB layers, 50 repos)       ferry copy --from-file vs skopeo sync, and vs skopeo once per image;
 *                                                           ferry sync (the bulk-migrate workflow, run locally) vs ferry copy --from-file
 *   4. the same 50 images when the destination has them    (a re-run of a migration)
 *   5. a large local migration (not in the default set)    ferry sync and ferry copy --from-file over 250 and 1,000 small
 *                                                           images (--images 250,1000): wall time and peak RSS, whose
 *                                                           growth from the smaller to the larger run is what "flat
 *                                                           memory" is judged by. Minutes: run it as `--only 5 --runs 1`.
 *
 * Reports medians of wall time, ratios ferry/skopeo, MB/s, peak RSS, the tool's CPU seconds per GiB, the
 * CPU seconds both registries spent serving the run, and the CPU floor: (tool CPU + registries' CPU) /
 * cores, the wall time the run could not beat on this machine even with perfect overlap. When a row's
 * wall time is near its floor, the machine's CPU (shared by the tool and both registries) is the limit.
 * The registries store in RAM (/dev/shm) unless --disk: the disk's writeback otherwise adds seconds of
 * noise to the small-image runs.
 * Rows 1 and 2 also time the floor (bench/floor.ts): the same copy as bare HTTP requests with SHA-256
 * checks and nothing else, through undici (ferry's client) and through node:http.
 * Options: --runs N (default 3), --only 1,2,3,4 (5 on request), --images 250,1000 (row 5's sizes), --json FILE,
 * --disk, --vs-ferry PATH (another ferry executable, e.g. an older checkout's cli/ferry.js, timed beside
 * this one in the same run), --no-floor.
 */

import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { createGzip } from "node:zlib";
import { mapLimit } from "../shared/concurrency.ts";
import { RegistryClient } from "../shared/registry/client.ts";
import type { Descriptor } from "../shared/registry/manifest.ts";
import { MediaType } from "../shared/registry/media-types.ts";
import { imageOf, type SampleBlob, seededBlob, writeSample } from "../shared/sample/image.ts";
import { seededStream } from "../shared/sample/seeded.ts";
import { RegistrySink } from "../shared/transfer/registry-endpoints.ts";
import { type RunningDistribution, startDistribution } from "../test/helpers/distribution.ts";
import { tmpDir } from "../test/helpers/tmp.ts";
import { benchArgs } from "./args.ts";
import { bulkCommands, type CommandLine, FERRY, skopeoCopy as skopeoCopyLine } from "./bulk.ts";
import {
  bundleFloor,
  ferryShebang,
  median,
  processCpuSeconds,
  type RunStats,
  table,
  timed,
  useRamStorage,
} from "./lib.ts";

const opts = benchArgs(
  "npm run bench --",
  {
    runs: { kind: "count", default: "3" },
    only: { kind: "list", default: "1,2,3,4", value: "1,2,3,4,5" },
    images: { kind: "counts", default: "250,1000", value: "250,1000" },
    json: { kind: "path", value: "FILE" },
    "vs-ferry": { kind: "path", value: "PATH" },
    "no-floor": { kind: "flag" },
    disk: { kind: "flag" },
  },
  (a) =>
    a.only.some((r) => !/^[1-5]$/.test(r)) ? `--only takes rows 1 to 5, not ${a.only.join(",")}` : undefined,
);
const RUNS = opts.runs;
const ONLY = new Set(opts.only.map(Number));
/** Row 5's migration sizes (images). */
const IMAGES = opts.images;
const JSON_OUT = opts.json ?? "";
/** Another ferry executable timed beside this one, in the same run (an A/B of two builds): `--vs-ferry PATH`. */
const VS_FERRY = opts["vs-ferry"] ?? "";
/** Rows 1 and 2 also time bench/floor.ts (bare HTTP requests, undici and node:http) unless --no-floor. */
const FLOOR = !opts["no-floor"] && (ONLY.has(1) || ONLY.has(2));
const STORAGE = useRamStorage(opts.disk);
const CORES = availableParallelism();
const MiB = 1024 * 1024;

/** A gzip stream of `rawSize` pseudo-random bytes; deterministic, so it can be regenerated to resume. */
async function gzipSeededBlob(seed: string, rawSize: number): Promise<SampleBlob> {
  const make = () => seededStream(seed, rawSize).pipe(createGzip({ level: 1 }));
  const hash = createHash("sha256");
  let size = 0;
  for await (const c of make()) {
    hash.update(c as Buffer);
    size += (c as Buffer).length;
  }
  const desc: Descriptor = {
    mediaType: MediaType.OciLayerGzip,
    digest: `sha256:${hash.digest("hex")}`,
    size,
  };
  return {
    desc,
    open: async (offset) => {
      if (offset === 0) return make();
      let skip = offset;
      return Readable.from(
        (async function* () {
          for await (const c of make()) {
            const b = c as Buffer;
            if (skip >= b.length) {
              skip -= b.length;
              continue;
            }
            yield skip ? b.subarray(skip) : b;
            skip = 0;
          }
        })(),
      );
    },
  };
}

async function seedImage(reg: RunningDistribution, repository: string, layers: SampleBlob[]) {
  const client = new RegistryClient();
  try {
    const img = imageOf(
      layers.map((blob) => ({ blob, diffId: blob.desc.digest })),
      { os: "linux", architecture: "amd64" },
    );
    await writeSample(new RegistrySink(client, { registry: reg.host, repository }), [img], undefined, "v1");
    return img;
  } finally {
    await client.close();
  }
}

/** `n` images `<prefix>/app<i>:v1` of 5 × 100 KiB gzip layers each (the bulk rows' images). */
async function seedSmallImages(src: RunningDistribution, prefix: string, n: number): Promise<void> {
  process.stderr.write(`  seeding ${n} small images under ${prefix}/…\n`);
  await mapLimit([...Array(n).keys()], 4, async (i) => {
    const layers = await Promise.all(
      [0, 1, 2, 3, 4].map((j) => gzipSeededBlob(`small-${i}-${j}`, 100 * 1024)),
    );
    await seedImage(src, `${prefix}/app${i}`, layers);
  });
}

// run as an executable, as users do: its shebang carries the Node flags
const ferry = (...a: string[]) => timed(FERRY, [...a, "--quiet"]);

/** skopeo copying one image between the two plain-HTTP registries, digests preserved. */
const skopeoCopy = (from: string, to: string) => timed(...skopeoCopyLine(from, to));

/** ferry and skopeo copying `repo:v1` from the source to a fresh destination (and the --vs-ferry build). */
const oneImage = (src: RunningDistribution, repo: string) => ({
  ferry: (d: RunningDistribution) => ferry("copy", `${src.host}/${repo}:v1`, `${d.host}/${repo}:v1`),
  ...(VS_FERRY
    ? {
        "ferry (--vs-ferry)": (d: RunningDistribution) =>
          timed(VS_FERRY, ["copy", `${src.host}/${repo}:v1`, `${d.host}/${repo}:v1`, "--quiet"]),
      }
    : {}),
  skopeo: (d: RunningDistribution) => skopeoCopy(`${src.host}/${repo}:v1`, `${d.host}/${repo}:v1`),
  ...(FLOOR
    ? Object.fromEntries(
        (["undici", "http"] as const).map((c) => [
          `floor: ${c === "http" ? "node:http" : c}`,
          (d: RunningDistribution) => floor(c, `${src.host}/${repo}:v1`, `${d.host}/${repo}:v1`),
        ]),
      )
    : {}),
});

/** bench/floor.ts, bundled as the CLI is: the same copy as bare HTTP requests, with ferry's Node flags. */
const SHEBANG = ferryShebang();
const FLOOR_FILE = FLOOR ? await bundleFloor(tmpDir("ferry-bench-floor-")) : "";
const floor = (c: "undici" | "http", from: string, to: string) =>
  timed(process.execPath, [...SHEBANG.nodeFlags, FLOOR_FILE, c, from, to], {
    ...process.env,
    ...SHEBANG.env,
  });

interface Row {
  scenario: string;
  tool: string;
  runs: RunStats[];
  bytes: number;
}

/** Runs each tool RUNS times, alternating, each against a fresh destination registry. */
async function compare(
  src: RunningDistribution,
  scenario: string,
  bytes: number,
  tools: Record<string, (dst: RunningDistribution) => Promise<RunStats>>,
  prepare?: (dst: RunningDistribution) => Promise<void>,
): Promise<Row[]> {
  const rows: Row[] = Object.keys(tools).map((tool) => ({ scenario, tool, runs: [], bytes }));
  for (let r = 0; r < RUNS; r++) {
    for (const row of rows) {
      const dst = await startDistribution({ auth: "none" });
      try {
        if (prepare) await prepare(dst);
        const registries = () => processCpuSeconds(src.pid) + processCpuSeconds(dst.pid);
        const before = registries();
        const stats = await tools[row.tool]!(dst);
        row.runs.push({ ...stats, registryCpu: registries() - before });
      } finally {
        await dst.stop();
      }
    }
    process.stderr.write(`  ${scenario}: run ${r + 1}/${RUNS} done\n`);
  }
  return rows;
}

async function main() {
  const src = await startDistribution({ auth: "none" });
  const rows: Row[] = [];
  try {
    process.stderr.write(`source registry ${src.host}, storage in ${STORAGE}; preparing images…\n`);
    if (ONLY.has(1)) {
      const layers = await Promise.all(
        [0, 1, 2, 3].map((i) => seededBlob(`big-${i}`, 256 * MiB, MediaType.OciLayer)),
      );
      await seedImage(src, "bench/big", layers);
      rows.push(
        ...(await compare(
          src,
          "1 GiB image, 4 × 256 MiB uncompressed layers",
          1024 * MiB,
          oneImage(src, "bench/big"),
        )),
      );
    }
    if (ONLY.has(2)) {
      const layers = await Promise.all(
        [...Array(10).keys()].map((i) => gzipSeededBlob(`mid-${i}`, 10 * MiB)),
      );
      const img = await seedImage(src, "bench/mid", layers);
      const bytes = img.layers.reduce((a, l) => a + l.desc.size, 0);
      rows.push(
        ...(await compare(src, "100 MiB image, 10 × 10 MiB gzip layers", bytes, oneImage(src, "bench/mid"))),
      );
    }
    const dir = tmpDir("ferry-bench-");
    const run = ([cmd, args]: CommandLine) => timed(cmd, args);
    if (ONLY.has(3) || ONLY.has(4)) {
      const N = 50;
      await seedSmallImages(src, "bulk", N);
      const bytes = 50 * 5 * 100 * 1024;
      const tools = {
        ferry: (d: RunningDistribution) => run(bulkCommands(src.host, d.host, N, dir).ferry),
        "ferry sync": (d: RunningDistribution) => run(bulkCommands(src.host, d.host, N, dir)["ferry sync"]),
        ...(VS_FERRY
          ? {
              "ferry (--vs-ferry)": (d: RunningDistribution) => {
                const [, args] = bulkCommands(src.host, d.host, N, dir).ferry;
                return run([VS_FERRY, args]);
              },
            }
          : {}),
        "skopeo sync": (d: RunningDistribution) => run(bulkCommands(src.host, d.host, N, dir)["skopeo sync"]),
        "skopeo per image": async (d: RunningDistribution) => {
          const total: RunStats = { wall: 0, rssMiB: 0, cpu: 0 };
          const t0 = performance.now();
          for (const line of bulkCommands(src.host, d.host, N, dir)["skopeo per image"]) {
            const s = await run(line);
            total.rssMiB = Math.max(total.rssMiB, s.rssMiB);
            total.cpu += s.cpu;
          }
          total.wall = (performance.now() - t0) / 1000;
          return total;
        },
      };
      if (ONLY.has(3)) rows.push(...(await compare(src, "50 small images (bulk migration)", bytes, tools)));
      if (ONLY.has(4)) {
        // the destination already has every image: prepare it with a ferry copy, then time the re-run
        const prep = async (d: RunningDistribution) => {
          await run(bulkCommands(src.host, d.host, N, dir).ferry);
        };
        rows.push(...(await compare(src, "same 50 images again (re-run, all present)", bytes, tools, prep)));
      }
    }
    if (ONLY.has(5)) {
      // each size under a prefix of its own: Enumerate lists exactly those images from the catalog
      for (const n of IMAGES) {
        const prefix = `many${n}`;
        await seedSmallImages(src, prefix, n);
        const tools = {
          ferry: (d: RunningDistribution) => run(bulkCommands(src.host, d.host, n, dir, prefix).ferry),
          "ferry sync": (d: RunningDistribution) =>
            run(bulkCommands(src.host, d.host, n, dir, prefix)["ferry sync"]),
        };
        rows.push(...(await compare(src, `local migration, ${n} small images`, n * 5 * 100 * 1024, tools)));
      }
    }
  } finally {
    await src.stop();
  }
  report(rows);
}

function report(rows: Row[]) {
  const out: (string | number)[][] = [
    [
      "scenario / tool",
      "median s",
      "ratio vs skopeo",
      "CPU vs skopeo",
      "MB/s",
      "peak RSS MiB",
      "CPU s/GiB",
      "registries CPU s",
      "CPU floor s",
    ],
  ];
  const summary: Record<string, unknown>[] = [];
  for (const scenario of [...new Set(rows.map((r) => r.scenario))]) {
    out.push([scenario, "", "", "", "", "", "", "", ""]);
    const group = rows.filter((r) => r.scenario === scenario);
    const skopeoRow = group.find((r) => r.tool === "skopeo" || r.tool === "skopeo sync");
    const base = skopeoRow ? median(skopeoRow.runs.map((r) => r.wall)) : Number.NaN;
    const baseCpu = skopeoRow ? median(skopeoRow.runs.map((r) => r.cpu)) : Number.NaN;
    for (const r of group) {
      const wall = median(r.runs.map((x) => x.wall));
      const gib = r.bytes / 1024 ** 3;
      const line = {
        scenario,
        tool: r.tool,
        medianSeconds: wall,
        ratio: wall / base,
        cpuRatio: median(r.runs.map((x) => x.cpu)) / baseCpu,
        mbPerSecond: r.bytes / 1e6 / wall,
        peakRssMiB: Math.max(...r.runs.map((x) => x.rssMiB)),
        cpuSecondsPerGiB: median(r.runs.map((x) => x.cpu)) / gib,
        registriesCpuSeconds: median(r.runs.map((x) => x.registryCpu ?? 0)),
        cpuFloorSeconds: median(r.runs.map((x) => (x.cpu + (x.registryCpu ?? 0)) / CORES)),
        runs: r.runs,
      };
      summary.push(line);
      out.push([
        `  ${r.tool}`,
        wall,
        r.tool.startsWith("skopeo") && r === skopeoRow
          ? "1.00"
          : Number.isFinite(line.ratio)
            ? line.ratio.toFixed(2)
            : "-",
        r === skopeoRow ? "1.00" : Number.isFinite(line.cpuRatio) ? line.cpuRatio.toFixed(2) : "-",
        line.mbPerSecond,
        line.peakRssMiB,
        line.cpuSecondsPerGiB,
        line.registriesCpuSeconds,
        line.cpuFloorSeconds,
      ]);
    }
    const per = group.find((r) => r.tool === "skopeo per image");
    const f = group.find((r) => r.tool === "ferry");
    const sync = group.find((r) => r.tool === "ferry sync");
    // a line of wall and CPU ratios between two of the group's tools
    const ratios = (label: string, a: Row | undefined, b: Row | undefined) => {
      if (!a || !b) return;
      const ratio = (k: "wall" | "cpu") =>
        (median(a.runs.map((x) => x[k])) / median(b.runs.map((x) => x[k]))).toFixed(2);
      out.push([`  ${label}`, "", ratio("wall"), ratio("cpu"), "", "", "", "", ""]);
    };
    ratios("ferry sync vs ferry copy --from-file", sync, f);
    ratios("ferry vs skopeo per image", f, per);
  }
  process.stdout.write(
    `\nferry bench (${RUNS} runs each, medians; ${CORES} cores; registries' storage in ${STORAGE}; ${new Date().toISOString()})\n${table(out)}\n`,
  );
  const file = JSON_OUT || join(import.meta.dirname, "results", `copy-${Date.now()}.json`);
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(file, JSON.stringify(summary, null, 2));
  process.stdout.write(`results: ${file}\n`);
}

await main();
