/**
 * Authentication paths against the real token server and distribution, not a parser: a token whose
 * scope is too narrow is widened and the request replayed; a token the registry stops accepting in the
 * middle of a copy is replaced and the copy completes; environment credentials go only to the
 * registries FERRY_REGISTRY names.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { RequestEvent } from "../../../shared/registry/options.ts";
import { sampleMultiPlatform, writeSample } from "../../../shared/sample/image.ts";
import { TransferEngine } from "../../../shared/transfer/engine.ts";
import { RegistrySink, RegistrySource } from "../../../shared/transfer/registry-endpoints.ts";
import { startDistribution, toRegistryInfo } from "../../helpers/distribution.ts";
import { startFaultProxy } from "../../helpers/fault-proxy.ts";
import { ferry } from "../../helpers/ferry-cli.ts";
import { everything, hostileServer, secretForms } from "../../helpers/hostile.ts";
import { clientFor, pushSample, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import type { TokenRequest } from "../../helpers/token-server.ts";

const regs = registries();
const anon = clientFor(regs.anon);
afterAll(() => anon.close());

async function tokenRequests(): Promise<TokenRequest[]> {
  const res = await fetch(regs.token.token!.requestsUrl);
  return (await res.json()) as TokenRequest[];
}

describe("insufficient_scope", () => {
  it("widens the token's scope from the registry's challenge and replays the request", async () => {
    const repository = uniqueRepo("scope");
    const repo = { registry: regs.token.host, repository };
    const { images } = await sampleMultiPlatform("scope");
    const image = images[0]!;
    const seeder = clientFor(regs.token);
    await writeSample(new RegistrySink(seeder, repo), [image], undefined, "seed");
    await seeder.close();
    const mineNow = async () =>
      (await tokenRequests()).filter((t) => t.scopes.some((s) => s.includes(repository)));
    const seeded = (await mineNow()).length;

    const seen: RequestEvent[] = [];
    const c = clientFor(regs.token, { observer: (e) => seen.push(e) });
    try {
      // A pull-only token first (the client then holds it for this repository)…
      expect((await c.headManifest({ ...repo, tag: "seed" }))?.digest).toBe(image.manifest.digest);
      // …then a PUT that declares only `pull`: distribution answers 401 insufficient_scope naming
      // `pull,push`, and ferry must come back with a token for that.
      const res = await c.request({
        op: "manifest.put",
        method: "PUT",
        registry: regs.token.host,
        url: c.url(repo, "manifests/narrow"),
        headers: { "content-type": image.manifest.mediaType },
        body: image.manifest.bytes,
        scopes: [`repository:${repository}:pull`],
        expect: [201],
        context: "test",
      });
      await res.body.dump();
      expect(seen.filter((e) => e.op === "manifest.put").map((e) => e.status)).toEqual([401, 201]);
      const mine = (await mineNow()).slice(seeded);
      expect(mine.map((t) => [t.scopes.join(" "), t.status])).toEqual([
        [`repository:${repository}:pull`, 200],
        [`repository:${repository}:pull,push`, 200],
      ]);
      expect((await c.headManifest({ ...repo, tag: "narrow" }))?.digest).toBe(image.manifest.digest);
    } finally {
      await c.close();
    }
  });
});

describe("a token that expires in the middle of a copy", () => {
  it("is refused by the registry, replaced, and the copy completes byte-identical", async () => {
    const dest = await startDistribution({ auth: "token" });
    const token = dest.token!;
    const info = toRegistryInfo(dest);
    const { images, index } = await sampleMultiPlatform("expiry");
    const srcRepo = { registry: regs.anon.host, repository: uniqueRepo("expiry-src") };
    await writeSample(new RegistrySink(anon, srcRepo), images, index, "v1");

    // Tokens the client believes valid for 300 s but which distribution (60 s of leeway past `exp`)
    // accepts for about 4 s more. The first blob read at the source is held until the registry really
    // refuses the token ferry holds: the copy is then paused between two uses of one token.
    token.expOffsetSeconds = -(token.ttlSeconds + 56);
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    let held = 0;
    const proxy = await startFaultProxy(regs.anon.url, (r) =>
      r.method === "GET" && r.url.includes("/blobs/") && held++ === 0
        ? { kind: "hold", until: released }
        : undefined,
    );
    const events: RequestEvent[] = [];
    const src = clientFor({ ...regs.anon, host: proxy.host });
    const dst = clientFor(info, { observer: (e) => events.push(e) });
    const waitForRefusal = (async () => {
      while (held === 0) await new Promise((r) => setTimeout(r, 50));
      const issued = token.lastToken!;
      for (;;) {
        const res = await fetch(`${dest.url}/v2/`, { headers: { authorization: `Bearer ${issued}` } });
        await res.arrayBuffer();
        if (res.status === 401) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      token.expOffsetSeconds = 0;
      release();
    })();
    try {
      const dstRepo = { registry: dest.host, repository: uniqueRepo("expiry-dst") };
      const report = await new TransferEngine().copy(
        new RegistrySource(src, { ...srcRepo, registry: proxy.host, tag: "v1" }),
        new RegistrySink(dst, dstRepo),
        { tags: ["v1"] },
      );
      await waitForRefusal;
      expect(report.digest).toBe(index.digest);
      const refused = events.filter((e) => e.status === 401 && e.op !== "ping");
      // Before the pause the token worked; after it, requests met 401 and were replayed with a new one.
      expect(refused.length).toBeGreaterThan(0);
      const byScope = token.requests.filter((t) => t.scopes.join(" ").includes(dstRepo.repository));
      expect(byScope.length).toBeGreaterThanOrEqual(2);
      const back = await dst.getManifest({ ...dstRepo, tag: "v1" });
      expect(back.digest).toBe(index.digest);
      expect(Buffer.from(back.bytes).equals(Buffer.from(index.bytes))).toBe(true);
    } finally {
      release();
      await src.close();
      await dst.close();
      await proxy.close();
      await dest.stop();
    }
  });
});

describe("FERRY_USERNAME/FERRY_PASSWORD", () => {
  const user = regs.basic.username!;
  const password = regs.basic.password!;

  it("are used for the registry FERRY_REGISTRY names", async () => {
    const repository = uniqueRepo("envcreds");
    const { images } = await sampleMultiPlatform("envcreds");
    await pushSample(regs.basic, repository, [images[0]!], undefined, "v1");
    const ok = await ferry(["inspect", `${regs.basic.host}/${repository}:v1`, "--json"], {
      FERRY_USERNAME: user,
      FERRY_PASSWORD: password,
      FERRY_REGISTRY: `other.example, ${regs.basic.host}`,
    });
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).digest).toBe(images[0]!.manifest.digest);
  });

  it("are not sent to a registry FERRY_REGISTRY does not name", async () => {
    const hostile = await hostileServer((_r, res) =>
      res.writeHead(401, { "www-authenticate": 'Basic realm="hostile"' }).end(),
    );
    try {
      const out = await ferry(["inspect", `${hostile.host}/app:v1`], {
        FERRY_USERNAME: user,
        FERRY_PASSWORD: password,
        FERRY_REGISTRY: regs.basic.host,
      });
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(/^ferry: .*401 Unauthorized/m);
      expect(hostile.seen.length).toBeGreaterThan(0);
      const text = everything(hostile.seen);
      for (const form of secretForms(password, user)) expect(text).not.toContain(form);
    } finally {
      await hostile.close();
    }
  });

  it("without FERRY_REGISTRY are refused with one clear error, before any request", async () => {
    const hostile = await hostileServer((_r, res) =>
      res.writeHead(401, { "www-authenticate": 'Basic realm="x"' }).end(),
    );
    try {
      const out = await ferry(["inspect", `${hostile.host}/app:v1`], {
        FERRY_USERNAME: user,
        FERRY_PASSWORD: password,
        FERRY_REGISTRY: "",
      });
      expect(out.code).toBe(1);
      expect(out.stderr).toBe(
        "ferry: FERRY_USERNAME and FERRY_PASSWORD are set but FERRY_REGISTRY is not: name the registry they belong to (e.g. FERRY_REGISTRY=registry.example.com, several separated by commas); ferry does not send them to every registry\n",
      );
      expect(hostile.seen).toEqual([]);
    } finally {
      await hostile.close();
    }
  });
});
