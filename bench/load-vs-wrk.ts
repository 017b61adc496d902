/**
 * `npm run bench:load`: is `ferry bench` the bottleneck? Against one local distribution registry:
 *
 *   1. manifest GETs: `ferry bench --scenario manifest --manifest-op get` against `wrk` on the same
 *      manifest URL with the same Accept header, for the same time and number of connections → requests/s;
 *   2. blob pulls: `ferry bench --scenario pull` (one layer; --no-verify, and verified) with 1 and 4 VUs
 *      against 1 and 4 `curl` processes downloading the same blob back to back for the same time → MB/s;
 *   and, as a control, a bare undici loop in its own Node process (no ferry code) doing the same: the floor
 *   of ferry's runtime, so that what ferry's own code costs is visible apart from what Node costs.
 *
 * The tools take turns (the order alternates between runs); medians of --runs runs are printed with the
 * ratios ferry / reference (target ≥ 0.8). ferry runs as users run it (cli/ferry.js), in its own process,
 * as wrk and curl do.
 *
 * CPUs: a load generator must not share CPUs with the system it measures, or the tool that spends more CPU
 * per request is measured as slowing the registry down rather than as failing to load it. With
 * `--cpus split` (the default on 2+ CPUs) the registry runs on the upper half of the CPUs and every tool on
 * the lower half (taskset), so each tool gets the same CPUs and the registry the same capacity: the question
 * "does the tool deliver the load the registry can take?" then has a clean answer. `--cpus shared` runs all
 * of them on all CPUs (the registry and the tool compete; a tool's CPU per request shows in its figure).
 *
 * ferry's rows also show how busy its event loop was (the report's `client` section): a loop far from
 * saturated means the registry, not ferry, set the pace.
 *
 * Options: --runs N (3), --duration S (5), --connections C (8), --wrk-threads T (2), --blob-mib M (512),
 * --blob-connections 1,4, --cpus split|shared, --json FILE.
 */
import { execFile, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import type { BenchReport } from "../load/report.ts";
import { RegistryClient } from "../shared/registry/client.ts";
import { MANIFEST_ACCEPT, MediaType } from "../shared/registry/media-types.ts";
import { imageOf, seededBlob, writeSample } from "../shared/sample/image.ts";
import { RegistrySink } from "../shared/transfer/registry-endpoints.ts";
import { startDistribution } from "../test/helpers/distribution.ts";
import { benchArgs } from "./args.ts";
import { ferryShebang, median, table } from "./lib.ts";

const CPU_COUNT = cpus().length;
const opts = benchArgs(
  "npm run bench:load --",
  {
    runs: { kind: "count", default: "3" },
    duration: { kind: "count", default: "5", value: "S" },
    connections: { kind: "count", default: "8", value: "C" },
    "wrk-threads": { kind: "count", default: "2", value: "T" },
    "blob-mib": { kind: "count", default: "512", value: "M" },
    "blob-connections": { kind: "counts", default: "1,4", value: "1,4" },
    cpus: { kind: "path", default: CPU_COUNT >= 2 ? "split" : "shared", value: "split|shared" },
    json: { kind: "path", value: "FILE" },
  },
  (a) =>
    a.cpus !== "split" && a.cpus !== "shared"
      ? `--cpus takes split or shared, not ${a.cpus}`
      : a.cpus === "split" && CPU_COUNT < 2
        ? "--cpus split needs at least 2 CPUs"
        : undefined,
);
const RUNS = opts.runs;
const DURATION = opts.duration;
const CONNECTIONS = opts.connections;
const WRK_THREADS = opts["wrk-threads"];
const BLOB_MIB = opts["blob-mib"];
const BLOB_CONNECTIONS = opts["blob-connections"];
const JSON_OUT = opts.json ?? "";
const CPUS = opts.cpus;
const HALF = Math.floor(CPU_COUNT / 2);
/** taskset CPU lists: the tools on the lower half, the registry on the upper half (split), or none. */
const TOOL_CPUS = CPUS === "split" ? (HALF > 1 ? `0-${HALF - 1}` : "0") : undefined;
const REGISTRY_CPUS =
  CPUS === "split" ? (CPU_COUNT - HALF > 1 ? `${HALF}-${CPU_COUNT - 1}` : String(HALF)) : undefined;
const FERRY = join(import.meta.dirname, "..", "cli", "ferry.js");
/** The Node flags and environment settings (malloc) of the ferry executable, which the bare control gets too. */
const { nodeFlags: FERRY_NODE_FLAGS, env: FERRY_ENV } = ferryShebang(FERRY);

/** A tool's command line, on the tools' CPUs when they are split from the registry's. */
function onToolCpus(cmd: string, argv: string[]): [string, string[]] {
  return TOOL_CPUS ? ["taskset", ["-c", TOOL_CPUS, cmd, ...argv]] : [cmd, argv];
}

function run(
  tool: string,
  toolArgv: string[],
  env: Record<string, string> = {},
): Promise<{ stdout: string; stderr: string }> {
  const [cmd, argv] = onToolCpus(tool, toolArgv);
  return new Promise((resolve, reject) => {
    const options = { maxBuffer: 256 * 1024 * 1024, env: { ...process.env, ...env } };
    execFile(cmd, argv, options, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${argv.join(" ")} failed: ${err.message}\n${stderr.slice(-2000)}`));
      else resolve({ stdout, stderr });
    });
  });
}

async function ferryBench(argv: string[]): Promise<BenchReport> {
  const { stdout } = await run(FERRY, ["bench", ...argv, "--json", "--quiet"]);
  return JSON.parse(stdout) as BenchReport;
}

async function wrk(url: string): Promise<number> {
  const { stdout } = await run("wrk", [
    "-t",
    String(WRK_THREADS),
    "-c",
    String(CONNECTIONS),
    "-d",
    `${DURATION}s`,
    "-H",
    `Accept: ${MANIFEST_ACCEPT.join(", ")}`,
    url,
  ]);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (!m) throw new Error(`cannot read wrk's output:\n${stdout}`);
  if (/Non-2xx or 3xx responses/.test(stdout)) throw new Error(`wrk saw errors:\n${stdout}`);
  return Number(m[1]);
}

/** curl downloading the blob back to back for DURATION seconds; bytes / summed transfer time. */
async function curlLoop(url: string): Promise<number> {
  let bytes = 0;
  let seconds = 0;
  const end = performance.now() + DURATION * 1000;
  while (performance.now() < end) {
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn(
        ...onToolCpus("curl", ["-s", "-f", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url]),
      );
      let text = "";
      c.stdout.on("data", (d: Buffer) => {
        text += d.toString();
      });
      c.on("error", reject);
      c.on("close", (code) => (code === 0 ? resolve(text) : reject(new Error(`curl exited ${code}`))));
    });
    const [size, time] = out.trim().split(" ").map(Number) as [number, number];
    bytes += size;
    seconds += time;
  }
  return bytes / seconds;
}

/**
 * The floor of ferry's runtime: a bare undici loop in its own Node process (no ferry code), with the same
 * connections, headers and time. ferry bench / this = what ferry's own code costs on top of Node + undici.
 */
const BARE_LOOP = `
import { Agent, request } from "undici";
const [url, c, seconds, accept] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const agent = new Agent({ connections: c });
let n = 0, bytes = 0;
const t0 = performance.now(), end = t0 + seconds * 1000;
await Promise.all(Array.from({ length: c }, async () => {
  while (performance.now() < end) {
    const res = await request(url, { dispatcher: agent, headers: accept ? { accept } : {} });
    await new Promise((ok, ko) => { res.body.on("data", (d) => { bytes += d.length; }); res.body.on("end", ok); res.body.on("error", ko); });
    if (res.statusCode !== 200) throw new Error("status " + res.statusCode);
    n++;
  }
}));
const s = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ rps: n / s, bps: bytes / s }));
await agent.close();
`;

async function bareUndici(
  url: string,
  connections: number,
  accept = "",
): Promise<{ rps: number; bps: number }> {
  // the V8 flags and malloc setting of the ferry executable: the control differs from ferry by its code only
  const argv = [
    ...FERRY_NODE_FLAGS,
    "--input-type=module",
    "-e",
    BARE_LOOP,
    url,
    String(connections),
    String(DURATION),
    accept,
  ];
  const { stdout } = await run(process.execPath, argv, FERRY_ENV);
  return JSON.parse(stdout) as { rps: number; bps: number };
}

const reg = await startDistribution({ auth: "none", ...(REGISTRY_CPUS ? { cpus: REGISTRY_CPUS } : {}) });
try {
  const repo = { registry: reg.host, repository: "load/bench" };
  const client = new RegistryClient();
  const layer = await seededBlob("load-vs-wrk", BLOB_MIB * 1024 * 1024, MediaType.OciLayer);
  const image = imageOf([{ blob: layer, diffId: layer.desc.digest }], { os: "linux", architecture: "amd64" });
  await writeSample(new RegistrySink(client, repo), [image], undefined, "bench");
  await client.close();
  const ref = `${reg.host}/${repo.repository}:bench`;
  const manifestUrl = `${reg.url}/v2/${repo.repository}/manifests/bench`;
  const blobUrl = `${reg.url}/v2/${repo.repository}/blobs/${layer.desc.digest}`;
  const accept = MANIFEST_ACCEPT.join(", ");
  const cpuNote = TOOL_CPUS ? `registry on CPU ${REGISTRY_CPUS}, tools on CPU ${TOOL_CPUS}` : "shared CPUs";
  process.stderr.write(
    `registry ${reg.host}; ${RUNS} runs of ${DURATION} s; ${CONNECTIONS} connections; blob ${BLOB_MIB} MiB; ${cpuNote}\n`,
  );

  const results: Record<string, number[]> = {};
  const push = (k: string, v: number): void => {
    results[k] = [...(results[k] ?? []), v];
  };
  const common = [ref.replace(/:bench$/, ""), "--image", ref, "--duration", `${DURATION}s`];
  for (let i = 0; i < RUNS; i++) {
    const turns: (() => Promise<void>)[] = [
      async () => push("wrk", await wrk(manifestUrl)),
      async () => push("undiciRps", (await bareUndici(manifestUrl, CONNECTIONS, accept)).rps),
      async () => {
        const r = await ferryBench([
          ...common,
          "-s",
          "manifest",
          "--manifest-op",
          "get",
          "--vus",
          String(CONNECTIONS),
        ]);
        const op = r.requests.find((o) => o.name === "manifest.get")!;
        if (op.failed || r.iterations.failed) throw new Error("ferry saw errors on manifest GETs");
        push("ferryRps", op.opsPerSec);
        push("ferryRpsLoop", r.client?.busiestEventLoop ?? Number.NaN);
      },
      ...BLOB_CONNECTIONS.flatMap((c) => [
        async () => {
          // c curl processes side by side, each downloading back to back
          const rates = await Promise.all(Array.from({ length: c }, () => curlLoop(blobUrl)));
          push(
            `curl${c}`,
            rates.reduce((a, b) => a + b, 0),
          );
        },
        async () => push(`undici${c}`, (await bareUndici(blobUrl, c)).bps),
        async () => {
          const r = await ferryBench([...common, "-s", "pull", "--vus", String(c), "--no-verify"]);
          push(`ferryRaw${c}`, r.requests.find((o) => o.name === "blob.get")!.bytesPerSec);
          push(`ferryRaw${c}Loop`, r.client?.busiestEventLoop ?? Number.NaN);
        },
        async () => {
          const r = await ferryBench([...common, "-s", "pull", "--vus", String(c)]);
          if (r.verification.verifyFailures) throw new Error("verification failures");
          push(`ferryVerified${c}`, r.requests.find((o) => o.name === "blob.get")!.bytesPerSec);
          push(`ferryVerified${c}Loop`, r.client?.busiestEventLoop ?? Number.NaN);
        },
      ]),
    ];
    // The tools take turns; the order alternates between runs so that none always goes first.
    for (const turn of i % 2 ? turns.reverse() : turns) await turn();
    const last = (k: string, scale = 1) => (results[k]!.at(-1)! / scale).toFixed(0);
    const loop = (k: string) => `${(results[`${k}Loop`]!.at(-1)! * 100).toFixed(0)}%`;
    process.stderr.write(
      `run ${i + 1}: manifest GET/s wrk ${last("wrk")}, undici ${last("undiciRps")}, ferry ${last("ferryRps")} (loop ${loop("ferryRps")})` +
        BLOB_CONNECTIONS.map(
          (c) =>
            `; ${c} conn MB/s curl ${last(`curl${c}`, 1e6)}, undici ${last(`undici${c}`, 1e6)}, ferry ${last(`ferryRaw${c}`, 1e6)} (loop ${loop(`ferryRaw${c}`)}; verified ${last(`ferryVerified${c}`, 1e6)})`,
        ).join("") +
        ` [load ${loadavg()[0]!.toFixed(1)}]\n`,
    );
  }
  const med = (k: string) => median(results[k]!);
  // Ratios are paired: each run's ferry figure over the same run's reference, then the median of those
  // (the tools ran back to back in the same conditions; the machine's load varies between runs).
  const ratio = (a: string, b: string) => median(results[a]!.map((v, i) => v / results[b]![i]!));
  /** Median share of the run ferry's event loop was busy (the report's client section). */
  const busy = (k: string) => `${(median(results[`${k}Loop`]!) * 100).toFixed(0)}%`;
  const rows: (string | number)[][] = [
    ["", "reference", "bare undici", "ferry bench", "ferry/ref", "ferry/undici", "ferry loop busy", "target"],
    [
      `manifest GET req/s (${CONNECTIONS} conn)`,
      med("wrk"),
      med("undiciRps"),
      med("ferryRps"),
      ratio("ferryRps", "wrk"),
      ratio("ferryRps", "undiciRps"),
      busy("ferryRps"),
      "≥ 0.8 × wrk",
    ],
  ];
  for (const c of BLOB_CONNECTIONS) {
    for (const [label, k] of [
      ["--no-verify", `ferryRaw${c}`],
      ["digest-verified", `ferryVerified${c}`],
    ] as const) {
      rows.push([
        `blob GET MB/s (${c} conn, ${label})`,
        med(`curl${c}`) / 1e6,
        med(`undici${c}`) / 1e6,
        med(k) / 1e6,
        ratio(k, `curl${c}`),
        ratio(k, `undici${c}`),
        busy(k),
        label === "--no-verify" ? "≥ 0.8 × curl" : "",
      ]);
    }
  }
  process.stdout.write(
    `\nmedians of ${RUNS} runs of ${DURATION} s; ratios = medians of the per-run ratios ` +
      `(reference: wrk -t${WRK_THREADS} / curl; ${CPU_COUNT} CPUs, ${cpuNote}; load average ${loadavg()[0]!.toFixed(1)})\n${table(rows)}\n`,
  );
  if (JSON_OUT) {
    const medians = Object.fromEntries(Object.keys(results).map((k) => [k, med(k)]));
    const out = {
      runs: RUNS,
      duration: DURATION,
      connections: CONNECTIONS,
      cpus: CPUS,
      blobMiB: BLOB_MIB,
      results,
      medians,
    };
    writeFileSync(JSON_OUT, JSON.stringify(out, null, 2));
  }
} finally {
  await reg.stop();
}
