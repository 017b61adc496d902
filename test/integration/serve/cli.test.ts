/**
 * `ferry serve` as the real executable (cli/ferry.js: the bundle when built, as `npm test` does):
 * the flags, basic auth through the bcrypt worker, and a clean stop on SIGTERM.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ferry } from "../../helpers/ferry-cli.ts";

const FERRY = join(import.meta.dirname, "..", "..", "..", "cli", "ferry.js");

describe("ferry serve (the executable)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-serve-cli-"));
    await writeFile(join(dir, "htpasswd"), `ferry:${bcrypt.hashSync("s3cret", 4)}\n`);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("checks credentials (in its bcrypt worker) and stops cleanly on SIGTERM", async () => {
    const child = spawn(
      process.execPath,
      [
        FERRY,
        "serve",
        "--port",
        "0",
        "--root",
        join(dir, "root"),
        "--htpasswd",
        join(dir, "htpasswd"),
        "--idle-timeout",
        "30",
        "--max-uploads",
        "10",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        stdout += d;
        const m = /listening on (http:\/\/\S+)/.exec(stdout);
        if (m) resolve(m[1]!);
      });
      exited.then(() => reject(new Error(`ferry serve exited: ${stderr}`)));
    });
    const get = async (password: string) => {
      const res = await fetch(`${url}/v2/`, {
        headers: { authorization: `Basic ${Buffer.from(`ferry:${password}`).toString("base64")}` },
      });
      await res.arrayBuffer();
      return res.status;
    };
    try {
      expect(await get("wrong")).toBe(401);
      expect(await get("s3cret")).toBe(200);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    expect(stdout).toMatch(/ferry serve stopped\n$/);
    expect(stderr).toBe("");
  });

  it.each([
    [["--idle-timeout", "0"], /--idle-timeout must be/],
    [["--idle-timeout", "soon"], /--idle-timeout must be/],
    [["--max-uploads", "1.5"], /--max-uploads must be/],
    [["--max-uploads", "0"], /--max-uploads must be/],
    [["--emulate", "quay"], /--emulate must be one of ecr, ghcr, gar, got "quay"/],
    [["--chunk-min-length", "0"], /--chunk-min-length must be a size/],
    [["--chunk-min-length", "lots"], /--chunk-min-length must be a size/],
  ])("refuses %j with exit 2 and one line", async (flags, message) => {
    const r = await ferry(["serve", "--port", "0", "--root", join(dir, "never"), ...flags]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(existsSync(join(dir, "never"))).toBe(false);
  });

  it("--emulate ecr --chunk-min-length 6MiB: says so, announces the minimum, answers PATCH with 201", async () => {
    const child = spawn(
      process.execPath,
      [
        FERRY,
        "serve",
        "--port",
        "0",
        "--root",
        join(dir, "ecr"),
        "--emulate",
        "ecr",
        "--chunk-min-length",
        "6MiB",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    let stdout = "";
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        stdout += d;
        if (stdout.includes("\n")) resolve(stdout.split("\n")[0]!);
      });
      exited.then(() => reject(new Error("ferry serve exited")));
    });
    try {
      expect(line).toMatch(
        /^ferry serve listening on http:\/\/127\.0\.0\.1:\d+ \(emulating ecr upload rules, OCI-Chunk-Min-Length 6291456\)$/,
      );
      const url = /(http:\/\/\S+)/.exec(line)![1]!;
      const post = await fetch(`${url}/v2/r/blobs/uploads/`, { method: "POST" });
      expect(post.status).toBe(202);
      expect(post.headers.get("oci-chunk-min-length")).toBe("6291456");
      const patch = await fetch(new URL(post.headers.get("location")!, url), {
        method: "PATCH",
        body: "abc",
        headers: { "content-type": "application/octet-stream", "content-range": "0-2" },
      });
      await patch.arrayBuffer();
      expect(patch.status).toBe(201);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });

  it("names an htpasswd file it cannot read, with exit 1", async () => {
    const r = await ferry([
      "serve",
      "--port",
      "0",
      "--root",
      join(dir, "root2"),
      "--htpasswd",
      join(dir, "nope"),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`ferry: htpasswd: cannot read ${join(dir, "nope")} (ENOENT)\n`);
    expect(existsSync(join(dir, "root2"))).toBe(false);
  });
});
