import { on } from "node:events";
import { watch } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { Client } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveMain } from "../../../serve/main.ts";
import { bytes, header, sha256, startTestRegistry, type TestRegistry } from "./helpers.ts";

/** Resolves once `file` (which exists) is no longer empty: checked at once, then on each change event. */
async function fileGrows(file: string): Promise<void> {
  const watcher = watch(file);
  try {
    // Subscribed before the first look, so that no change between the two is missed.
    const changes = on(watcher, "change");
    if ((await stat(file)).size > 0) return;
    for await (const _ of changes) if ((await stat(file)).size > 0) return;
  } finally {
    watcher.close();
  }
}

describe("ferry serve: repository names", () => {
  let base: string;
  let reg: TestRegistry;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "ferry-serve-names-"));
    await mkdir(join(base, "root"));
    reg = await startTestRegistry({ root: join(base, "root") });
  });
  afterAll(async () => {
    await reg.stop();
    await rm(base, { recursive: true, force: true });
  });

  const tricks = [
    "../x",
    "a/../../b",
    "../../../../tmp/evil",
    "%2e%2e/x",
    "a/%2e%2e/%2e%2e/b",
    "a%2fb",
    "/abs",
    "Upper",
    "a/B",
    "a//b",
    "a/./b",
    "-a",
    "a-",
    "a..b",
    "_x",
    "x".repeat(256),
  ];

  it.each(tricks)("refuses %s with NAME_INVALID and writes nothing", async (name) => {
    const digest = sha256("payload");
    const attempts = [
      reg.api("POST", `/v2/${name}/blobs/uploads/?digest=${digest}`, { body: "payload" }),
      reg.api("POST", `/v2/${name}/blobs/uploads/`),
      reg.api("PUT", `/v2/${name}/manifests/latest`, {
        body: '{"schemaVersion":2,"config":{},"layers":[]}',
        headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
      }),
      reg.api("GET", `/v2/${name}/tags/list`),
      reg.api("GET", `/v2/${name}/blobs/${digest}`),
    ];
    for (const r of await Promise.all(attempts)) {
      expect(r.status).toBe(400);
      expect(r.json().errors[0].code).toBe("NAME_INVALID");
    }
    expect(await readdir(base)).toEqual(["root"]);
    expect(await readdir(join(base, "root", "repositories"))).toEqual([]);
    expect(await readdir(join(base, "root", "uploads"))).toEqual([]);
    expect(await readdir(join(base, "root", "blobs"))).toEqual([]);
  });

  it("accepts the separators of the grammar", async () => {
    for (const name of ["a", "a/b/c", "a.b", "a_b", "a__b", "a-b", "a---b", "0/9", "x".repeat(255)]) {
      const r = await reg.api("POST", `/v2/${name}/blobs/uploads/`);
      expect(r.status, name).toBe(202);
      await reg.api("DELETE", header(r, "location")!);
    }
  });

  it("refuses unknown routes and methods", async () => {
    expect((await reg.api("GET", "/v3/")).status).toBe(404);
    const r = await reg.api("POST", "/v2/a/manifests/latest");
    expect(r.status).toBe(405);
    expect(r.json().errors[0].code).toBe("UNSUPPORTED");
  });
});

describe("ferry serve: basic auth", () => {
  let dir: string;
  let reg: TestRegistry;
  const auth = (user: string, password: string) => ({
    authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`,
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-serve-auth-"));
    // `htpasswd -B` writes $2y$; cost 4 keeps the test fast
    const hash = bcrypt.hashSync("s3cret", 4).replace(/^\$2b\$/, "$2y$");
    await writeFile(join(dir, "htpasswd"), `# users\nferry:${hash}\n`);
    reg = await startTestRegistry({ htpasswd: join(dir, "htpasswd") });
  });
  afterAll(async () => {
    await reg.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("challenges anonymous and wrong credentials, admits the right ones", async () => {
    const anon = await reg.api("GET", "/v2/");
    expect(anon.status).toBe(401);
    expect(header(anon, "www-authenticate")).toBe('Basic realm="ferry"');
    expect(anon.json().errors[0].code).toBe("UNAUTHORIZED");
    expect((await reg.api("GET", "/v2/", { headers: auth("ferry", "wrong") })).status).toBe(401);
    expect((await reg.api("GET", "/v2/", { headers: auth("nobody", "s3cret") })).status).toBe(401);
    expect((await reg.api("GET", "/v2/_catalog")).status).toBe(401);
    expect((await reg.api("GET", "/v2/", { headers: auth("ferry", "s3cret") })).status).toBe(200);
    const digest = sha256("authed");
    const push = await reg.api("POST", `/v2/a/blobs/uploads/?digest=${digest}`, {
      body: "authed",
      headers: auth("ferry", "s3cret"),
    });
    expect(push.status).toBe(201);
  });

  it("refuses an htpasswd file without bcrypt hashes", async () => {
    await writeFile(join(dir, "plain"), "ferry:{SHA}abc\n");
    await expect(startTestRegistry({ htpasswd: join(dir, "plain") })).rejects.toThrow(/bcrypt/);
  });
});

describe("ferry serve: interrupted uploads", () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startTestRegistry();
  });
  afterAll(async () => {
    await reg.stop();
  });

  it("keeps what arrived before the client went away, and the upload resumes from GET's Range", async () => {
    const data = bytes(400_000, 71);
    const start = await reg.api("POST", "/v2/resume/blobs/uploads/");
    const location = header(start, "location")!;
    const { port } = reg.registry;

    // send part of a streamed PATCH, wait until the server has written some of it, then vanish
    const req = httpRequest({ host: "127.0.0.1", port, method: "PATCH", path: location });
    req.on("error", () => {});
    const file = join(reg.root, "uploads", location.split("/").pop()!, "data");
    const written = fileGrows(file);
    req.write(data.subarray(0, 150_000));
    await written;
    req.destroy();

    const offsetOf = (range: string) => (range === "0-0" ? 0 : Number(range.split("-")[1]) + 1);
    let offset = -1;
    let kept = 0;
    for (let attempt = 0; attempt < 50 && offset < data.length; attempt++) {
      const status = await reg.api("GET", location);
      expect(status.status).toBe(204);
      offset = offsetOf(header(status, "range")!);
      kept = Math.max(kept, offset);
      const r = await reg.api("PATCH", location, {
        body: data.subarray(offset),
        headers: { "content-range": `${offset}-${data.length - 1}` },
      });
      if (r.status === 202) offset = data.length;
      else {
        // the interrupted PATCH had not been wound up when GET answered; 416 tells the real offset
        expect(r.status).toBe(416);
        kept = Math.max(kept, offsetOf(header(r, "range")!));
      }
    }
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(150_000);
    const done = await reg.api("PUT", `${location}?digest=${sha256(data)}`);
    expect(done.status).toBe(201);
    const blob = await reg.api("GET", `/v2/resume/blobs/${sha256(data)}`);
    expect(blob.body.equals(data)).toBe(true);
  });
});

describe("ferry serve: serveMain and shutdown", () => {
  it("prints the listening line, serves, and stops on abort", async () => {
    const root = await mkdtemp(join(tmpdir(), "ferry-serve-main-"));
    const lines: string[] = [];
    const requests: string[] = [];
    const controller = new AbortController();
    let listening!: (url: string) => void;
    const started = new Promise<string>((resolve) => {
      listening = resolve;
    });
    const done = serveMain({
      root,
      port: 0,
      out: (l) => lines.push(l),
      log: (l) => requests.push(l),
      signal: controller.signal,
      onListening: (r) => listening(r.url),
    });
    const url = await started;
    expect(lines[0]).toBe(`ferry serve listening on ${url}`);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${url}/v2/`);
    expect(res.status).toBe(200);
    await res.text();
    controller.abort();
    await done;
    expect(lines.at(-1)).toBe("ferry serve stopped");
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatch(/"GET \/v2\/" 200/);
    await expect(fetch(`${url}/v2/`)).rejects.toThrow();
    await rm(root, { recursive: true, force: true });
  });

  it("close() ends keep-alive connections and in-flight uploads, and resolves", async () => {
    const reg = await startTestRegistry();
    const start = await reg.api("POST", "/v2/shutdown/blobs/uploads/");
    const location = header(start, "location")!;
    // a keep-alive connection left idle
    const idle = new Client(reg.registry.url);
    const ping = await idle.request({ method: "GET", path: "/v2/" });
    expect(ping.statusCode).toBe(200);
    await ping.body.text();
    const idleGone = new Promise<void>((resolve) => idle.once("disconnect", () => resolve()));
    // an upload that never finishes, once the server has written its first bytes
    const file = join(reg.root, "uploads", location.split("/").pop()!, "data");
    const written = fileGrows(file);
    const hanging = httpRequest({
      host: "127.0.0.1",
      port: reg.registry.port,
      method: "PATCH",
      path: location,
    });
    hanging.on("error", () => {});
    // not events.once: it would reject on the 'error' (socket hang up) that comes first
    const hangingClosed = new Promise<void>((resolve) => hanging.once("close", () => resolve()));
    hanging.write(Buffer.alloc(1000));
    await written;

    // each await below hangs (and the test times out) if close() leaves that connection open
    await reg.registry.close();
    await hangingClosed;
    await idleGone;
    await idle.close();
    await reg.stop();
  });
});
