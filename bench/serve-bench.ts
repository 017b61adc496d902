/**
 * `npm run bench:serve`: ferry serve against the CNCF distribution registry on this machine, with
 * independent clients: parallel blob uploads and downloads with curl, manifest GETs with wrk.
 * Both registries run as their own processes with filesystem storage in a temp dir.
 * Options: --runs N (default 3), --parallel N (default 4), --mib N (blob size, default 64).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { RegistryClient } from "../shared/registry/client.ts";
import { imageOf, tarLayer, writeSample } from "../shared/sample/image.ts";
import { seededStream } from "../shared/sample/seeded.ts";
import { RegistrySink } from "../shared/transfer/registry-endpoints.ts";
import { startDistribution } from "../test/helpers/distribution.ts";
import { benchArgs } from "./args.ts";
import { median, table } from "./lib.ts";

const run = promisify(execFile);
const opts = benchArgs("npm run bench:serve --", {
  runs: { kind: "count", default: "3" },
  parallel: { kind: "count", default: "4" },
  mib: { kind: "count", default: "64" },
});
const RUNS = opts.runs;
const PAR = opts.parallel;
const MIB = opts.mib;
const FERRY = join(import.meta.dirname, "..", "cli", "ferry.js");

async function startServe(root: string): Promise<{ host: string; proc: ChildProcess }> {
  const proc = spawn(FERRY, ["serve", "--root", root, "--port", "0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const host = await new Promise<string>((resolve, reject) => {
    let out = "";
    proc.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on http:\/\/(\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.on("exit", (c) => reject(new Error(`ferry serve exited ${c}`)));
  });
  return { host, proc };
}

async function curl(...a: string[]): Promise<string> {
  return (await run("curl", ["-sS", "--fail", ...a], { maxBuffer: 1 << 20 })).stdout;
}

/** PAR parallel monolithic uploads (POST, then PUT streaming the file with curl -T): MB/s. */
async function ingest(host: string, file: string, digest: string, round: number): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    [...Array(PAR).keys()].map(async (i) => {
      const headers = await curl(
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        `http://${host}/v2/bench/up${round}-${i}/blobs/uploads/`,
      );
      const loc = /^location:\s*(\S+)/im.exec(headers)?.[1];
      if (!loc) throw new Error(`no Location from ${host}`);
      const url = new URL(loc, `http://${host}`);
      url.searchParams.set("digest", digest);
      await curl(
        "-o",
        "/dev/null",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "-T",
        file,
        url.toString(),
      );
    }),
  );
  return (PAR * MIB * 1024 * 1024) / 1e6 / ((performance.now() - t0) / 1000);
}

/** PAR parallel downloads of the blob: MB/s. */
async function serveBlob(host: string, repo: string, digest: string): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    [...Array(PAR).keys()].map(() => curl("-o", "/dev/null", `http://${host}/v2/${repo}/blobs/${digest}`)),
  );
  return (PAR * MIB * 1024 * 1024) / 1e6 / ((performance.now() - t0) / 1000);
}

/** wrk on a manifest GET for 4 s with 8 connections: requests/s. */
async function manifests(host: string): Promise<number> {
  const { stdout } = await run("wrk", [
    "-t2",
    "-c8",
    "-d4s",
    "-H",
    "Accept: application/vnd.oci.image.manifest.v1+json",
    `http://${host}/v2/bench/img/manifests/v1`,
  ]);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (!m) throw new Error(`wrk: ${stdout}`);
  return Number(m[1]);
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "ferry-serve-bench-"));
  const file = join(dir, "blob");
  await pipeline(seededStream("serve-bench", MIB * 1024 * 1024), createWriteStream(file));
  const hash = createHash("sha256");
  for await (const c of seededStream("serve-bench", MIB * 1024 * 1024)) hash.update(c as Buffer);
  const digest = `sha256:${hash.digest("hex")}`;
  const dist = await startDistribution({ auth: "none" });
  const serve = await startServe(join(dir, "serve-root"));
  const results: Record<string, Record<string, number[]>> = {};
  try {
    const client = new RegistryClient();
    const img = imageOf([await tarLayer([{ name: "x", content: "manifest bench" }])], {
      os: "linux",
      architecture: "amd64",
    });
    for (const host of [dist.host, serve.host])
      await writeSample(
        new RegistrySink(client, { registry: host, repository: "bench/img" }),
        [img],
        undefined,
        "v1",
      );
    await client.close();
    for (let r = 0; r < RUNS; r++) {
      for (const [name, host] of [
        ["distribution", dist.host],
        ["ferry serve", serve.host],
      ] as const) {
        results[name] ??= { ingest: [], serve: [], manifests: [] };
        const res = results[name];
        res.ingest!.push(await ingest(host, file, digest, r));
        res.serve!.push(await serveBlob(host, `bench/up${r}-0`, digest));
        res.manifests!.push(await manifests(host));
      }
      process.stderr.write(`  run ${r + 1}/${RUNS} done\n`);
    }
  } finally {
    serve.proc.kill("SIGTERM");
    await dist.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const d = results.distribution!;
  const f = results["ferry serve"]!;
  const row = (label: string, k: string, unit: string) => [
    label,
    median(d[k]!),
    median(f[k]!),
    (median(f[k]!) / median(d[k]!)).toFixed(2),
    unit,
  ];
  process.stdout.write(
    `\nferry serve vs distribution (${RUNS} runs, medians; ${PAR} parallel clients, ${MIB} MiB blob)\n${table(
      [
        ["measure", "distribution", "ferry serve", "ratio", "unit"],
        row(`ingest: ${PAR} parallel curl uploads`, "ingest", "MB/s"),
        row(`serve: ${PAR} parallel curl downloads`, "serve", "MB/s"),
        row("manifest GETs: wrk -t2 -c8 -d4s", "manifests", "req/s"),
      ],
    )}\n`,
  );
}

await main();
