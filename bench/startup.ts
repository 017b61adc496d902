/**
 * `npm run bench:startup`: how soon ferry is at work. For `ferry --version` the whole run; for
 * `ferry copy` the time from exec to its first request reaching the registry (a loopback server that
 * answers `GET /v2/` and notes when the first connection arrives), against `node -e 0` as the floor.
 * Medians of --runs (default 15), after 3 warm-ups (Node's compile cache fills on the first run).
 * `--vs-ferry PATH` times another ferry executable (another build's cli/ferry.js) beside this one, the two
 * alternating run by run, so that a busy machine slows both alike.
 */
import { spawn } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { benchArgs } from "./args.ts";
import { median, table } from "./lib.ts";

const opts = benchArgs("npm run bench:startup --", {
  runs: { kind: "count", default: "15" },
  "vs-ferry": { kind: "path", value: "PATH" },
});
const RUNS = opts.runs;
const FERRY = join(import.meta.dirname, "..", "cli", "ferry.js");
const VS_FERRY = opts["vs-ferry"];

/** ms from spawn to exit. */
function wall(cmd: string, argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(cmd, argv, { stdio: "ignore" });
    c.on("error", reject);
    c.on("exit", () => resolve(performance.now() - t0));
  });
}

/** ms from spawning `ferry copy` to its first connection to the registry. */
async function firstRequest(ferry: string): Promise<number> {
  let first = 0;
  const server = http.createServer((req, res) => {
    if (!first) first = performance.now();
    res.writeHead(req.url === "/v2/" ? 200 : 404, { "content-type": "application/json" }).end("{}");
  });
  server.on("connection", () => {
    if (!first) first = performance.now();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const c = spawn(ferry, ["copy", `${host}/a:1`, `${host}/b:1`, "-q"], { stdio: "ignore" });
    c.on("exit", () => resolve());
  });
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  return first - t0;
}

/** Each of `fs` timed --runs times after 3 warm-ups, the runs alternating between them. */
async function measure(fs: (() => Promise<number>)[]): Promise<number[][]> {
  for (let i = 0; i < 3; i++) for (const f of fs) await f();
  const out: number[][] = fs.map(() => []);
  for (let i = 0; i < RUNS; i++) for (const [j, f] of fs.entries()) out[j]!.push(await f());
  return out;
}

const ferries: [string, string][] = [
  ["", FERRY],
  ...(VS_FERRY ? [[" (--vs-ferry)", VS_FERRY] as [string, string]] : []),
];
const rows: (string | number)[][] = [["what", "median ms", "min ms", "max ms"]];
for (const [name, fs] of [
  ["node -e 0 (the floor)", [() => wall(process.execPath, ["-e", "0"])]],
  [
    "ferry --version",
    ferries.map(
      ([, f]) =>
        () =>
          wall(f, ["--version"]),
    ),
  ],
  [
    "ferry copy: exec → first request",
    ferries.map(
      ([, f]) =>
        () =>
          firstRequest(f),
    ),
  ],
] as const) {
  for (const [j, xs] of (await measure([...fs])).entries())
    rows.push([
      `${name}${fs.length > 1 ? ferries[j]![0] : ""}`,
      median(xs),
      Math.min(...xs),
      Math.max(...xs),
    ]);
}
process.stdout.write(
  `ferry start-up (${RUNS} runs each, medians; ${new Date().toISOString()})\n${table(rows)}\n`,
);
