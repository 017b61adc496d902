/**
 * `ferry serve` under abuse: a wrong-password flood, stalled request bodies, dribbled headers, and
 * more upload sessions than allowed. Small limits and timeouts are set as configuration; nothing
 * here asserts how long anything took: the tests wait for events (replies, 'close') and count.
 * The client "at another address" binds 127.0.0.2 (Linux routes all of 127/8 to the loopback), so
 * the registry sees two real client addresses.
 */
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Api,
  apiClient,
  bytes,
  header,
  type Reply,
  sha256,
  startTestRegistry,
  type TestRegistry,
} from "./helpers.ts";

const auth = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`,
});
const HOUR = 60 * 60 * 1000;

function countBy(replies: Reply[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const r of replies) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
}

describe("ferry serve --htpasswd: a wrong-password flood", () => {
  let dir: string;
  let reg: TestRegistry;
  // Frozen unless a test moves it: attempt budgets do not drain by themselves.
  let clock = Date.now();
  const lines: string[] = [];
  let legit: ReturnType<typeof apiClient>;
  const ATTEMPTS = 5;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-serve-flood-"));
    const ferry = bcrypt.hashSync("s3cret", 6).replace(/^\$2b\$/, "$2y$");
    const other = bcrypt.hashSync("hunter2", 6);
    await writeFile(join(dir, "htpasswd"), `ferry:${ferry}\nother:${other}\n`);
    reg = await startTestRegistry({
      htpasswd: join(dir, "htpasswd"),
      authAttempts: ATTEMPTS,
      now: () => clock,
      log: (l) => lines.push(l),
    });
    legit = apiClient(reg.registry.url, { localAddress: "127.0.0.2" });
  });
  afterAll(async () => {
    await legit.close();
    await reg.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers the flooding address 429 TOOMANYREQUESTS after its budget, and serves a client at another address meanwhile", async () => {
    const flood = apiClient(reg.registry.url, { connections: 200 });
    const floodReplies: Reply[] = [];
    let sent = 0;
    let legitDone = false;
    // 200 flooders with a request in flight each, until the legitimate client is done (and at
    // least 400 attempts went out): the client below works during the flood by construction.
    const flooder = async () => {
      while (!legitDone || sent < 400) {
        const guess = `guess-${sent++}`;
        floodReplies.push(await flood.api("GET", "/v2/", { headers: auth("ferry", guess) }));
      }
    };
    const flooders = Array.from({ length: 200 }, flooder);

    const legitReplies: Reply[] = [];
    const creds = auth("ferry", "s3cret");
    try {
      legitReplies.push(await legit.api("GET", "/v2/", { headers: creds }));
      const data = bytes(50_000, 3);
      const digest = sha256(data);
      legitReplies.push(
        await legit.api("POST", `/v2/flood/blobs/uploads/?digest=${digest}`, { body: data, headers: creds }),
      );
      for (let i = 0; i < 3; i++) {
        const blob = await legit.api("GET", `/v2/flood/blobs/${digest}`, { headers: creds });
        expect(blob.body.equals(data)).toBe(true);
        legitReplies.push(blob);
      }
    } finally {
      legitDone = true;
      await Promise.all(flooders);
      await flood.close();
    }

    expect(legitReplies.map((r) => r.status)).toEqual([200, 201, 200, 200, 200]);
    expect(floodReplies.length).toBeGreaterThanOrEqual(400);
    // exactly the budget got a bcrypt check (and a 401); every other attempt a 429 without one
    expect(countBy(floodReplies)).toEqual({ 401: ATTEMPTS, 429: floodReplies.length - ATTEMPTS });
    for (const r of floodReplies.filter((r) => r.status === 429)) {
      expect(r.json().errors[0].code).toBe("TOOMANYREQUESTS");
      expect(Number(header(r, "retry-after"))).toBeGreaterThanOrEqual(1);
    }
    expect(lines.filter((l) => l.includes("error on"))).toEqual([]);
  });

  it("admits verified credentials from the throttled address (cached), but checks no new ones there", async () => {
    const throttled = reg.api;
    // verified for 127.0.0.2 above: admitted from the cache, no bcrypt
    expect((await throttled("GET", "/v2/", { headers: auth("ferry", "s3cret") })).status).toBe(200);
    // right, but never verified: would need a check, and the address has no budget left
    const other = await throttled("GET", "/v2/", { headers: auth("other", "hunter2") });
    expect(other.status).toBe(429);
    expect(other.json().errors[0].code).toBe("TOOMANYREQUESTS");
    // anonymous requests still get the challenge
    expect((await throttled("GET", "/v2/")).status).toBe(401);
    expect((await legit.api("GET", "/v2/", { headers: auth("other", "hunter2") })).status).toBe(200);
  });

  it("drains the budget over the window", async () => {
    clock += 60_000;
    const attempts: number[] = [];
    for (let i = 0; i <= ATTEMPTS; i++)
      attempts.push((await reg.api("GET", "/v2/", { headers: auth("ferry", `later-${i}`) })).status);
    expect(attempts).toEqual([...Array(ATTEMPTS).fill(401), 429]);
  });
});

/** Sends a request's headers announcing a body, then nothing; resolves whether any response came before 'close'. */
function stall(port: number, method: string, path: string): Promise<boolean> {
  const req = httpRequest({
    host: "127.0.0.1",
    port,
    method,
    path,
    headers: { "content-length": "1000", "content-type": "application/octet-stream" },
  });
  let responded = false;
  req.on("response", (res) => {
    responded = true;
    res.resume();
  });
  req.on("error", () => {});
  req.flushHeaders();
  return new Promise((resolve) => req.on("close", () => resolve(responded)));
}

describe("ferry serve: stalled requests", () => {
  it("closes connections silent mid-body, serves other clients meanwhile, and leaves stalled sessions resumable until the purge", async () => {
    let skew = 0;
    const lines: string[] = [];
    const now = () => Date.now() + skew;
    const reg = await startTestRegistry({ idleTimeoutMs: 500, now, log: (l) => lines.push(l) });
    const { port } = reg.registry;
    const locations: string[] = [];
    for (let i = 0; i < 20; i++)
      locations.push(header(await reg.api("POST", "/v2/stall/blobs/uploads/"), "location")!);
    const first = bytes(1000, 9);
    expect(
      (await reg.api("PATCH", locations[0]!, { body: first, headers: { "content-range": "0-999" } })).status,
    ).toBe(202);

    const stalls = [
      ...locations.slice(0, 10).map((l) => stall(port, "PATCH", l)),
      ...locations.slice(10).map((l) => stall(port, "PUT", `${l}?digest=${sha256("never")}`)),
      ...Array.from({ length: 5 }, () =>
        stall(port, "POST", `/v2/stall/blobs/uploads/?digest=${sha256("x")}`),
      ),
    ];

    // another client pushes and pulls while they hang
    const other = apiClient(reg.registry.url, { localAddress: "127.0.0.2" });
    const data = bytes(200_000, 4);
    const digest = sha256(data);
    const start = await other.api("POST", "/v2/busy/blobs/uploads/");
    expect(start.status).toBe(202);
    const patched = await other.api("PATCH", header(start, "location")!, { body: data });
    expect(patched.status).toBe(202);
    expect((await other.api("PUT", `${header(patched, "location")}?digest=${digest}`)).status).toBe(201);
    expect((await other.api("GET", `/v2/busy/blobs/${digest}`)).body.equals(data)).toBe(true);
    await other.close();

    // every stalled connection is closed by the server, none answered
    expect(await Promise.all(stalls)).toEqual(Array(25).fill(false));

    // the sessions are intact: the one with bytes resumes, the PUT-stalled ones released their lock
    const resumed = await reg.api("GET", locations[0]!);
    expect(header(resumed, "range")).toBe("0-999");
    const rest = bytes(500, 10);
    const whole = Buffer.concat([first, rest]);
    expect(
      (await reg.api("PATCH", locations[0]!, { body: rest, headers: { "content-range": "1000-1499" } }))
        .status,
    ).toBe(202);
    expect((await reg.api("PUT", `${locations[0]}?digest=${sha256(whole)}`)).status).toBe(201);
    const afterPut = await reg.api("GET", locations[10]!);
    expect(afterPut.status).toBe(204);
    expect(header(afterPut, "range")).toBe("0-0");

    // close() waits for every handler: then the stalled ones have cleaned up after themselves
    await reg.registry.close();
    expect(await readdir(join(reg.root, "tmp"))).toEqual([]);
    expect((await readdir(join(reg.root, "uploads"))).length).toBe(19);
    expect(lines.filter((l) => l.includes("error on"))).toEqual([]);

    // left for the purge: gone once they are older than uploadMaxAgeMs
    skew = 2 * HOUR;
    const again = await startTestRegistry({ root: reg.root, now });
    try {
      await again.registry.purgeUploads();
      expect(await readdir(join(reg.root, "uploads"))).toEqual([]);
    } finally {
      await again.stop();
      await reg.stop().catch(() => {});
      await rm(reg.root, { recursive: true, force: true });
    }
  });

  it("answers 408 to a client that dribbles its headers past headersTimeoutMs, and serves others", async () => {
    const reg = await startTestRegistry({ headersTimeoutMs: 300 });
    try {
      const sock = connect(reg.registry.port, "127.0.0.1");
      sock.on("error", () => {});
      let received = "";
      sock.on("data", (d: Buffer) => {
        received += d.toString("latin1");
      });
      sock.write("GET /v2/ HTTP/1.1\r\nHost: x\r\n");
      // a header line now and then keeps the socket busy (never idle) without ever ending the headers
      let n = 0;
      const drip = setInterval(() => sock.write(`X-Slow-${n++}: 1\r\n`), 20);
      const other = await reg.api("GET", "/v2/");
      await once(sock, "close");
      clearInterval(drip);
      expect(other.status).toBe(200);
      expect(received).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      await reg.stop();
    }
  });
});

describe("ferry serve: cap on open upload sessions", () => {
  const post = (api: Api, name = "cap") => api("POST", `/v2/${name}/blobs/uploads/`);

  it("answers 429 TOOMANYREQUESTS beyond maxUploadSessions; finished, cancelled and purged sessions free their slots", async () => {
    let skew = 0;
    const reg = await startTestRegistry({ maxUploadSessions: 3, now: () => Date.now() + skew });
    try {
      const [a, b, c] = await Promise.all([post(reg.api), post(reg.api, "cap/other"), post(reg.api)]);
      expect([a, b, c].map((r) => r.status)).toEqual([202, 202, 202]);
      const full = await post(reg.api, "cap/third");
      expect(full.status).toBe(429);
      expect(full.json().errors[0].code).toBe("TOOMANYREQUESTS");
      expect(Number(header(full, "retry-after"))).toBeGreaterThanOrEqual(1);
      // a monolithic upload opens no session: still accepted
      const data = bytes(1000, 2);
      expect(
        (await reg.api("POST", `/v2/cap/blobs/uploads/?digest=${sha256(data)}`, { body: data })).status,
      ).toBe(201);

      // finished
      expect(
        (await reg.api("PUT", `${header(a!, "location")}?digest=${sha256(data)}`, { body: data })).status,
      ).toBe(201);
      const d = await post(reg.api);
      expect(d.status).toBe(202);
      expect((await post(reg.api)).status).toBe(429);
      // cancelled
      expect((await reg.api("DELETE", header(b!, "location")!)).status).toBe(204);
      expect((await post(reg.api)).status).toBe(202);
      expect((await post(reg.api)).status).toBe(429);
      // purged: not before they are stale, then all of them
      await reg.registry.purgeUploads();
      expect((await post(reg.api)).status).toBe(429);
      skew = 2 * HOUR;
      await reg.registry.purgeUploads();
      const fresh = await Promise.all([post(reg.api), post(reg.api), post(reg.api), post(reg.api)]);
      expect(fresh.map((r) => r.status).sort()).toEqual([202, 202, 202, 429]);
    } finally {
      await reg.stop();
    }
  });

  it("holds under concurrent POSTs, and counts the sessions an earlier run left on disk", async () => {
    const reg = await startTestRegistry({ maxUploadSessions: 4 });
    const root = reg.root;
    try {
      const burst = await Promise.all(Array.from({ length: 12 }, () => post(reg.api)));
      expect(countBy(burst)).toEqual({ 202: 4, 429: 8 });
      expect((await readdir(join(root, "uploads"))).length).toBe(4);
      await reg.registry.close();
      const again = await startTestRegistry({ root, maxUploadSessions: 4 });
      try {
        expect((await post(again.api)).status).toBe(429);
        // a session of the earlier run can still be cancelled, which frees its slot
        const location = header(burst.find((r) => r.status === 202)!, "location")!;
        expect((await again.api("DELETE", location)).status).toBe(204);
        expect(existsSync(join(root, "uploads", location.split("/").pop()!))).toBe(false);
        expect((await post(again.api)).status).toBe(202);
      } finally {
        await again.stop();
      }
    } finally {
      await reg.stop().catch(() => {});
      await rm(root, { recursive: true, force: true });
    }
  });
});
