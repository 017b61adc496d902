/**
 * Transport behaviour against the real registry through a fault proxy: retries with backoff,
 * Retry-After, redirects that must not carry credentials, token refresh.
 */
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import * as timers from "node:timers/promises";
import { describe, expect, it, vi } from "vitest";
import { RegistryError } from "../../../shared/registry/errors.ts";
import type { RequestEvent } from "../../../shared/registry/options.ts";
import { parseReference } from "../../../shared/registry/reference.ts";
import { pushBlob } from "../../../shared/registry/uploads.ts";
import { imageOf, tarLayer } from "../../../shared/sample/image.ts";
import { startFaultProxy } from "../../helpers/fault-proxy.ts";
import {
  bufferOpener,
  clientFor,
  randomBlob,
  readAll,
  registries,
  uniqueRepo,
} from "../../helpers/registry-client.ts";

// The transport's waits, recorded (and still taken): a test checks the wait the client asked for, not
// how long the machine took.
vi.mock("node:timers/promises", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:timers/promises")>();
  return { ...real, setTimeout: vi.fn(real.setTimeout) };
});

const regs = registries();

describe("retries", () => {
  it("rides out a burst of 503s on manifest and blob reads", async () => {
    const c0 = clientFor(regs.anon);
    const repo = { registry: regs.anon.host, repository: uniqueRepo() };
    const blob = randomBlob(30_000);
    await pushBlob(c0, repo, blob.desc, bufferOpener(blob.bytes));
    await c0.close();
    let failures = 0;
    const proxy = await startFaultProxy(regs.anon.url, (r) =>
      r.method === "GET" && r.url.includes("/blobs/") && failures++ < 3
        ? { kind: "status", status: 503, body: '{"errors":[{"code":"UNAVAILABLE"}]}' }
        : undefined,
    );
    const events: RequestEvent[] = [];
    const c = clientFor({ ...regs.anon, host: proxy.host }, { observer: (e) => events.push(e) });
    try {
      const got = await readAll(await c.getBlob({ ...repo, registry: proxy.host }, blob.desc));
      expect(got.equals(blob.bytes)).toBe(true);
      expect(events.filter((e) => e.op === "blob.get").map((e) => e.status)).toEqual([503, 503, 503, 200]);
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  it("honours Retry-After on 429", async () => {
    let sent = false;
    const proxy = await startFaultProxy(regs.anon.url, (r) => {
      if (r.url !== "/v2/" || sent) return undefined;
      sent = true;
      return { kind: "status", status: 429, headers: { "retry-after": "1" } };
    });
    // a backoff of 1 ms unless Retry-After is read: the only 1000 ms wait can come from its "1"
    const c = clientFor({ ...regs.anon, host: proxy.host }, { retryBaseMs: 1, retryMaxMs: 5000 });
    const waits = vi.mocked(timers.setTimeout);
    waits.mockClear();
    try {
      await c.ping(proxy.host);
      expect(proxy.injected).toBe(1);
      expect(waits.mock.calls.map((call) => call[0])).toEqual([1000]);
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  it("gives up after the configured retries with a clear error naming the status", async () => {
    const proxy = await startFaultProxy(regs.anon.url, () => ({ kind: "status", status: 502 }));
    const c = clientFor({ ...regs.anon, host: proxy.host }, { retries: 2 });
    try {
      await expect(c.getManifest(parseReference(`${proxy.host}/some/repo:v1`))).rejects.toThrow(
        /manifests\/v1 answered 502 Bad Gateway/,
      );
      expect(proxy.requests).toHaveLength(3);
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  // distribution 2.8 rewrites a blob's link file in place when the blob is pushed into the repository
  // again; a manifest PUT reading it meanwhile gets this answer, with every blob in (#4478).
  const LINK_BEING_REWRITTEN = JSON.stringify({
    errors: [
      { code: "DIGEST_INVALID", message: "provided digest did not match uploaded content" },
      { code: "MANIFEST_BLOB_UNKNOWN", message: "blob unknown to registry" },
    ],
  });

  it("sends a manifest again when the registry calls a blob it holds unknown (a link being rewritten)", async () => {
    const repository = uniqueRepo();
    const small = await tarLayer([{ name: "etc/arch", content: "amd64\n" }]);
    const image = imageOf([small], { os: "linux", architecture: "amd64" });
    let refused = 0;
    const proxy = await startFaultProxy(regs.anon.url, (r) =>
      r.method === "PUT" && r.url.includes("/manifests/") && refused++ < 2
        ? { kind: "status", status: 400, body: LINK_BEING_REWRITTEN }
        : undefined,
    );
    const events: RequestEvent[] = [];
    const c = clientFor({ ...regs.anon, host: proxy.host }, { observer: (e) => events.push(e) });
    const repo = { registry: proxy.host, repository };
    try {
      for (const b of [image.config, ...image.layers]) await pushBlob(c, repo, b.desc, (o) => b.open(o));
      await c.putManifest(repo, "v1", image.manifest);
      expect(events.filter((e) => e.op === "manifest.put").map((e) => e.status)).toEqual([400, 400, 201]);
      const back = await c.getManifest(parseReference(`${proxy.host}/${repository}:v1`));
      expect(back.digest).toBe(image.manifest.digest);
    } finally {
      await c.close();
      await proxy.close();
    }
  });

  it("a manifest over a blob that really is missing fails after three tries, with the registry's answer", async () => {
    const repository = uniqueRepo();
    const small = await tarLayer([{ name: "etc/arch", content: "amd64\n" }]);
    const image = imageOf([small], { os: "linux", architecture: "amd64" });
    const events: RequestEvent[] = [];
    const c = clientFor(regs.anon, { observer: (e) => events.push(e) });
    const repo = { registry: regs.anon.host, repository };
    try {
      // the config is in, the layer is not
      await pushBlob(c, repo, image.config.desc, (o) => image.config.open(o));
      const err = await c.putManifest(repo, "v1", image.manifest).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as RegistryError).hasCode("MANIFEST_BLOB_UNKNOWN")).toBe(true);
      expect((err as Error).message).toMatch(
        /push manifest sha256:[0-9a-f]{64} to .*:v1: PUT .* answered 400/,
      );
      expect(events.filter((e) => e.op === "manifest.put").map((e) => e.status)).toEqual([400, 400, 400]);
    } finally {
      await c.close();
    }
  });

  it("other refusals of a manifest are answers: one try", async () => {
    const proxy = await startFaultProxy(regs.anon.url, (r) =>
      r.method === "PUT" && r.url.includes("/manifests/")
        ? { kind: "status", status: 400, body: '{"errors":[{"code":"MANIFEST_INVALID"}]}' }
        : undefined,
    );
    const c = clientFor({ ...regs.anon, host: proxy.host });
    const image = imageOf([await tarLayer([{ name: "a", content: "a" }])], {
      os: "linux",
      architecture: "amd64",
    });
    try {
      await expect(
        c.putManifest({ registry: proxy.host, repository: uniqueRepo() }, "v1", image.manifest),
      ).rejects.toThrow(/MANIFEST_INVALID/);
      expect(proxy.injected).toBe(1);
    } finally {
      await c.close();
      await proxy.close();
    }
  });
});

describe("redirects", () => {
  it("follows a blob redirect to another host without forwarding Authorization", async () => {
    const reg = regs.basic;
    const c = clientFor(reg);
    const repo = { registry: reg.host, repository: uniqueRepo() };
    const blob = randomBlob(20_000);
    await pushBlob(c, repo, blob.desc, bufferOpener(blob.bytes));
    // "object storage": another origin (localhost vs 127.0.0.1) serving the bytes, recording headers
    const seen: http.IncomingHttpHeaders[] = [];
    const storage = http.createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { "content-length": String(blob.bytes.length) });
      res.end(blob.bytes);
    });
    await new Promise<void>((r) => storage.listen(0, "127.0.0.1", r));
    const port = (storage.address() as AddressInfo).port;
    const proxy = await startFaultProxy(reg.url, (r) =>
      r.method === "GET" && r.url.includes(`/blobs/${blob.desc.digest}`) && r.headers.authorization
        ? {
            kind: "status",
            status: 307,
            headers: { location: `http://localhost:${port}/bucket/object?X-Amz-Signature=abc` },
          }
        : undefined,
    );
    const pc = clientFor({ ...reg, host: proxy.host });
    try {
      const got = await readAll(await pc.getBlob({ ...repo, registry: proxy.host }, blob.desc));
      expect(got.equals(blob.bytes)).toBe(true);
      expect(seen).toHaveLength(1);
      expect(seen[0]!.authorization).toBeUndefined();
      // the registry itself did get credentials on that request
      const redirected = proxy.requests.filter((r) => r.url.includes(`/blobs/${blob.desc.digest}`));
      expect(redirected.at(-1)?.headers.authorization).toMatch(/^Basic /);
    } finally {
      await pc.close();
      await c.close();
      await proxy.close();
      await new Promise((r) => storage.close(r));
    }
  });
});

describe("connections", () => {
  it("keeps the connection after HEAD requests (undici closes it by default)", async () => {
    // a TCP relay that counts the connections the client opens
    const upstream = new URL(regs.anon.url);
    let connections = 0;
    const relay = net.createServer((down) => {
      connections++;
      const up = net.connect(Number(upstream.port), upstream.hostname);
      down.pipe(up).on("error", () => down.destroy());
      up.pipe(down).on("error", () => up.destroy());
      down.on("error", () => up.destroy());
      up.on("error", () => down.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    const host = `127.0.0.1:${(relay.address() as AddressInfo).port}`;
    const c = clientFor({ ...regs.anon, host });
    const repo = { registry: host, repository: uniqueRepo() };
    try {
      for (let i = 0; i < 10; i++) {
        expect(await c.headBlob(repo, `sha256:${String(i).repeat(64)}`)).toBeUndefined();
        expect(await c.headManifest({ ...repo, tag: "absent" })).toBeUndefined();
      }
      // 20 HEADs; undici's default would open one connection each
      expect(connections).toBeLessThanOrEqual(2);
    } finally {
      await c.close();
      relay.close();
    }
  });
});

describe("token lifetime", () => {
  it("refreshes a bearer token before it expires instead of failing mid-transfer", async () => {
    const reg = regs.token;
    // tokenMarginSeconds larger than the server's TTL forces a refresh on every use after the first
    const c = clientFor(reg, { tokenMarginSeconds: 100_000 });
    const repository = uniqueRepo("ttl");
    try {
      const repo = { registry: reg.host, repository };
      for (let i = 0; i < 3; i++) {
        const blob = randomBlob(1000 + i);
        await pushBlob(c, repo, blob.desc, bufferOpener(blob.bytes));
      }
      const log = (await (await fetch(reg.token!.requestsUrl)).json()) as { scopes: string[] }[];
      const mine = log.filter((r) => r.scopes.some((s) => s.includes(repository)));
      expect(mine.length).toBeGreaterThan(3);
    } finally {
      await c.close();
    }
  });
});

describe("token single-flight", () => {
  it("requests that meet the first 401 together share one token", async () => {
    const { startDistribution } = await import("../../helpers/distribution.ts");
    const reg = await startDistribution({ auth: "token" });
    const c = clientFor({
      host: reg.host,
      url: reg.url,
      auth: "token",
      username: reg.username!,
      password: reg.password!,
      storageDir: reg.storageDir,
    });
    try {
      const repo = { registry: reg.host, repository: "single/flight" };
      reg.token!.reset();
      await Promise.all([...Array(6).keys()].map(() => c.headBlob(repo, `sha256:${"0".repeat(64)}`)));
      expect(reg.token!.requests.filter((r) => r.status === 200)).toHaveLength(1);
    } finally {
      await c.close();
      await reg.stop();
    }
  });
});
