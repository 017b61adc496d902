/**
 * The pieces of `ferry serve --htpasswd` that keep bcrypt from being a denial of service: the
 * worker pool (real threads, real bcryptjs), the per-client limiter, and the authenticator's order
 * of checks. The HTTP-level behaviour is in test/integration/serve/overload.test.ts.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { afterEach, describe, expect, it } from "vitest";
import { type Authenticator, createAuthenticator } from "../../../serve/auth.ts";
import { BcryptPool, PoolBusyError } from "../../../serve/bcrypt-pool.ts";
import { RegistryError } from "../../../serve/errors.ts";
import { AttemptLimiter, clientKey } from "../../../serve/limits.ts";

const HASH = bcrypt.hashSync("s3cret", 4);
const OTHER = bcrypt.hashSync("other-pw", 4);
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    if (err instanceof RegistryError) return `${err.status} ${err.code}`;
    throw err;
  }
}

describe("bcrypt worker pool", () => {
  const pools: BcryptPool[] = [];
  const pool = (size: number, queue: number) => {
    const p = new BcryptPool(size, queue);
    pools.push(p);
    return p;
  };
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });

  it("starts no worker before the first check, and verifies in one", async () => {
    const p = pool(2, 8);
    expect(p.workers).toBe(0);
    expect(await p.verify("s3cret", HASH)).toBe(true);
    expect(await p.verify("wrong", HASH)).toBe(false);
    expect(await p.verify("s3cret", "not a bcrypt hash")).toBe(false);
    expect(p.workers).toBe(1);
    await Promise.all([p.verify("a", HASH), p.verify("b", HASH), p.verify("c", HASH)]);
    expect(p.workers).toBe(2);
  });

  it("refuses checks beyond its workers and queue at once, and runs the accepted ones", async () => {
    const p = pool(1, 2);
    const attempts = ["s3cret", "x", "s3cret", "y", "z"].map((pw) => p.verify(pw, HASH));
    const settled = await Promise.allSettled(attempts);
    expect(settled.slice(0, 3)).toEqual([
      { status: "fulfilled", value: true },
      { status: "fulfilled", value: false },
      { status: "fulfilled", value: true },
    ]);
    for (const s of settled.slice(3)) {
      expect(s.status).toBe("rejected");
      expect((s as PromiseRejectedResult).reason).toBeInstanceOf(PoolBusyError);
    }
    // the queue drained: room again
    expect(await p.verify("s3cret", HASH)).toBe(true);
  });

  it("close() ends the workers and refuses later checks", async () => {
    const p = pool(1, 4);
    await p.verify("s3cret", HASH);
    await p.close();
    expect(p.workers).toBe(0);
    await expect(p.verify("s3cret", HASH)).rejects.toMatchObject({ name: "PoolBusyError", closed: true });
  });

  it("does not keep the process alive without close()", async () => {
    const module = join(import.meta.dirname, "..", "..", "..", "serve", "bcrypt-pool.ts");
    const script = `
      import { BcryptPool } from ${JSON.stringify(module)};
      const ok = await new BcryptPool(2, 4).verify("s3cret", ${JSON.stringify(HASH)});
      process.stdout.write(String(ok));
    `;
    // If a worker held the event loop, the child would never exit and this test would time out.
    const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = execFile(process.execPath, ["--input-type=module", "-e", script], (_err, stdout) =>
        resolve({ code: child.exitCode, stdout }),
      );
    });
    expect(out).toEqual({ code: 0, stdout: "true" });
  });
});

describe("attempt limiter", () => {
  it("grants `limit` attempts per key, refuses the next with the wait, and drains over the window", () => {
    let now = 1_000_000;
    const limiter = new AttemptLimiter(3, 60_000, () => now);
    expect([limiter.take("a"), limiter.take("a"), limiter.take("a")]).toEqual([0, 0, 0]);
    expect(limiter.take("a")).toBe(20_000);
    expect(limiter.take("b")).toBe(0);
    now += 20_000;
    expect(limiter.take("a")).toBe(0);
    expect(limiter.take("a")).toBe(20_000);
    now += 60_000;
    expect([limiter.take("a"), limiter.take("a"), limiter.take("a"), limiter.take("a")]).toEqual([
      0, 0, 0, 20_000,
    ]);
  });

  it("gives back refunded attempts", () => {
    const limiter = new AttemptLimiter(1, 60_000, () => 0);
    expect(limiter.take("a")).toBe(0);
    limiter.refund("a");
    expect(limiter.take("a")).toBe(0);
    expect(limiter.take("a")).toBeGreaterThan(0);
  });

  it("tracks a bounded number of keys, forgetting the least recently charged", () => {
    const limiter = new AttemptLimiter(1, 60_000, () => 0, 2);
    expect([limiter.take("a"), limiter.take("b"), limiter.take("c")]).toEqual([0, 0, 0]);
    expect(limiter.take("c")).toBeGreaterThan(0);
    expect(limiter.take("b")).toBeGreaterThan(0);
    expect(limiter.take("a")).toBe(0);
  });

  it.each([
    ["127.0.0.1", "127.0.0.1"],
    ["::ffff:10.1.2.3", "10.1.2.3"],
    ["2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"],
    ["2001:db8:1:2::9", "2001:db8:1:2::/64"],
    ["2001:0db8:0001:0002:ffff::", "2001:db8:1:2::/64"],
    ["2001:db8::1", "2001:db8:0:0::/64"],
    ["::1", "0:0:0:0::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64"],
    ["64:ff9b::192.0.2.1", "64:ff9b:0:0::/64"],
    [undefined, "-"],
  ])("counts %s as %s", (address, key) => {
    expect(clientKey(address)).toBe(key);
  });
});

describe("authenticator", () => {
  const auths: Authenticator[] = [];
  const make = (opts: Partial<Parameters<typeof createAuthenticator>[1]> = {}) => {
    const a = createAuthenticator(
      new Map([
        ["ferry", HASH],
        ["other", OTHER],
      ]),
      { attempts: 3, windowMs: 60_000, workers: 1, queue: 8, cacheSize: 10, now: () => 0, ...opts },
    );
    auths.push(a);
    return a;
  };
  afterEach(async () => {
    await Promise.all(auths.splice(0).map((a) => a.close()));
  });

  it("challenges missing and malformed credentials without counting them", async () => {
    const auth = make({ attempts: 1 });
    for (const header of [
      undefined,
      "",
      "Bearer x",
      "Basic !!!",
      `Basic ${Buffer.from("nocolon").toString("base64")}`,
    ])
      expect(await codeOf(auth.check(header, "a"))).toBe("401 UNAUTHORIZED");
    expect(await codeOf(auth.check(basic("ferry", "s3cret"), "a"))).toBe("ok");
  });

  it("refuses a client over its budget with 429 and Retry-After, without a check", async () => {
    const auth = make({ attempts: 2 });
    const first = await Promise.all(["x", "y", "z"].map((pw) => codeOf(auth.check(basic("ferry", pw), "a"))));
    expect(first.sort()).toEqual(["401 UNAUTHORIZED", "401 UNAUTHORIZED", "429 TOOMANYREQUESTS"]);
    const err = await auth.check(basic("nobody", "s3cret"), "a").catch((e: RegistryError) => e);
    expect(err).toMatchObject({ status: 429, code: "TOOMANYREQUESTS", headers: { "Retry-After": "30" } });
    // the right password is not checked either: it is not known yet
    expect(await codeOf(auth.check(basic("ferry", "s3cret"), "a"))).toBe("429 TOOMANYREQUESTS");
    // another client is unaffected
    expect(await codeOf(auth.check(basic("ferry", "s3cret"), "b"))).toBe("ok");
  });

  it("admits verified credentials from the cache, even from a throttled client", async () => {
    const auth = make({ attempts: 1 });
    expect(await codeOf(auth.check(basic("ferry", "s3cret"), "a"))).toBe("ok");
    expect(await codeOf(auth.check(basic("ferry", "wrong"), "a"))).toBe("401 UNAUTHORIZED");
    expect(await codeOf(auth.check(basic("ferry", "wrong2"), "a"))).toBe("429 TOOMANYREQUESTS");
    expect(await codeOf(auth.check(basic("ferry", "s3cret"), "a"))).toBe("ok");
    expect(await codeOf(auth.check(basic("other", "other-pw"), "a"))).toBe("429 TOOMANYREQUESTS");
  });

  it("shares one check among parallel requests with the same credentials", async () => {
    const auth = make({ attempts: 1 });
    const results = await Promise.all(
      Array.from({ length: 10 }, () => codeOf(auth.check(basic("other", "other-pw"), "a"))),
    );
    expect(results).toEqual(Array(10).fill("ok"));
  });

  it("answers 503 with Retry-After when the bcrypt queue is full, and does not count it", async () => {
    const auth = make({ attempts: 2, queue: 0 });
    const [running, refused] = [auth.check(basic("ferry", "a"), "c"), auth.check(basic("ferry", "b"), "c")];
    expect(await codeOf(refused)).toBe("503 UNAVAILABLE");
    expect(await refused.catch((e: RegistryError) => e.headers["Retry-After"])).toBe("1");
    expect(await codeOf(running)).toBe("401 UNAUTHORIZED");
    // one failure counted of two: a counted 503 would make this a 429
    expect(await codeOf(auth.check(basic("ferry", "c"), "c"))).toBe("401 UNAUTHORIZED");
    expect(await codeOf(auth.check(basic("ferry", "d"), "c"))).toBe("429 TOOMANYREQUESTS");
  });

  it("compares unknown users against a real hash and refuses them, even with another user's password", async () => {
    const auth = make();
    expect(await codeOf(auth.check(basic("nobody", "s3cret"), "a"))).toBe("401 UNAUTHORIZED");
    expect(await codeOf(auth.check(basic("other", "s3cret"), "a"))).toBe("401 UNAUTHORIZED");
  });
});
