/**
 * ferry's per-registry upload rules (shared/registry/options.ts: registryRules, registryKinds,
 * chunkSize) against `ferry serve` emulating each registry (serve/emulate.ts), over real HTTP: the
 * library (pushBlob, TransferEngine with RegistrySource/RegistrySink) and the CLI (`ferry copy
 * --registry-kind … --chunk-size …`). A fault proxy in front of the destination counts and sizes the
 * requests; nothing is timed. Every emulation also gets a control — the same registry and a client
 * without its rules — that must fail, so a passing rule is known to have been tested.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { type EmulatedRegistry, type RunningRegistry, startRegistry } from "../../../serve/index.ts";
import { RegistryClient } from "../../../shared/registry/client.ts";
import { RegistryError } from "../../../shared/registry/errors.ts";
import type { ClientOptions, RequestEvent } from "../../../shared/registry/options.ts";
import type { Reference, Repository } from "../../../shared/registry/reference.ts";
import { pushBlob, pushBlobStream } from "../../../shared/registry/uploads.ts";
import {
  imageOf,
  type SampleBlob,
  type SampleImage,
  seededBlob,
  writeSample,
} from "../../../shared/sample/image.ts";
import { seededStream } from "../../../shared/sample/seeded.ts";
import { TransferEngine } from "../../../shared/transfer/engine.ts";
import { RegistrySink, RegistrySource } from "../../../shared/transfer/registry-endpoints.ts";
import { type FaultProxy, type ProxiedRequest, startFaultProxy } from "../../helpers/fault-proxy.ts";
import { ferry } from "../../helpers/ferry-cli.ts";
import { clientFor, readAll, registries, uniqueRepo } from "../../helpers/registry-client.ts";

const MiB = 1024 * 1024;
const KiB = 1024;
const regs = registries();
/** The source side: distribution, plain rules. */
const src = clientFor(regs.anon);

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await src.close();
});

/** `ferry serve` with an emulation, a fault proxy in front (counting), and its request log. */
interface Emulated {
  registry: RunningRegistry;
  proxy: FaultProxy;
  /** Where clients go: the proxy. */
  host: string;
  /** The registry's log lines (method, path, status). */
  log: string[];
  /** `Range` of every PATCH answer, by upload path. */
  ranges: Map<string, string[]>;
}

async function emulated(opts: { emulate?: EmulatedRegistry; chunkMinLength?: number }): Promise<Emulated> {
  const root = await mkdtemp(join(tmpdir(), "ferry-rules-"));
  const log: string[] = [];
  const registry = await startRegistry({ root, port: 0, ...opts, log: (l) => log.push(l) });
  const ranges = new Map<string, string[]>();
  // Passes every answer through unchanged; PATCH answers are looked at on the way.
  const proxy = await startFaultProxy(registry.url, (r) =>
    r.method === "PATCH"
      ? {
          kind: "rewrite-response",
          headers: (h) => {
            const path = r.url.split("?")[0]!;
            ranges.set(path, [...(ranges.get(path) ?? []), String(h.range)]);
            return h;
          },
        }
      : undefined,
  );
  cleanups.push(async () => {
    await proxy.close();
    await registry.close();
    await rm(root, { recursive: true, force: true });
  });
  return { registry, proxy, host: proxy.host, log, ranges };
}

/** A destination client (fast retries, as in every test client). */
function client(opts: ClientOptions): RegistryClient {
  const c = new RegistryClient({ retryBaseMs: 20, retryMaxMs: 500, ...opts });
  cleanups.push(() => c.close());
  return c;
}

/** One upload session as the proxy saw it: PATCH body sizes in order, and the closing PUT. */
interface SeenUpload {
  path: string;
  patches: number[];
  put?: { digest: string; body: number };
}

function uploadsSeen(requests: ProxiedRequest[], repository: string): SeenUpload[] {
  const byPath = new Map<string, SeenUpload>();
  for (const r of requests) {
    const url = new URL(r.url, "http://x");
    if (!url.pathname.startsWith(`/v2/${repository}/blobs/uploads/`)) continue;
    if (r.method !== "PATCH" && r.method !== "PUT") continue;
    const s = byPath.get(url.pathname) ?? { path: url.pathname, patches: [] };
    const length = Number(r.headers["content-length"] ?? Number.NaN);
    if (r.method === "PATCH") s.patches.push(length);
    else s.put = { digest: url.searchParams.get("digest") ?? "", body: length };
    byPath.set(url.pathname, s);
  }
  return [...byPath.values()];
}

function uploadOf(seen: SeenUpload[], digest: string): SeenUpload {
  const found = seen.filter((s) => s.put?.digest === digest);
  expect(found).toHaveLength(1);
  return found[0]!;
}

/** An image of pseudo-random layers of these sizes, pushed to the source registry as `:v1`. */
async function sourceImage(sizes: number[]): Promise<{ ref: Reference; image: SampleImage }> {
  const repository = uniqueRepo("src");
  const layers = await Promise.all(sizes.map((n, i) => seededBlob(`${repository}/${i}`, n)));
  const image = imageOf(
    layers.map((blob) => ({ blob, diffId: blob.desc.digest })),
    { os: "linux", architecture: "amd64" },
  );
  await writeSample(
    new RegistrySink(src, { registry: regs.anon.host, repository }),
    [image],
    undefined,
    "v1",
  );
  return { ref: { registry: regs.anon.host, repository, tag: "v1" }, image };
}

/** The blob's bytes at `repo`, compared with what its seed generates. */
async function sameBytes(c: RegistryClient, repo: Repository, blob: SampleBlob, seed: string) {
  const got = await readAll(await c.getBlob(repo, blob.desc));
  const want = await readAll(seededStream(seed, blob.desc.size));
  expect(got.length).toBe(blob.desc.size);
  expect(got.equals(want)).toBe(true);
}

function patchStatuses(events: RequestEvent[]): number[] {
  return events.filter((e) => e.op === "upload.patch").map((e) => e.status);
}

describe("ECR rules against ferry serve --emulate ecr", () => {
  it("a 12 MiB layer goes up in parts ≥ 5 MiB (1 MiB asked), 201 answers and a stale Range accepted, byte for byte", async () => {
    const e = await emulated({ emulate: "ecr" });
    const { ref, image } = await sourceImage([12 * MiB]);
    const events: RequestEvent[] = [];
    const dst = client({
      registryKinds: { [e.host]: "ecr" },
      chunkSize: MiB,
      observer: (ev) => events.push(ev),
    });
    const repo = { registry: e.host, repository: uniqueRepo("ecr") };
    const report = await new TransferEngine().copy(
      new RegistrySource(src, ref),
      new RegistrySink(dst, repo),
      {
        tags: ["v1"],
      },
    );
    expect(report.digest).toBe(image.manifest.digest);

    const seen = uploadsSeen(e.proxy.requests, repo.repository);
    const layer = uploadOf(seen, image.layers[0]!.desc.digest);
    expect(layer.patches).toEqual([5 * MiB, 5 * MiB, 2 * MiB]);
    expect(layer.put!.body).toBe(0);
    const nonFinal = seen.flatMap((s) => s.patches.slice(0, -1));
    expect(nonFinal.length).toBeGreaterThan(0);
    for (const n of nonFinal) expect(n).toBeGreaterThanOrEqual(5 * MiB);
    // Every PATCH was answered 201, and the layer's Range stayed at its first chunk's end.
    const statuses = patchStatuses(events);
    expect(statuses).toHaveLength(seen.reduce((n, s) => n + s.patches.length, 0));
    expect(new Set(statuses)).toEqual(new Set([201]));
    expect(e.ranges.get(layer.path)).toEqual([`0-${5 * MiB - 1}`, `0-${5 * MiB - 1}`, `0-${5 * MiB - 1}`]);

    await sameBytes(dst, repo, image.layers[0]!, `${ref.repository}/0`);
    expect((await dst.headManifest({ ...repo, tag: "v1" }))?.digest).toBe(image.manifest.digest);
  });

  it("control: with plain rules the same registry refuses the 1 MiB parts, and the copy fails with one clear error", async () => {
    const e = await emulated({ emulate: "ecr" });
    const { ref, image } = await sourceImage([12 * MiB]);
    const dst = client({ chunkSize: MiB });
    const repo = { registry: e.host, repository: uniqueRepo("ecr-plain") };
    const err = await new TransferEngine()
      .copy(new RegistrySource(src, ref), new RegistrySink(dst, repo), { tags: ["v1"] })
      .catch((x: unknown) => x);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).status).toBe(400);
    expect((err as RegistryError).code).toBe("BLOB_UPLOAD_INVALID");
    expect((err as Error).message).toMatch(/All layer parts except the last part should be at least 5MB/);
    const layer = uploadOf(uploadsSeen(e.proxy.requests, repo.repository), image.layers[0]!.desc.digest);
    expect(layer.patches).toEqual(Array(12).fill(MiB));
    expect(await dst.headBlob(repo, image.layers[0]!.desc.digest)).toBeUndefined();
    expect(await dst.headManifest({ ...repo, tag: "v1" })).toBeUndefined();
  });
});

describe("GHCR rules against ferry serve --emulate ghcr", () => {
  it.each([
    ["the default chunk size", undefined],
    ["--chunk-size 8MiB, capped to 4 MiB", 8 * MiB],
  ])("a 9 MiB blob goes up in PATCHes of at most 4 MiB: %s", async (_name, chunkSize) => {
    const e = await emulated({ emulate: "ghcr" });
    const dst = client({ registryKinds: { [e.host]: "ghcr" }, ...(chunkSize ? { chunkSize } : {}) });
    const repo = { registry: e.host, repository: uniqueRepo("ghcr") };
    const seed = `${repo.repository}/blob`;
    const blob = await seededBlob(seed, 9 * MiB);
    expect(await pushBlob(dst, repo, blob.desc, blob.open)).toEqual({
      action: "uploaded",
      bytesSent: 9 * MiB,
    });
    expect(uploadOf(uploadsSeen(e.proxy.requests, repo.repository), blob.desc.digest).patches).toEqual([
      4 * MiB,
      4 * MiB,
      MiB,
    ]);
    await sameBytes(dst, repo, blob, seed);
  });

  it("control: with plain rules an 8 MiB PATCH gets GHCR's 416 and the push fails", async () => {
    const e = await emulated({ emulate: "ghcr" });
    const dst = client({ chunkSize: 8 * MiB, retries: 0 });
    const repo = { registry: e.host, repository: uniqueRepo("ghcr-plain") };
    const blob = await seededBlob(`${repo.repository}/blob`, 9 * MiB);
    const err = await pushBlob(dst, repo, blob.desc, blob.open).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).status).toBe(416);
    expect((err as RegistryError).code).toBe("REQUESTED_RANGE_NOT_SATISFIABLE");
    const seen = uploadsSeen(e.proxy.requests, repo.repository);
    expect(seen.flatMap((s) => s.patches)).toEqual([8 * MiB]);
    expect(await dst.headBlob(repo, blob.desc.digest)).toBeUndefined();
  });
});

describe("Google Artifact Registry rules against ferry serve --emulate gar", () => {
  it("a 70 MiB layer (over the 64 MiB monolithic limit, with a chunk size asked) goes up in one PUT; blob GETs follow GAR's relative 302", async () => {
    const from = await emulated({ emulate: "gar" });
    const to = await emulated({ emulate: "gar" });
    const repository = uniqueRepo("gar-src");
    const seed = `${repository}/0`;
    const layer = await seededBlob(seed, 70 * MiB);
    const image = imageOf([{ blob: layer, diffId: layer.desc.digest }], {
      os: "linux",
      architecture: "amd64",
    });
    const srcGar = client({ registryKinds: { [from.host]: "gar" } });
    await writeSample(
      new RegistrySink(srcGar, { registry: from.host, repository }),
      [image],
      undefined,
      "v1",
    );

    const dst = client({ registryKinds: { [to.host]: "gar" }, chunkSize: MiB });
    const repo = { registry: to.host, repository: uniqueRepo("gar") };
    const report = await new TransferEngine().copy(
      new RegistrySource(srcGar, { registry: from.host, repository, tag: "v1" }),
      new RegistrySink(dst, repo),
      { tags: ["v1"] },
    );
    expect(report.digest).toBe(image.manifest.digest);

    for (const e of [from, to]) expect(e.proxy.requests.filter((r) => r.method === "PATCH")).toEqual([]);
    const seen = uploadsSeen(to.proxy.requests, repo.repository);
    expect(uploadOf(seen, layer.desc.digest)).toMatchObject({ patches: [], put: { body: 70 * MiB } });
    // The source answered the layer's GET with a redirect, and served it at the relative Location.
    const gets = from.log.filter((l) => l.includes(`"GET /v2/${repository}/blobs/${layer.desc.digest}`));
    expect(gets.map((l) => / (\d{3}) /.exec(l)?.[1])).toEqual(["302", "200"]);
    expect(gets[1]).toContain(`${layer.desc.digest}?download"`);
    await sameBytes(dst, repo, layer, seed);
  });

  it("control: with plain rules the 70 MiB blob is sent as a PATCH, refused with 405, once", async () => {
    const e = await emulated({ emulate: "gar" });
    const dst = client({});
    const repo = { registry: e.host, repository: uniqueRepo("gar-plain") };
    const blob = await seededBlob(`${repo.repository}/blob`, 70 * MiB);
    const err = await pushBlob(dst, repo, blob.desc, blob.open).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).status).toBe(405);
    expect((err as RegistryError).code).toBe("UNSUPPORTED");
    expect(uploadsSeen(e.proxy.requests, repo.repository).flatMap((s) => s.patches)).toEqual([70 * MiB]);
  });
});

describe("a stream compressed on the way (--compress) to a monolithic-only registry", () => {
  it("is refused with one clear error before any request: a PUT must name the digest first", async () => {
    const e = await emulated({ emulate: "gar" });
    const dst = client({ registryKinds: { [e.host]: "gar" } });
    const repo = { registry: e.host, repository: uniqueRepo("gar-stream") };
    const err = await pushBlobStream(
      dst,
      repo,
      "application/vnd.oci.image.layer.v1.tar+gzip",
      Readable.from([Buffer.from("x")]),
    ).catch((x: unknown) => x);
    expect((err as Error).message).toMatch(/takes monolithic uploads only.*--compress/);
    expect(e.proxy.requests).toEqual([]);
  });
});

describe("OCI-Chunk-Min-Length against ferry serve --chunk-min-length", () => {
  it("chunks are raised to the registry's minimum", async () => {
    const e = await emulated({ chunkMinLength: 2 * MiB });
    const dst = client({ chunkSize: 512 * KiB });
    const repo = { registry: e.host, repository: uniqueRepo("min") };
    const seed = `${repo.repository}/blob`;
    const blob = await seededBlob(seed, 5 * MiB);
    expect(await pushBlob(dst, repo, blob.desc, blob.open)).toEqual({
      action: "uploaded",
      bytesSent: 5 * MiB,
    });
    expect(uploadOf(uploadsSeen(e.proxy.requests, repo.repository), blob.desc.digest).patches).toEqual([
      2 * MiB,
      2 * MiB,
      MiB,
    ]);
    await sameBytes(dst, repo, blob, seed);
  });
});

describe("ferry copy (the CLI) with --registry-kind and --chunk-size", () => {
  it("--registry-kind HOST=ecr --chunk-size 1MiB: parts of 5 MiB; without --registry-kind: exit 1, one line", async () => {
    const e = await emulated({ emulate: "ecr" });
    const { ref, image } = await sourceImage([12 * MiB]);
    const from = `${ref.registry}/${ref.repository}:v1`;
    const layer = image.layers[0]!.desc.digest;

    const ok = `${e.host}/${uniqueRepo("ecr-cli")}`;
    const good = await ferry([
      "copy",
      "-q",
      "--registry-kind",
      `${e.host}=ecr`,
      "--chunk-size",
      "1MiB",
      from,
      `${ok}:v1`,
    ]);
    expect(good.stderr).toBe("");
    expect(good.code).toBe(0);
    const okRepo = ok.slice(e.host.length + 1);
    expect(uploadOf(uploadsSeen(e.proxy.requests, okRepo), layer).patches).toEqual([
      5 * MiB,
      5 * MiB,
      2 * MiB,
    ]);

    const bad = `${e.host}/${uniqueRepo("ecr-cli-plain")}`;
    const refused = await ferry(["copy", "-q", "--chunk-size", "1MiB", from, `${bad}:v1`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^ferry: .*answered 400 Bad Request \(BLOB_UPLOAD_INVALID: All layer parts except the last part should be at least 5MB\)\n$/,
    );
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);
    const badRepo = bad.slice(e.host.length + 1);
    expect(uploadOf(uploadsSeen(e.proxy.requests, badRepo), layer).patches).toEqual(Array(12).fill(MiB));
    const check = client({});
    expect(await check.headManifest({ registry: e.host, repository: badRepo, tag: "v1" })).toBeUndefined();
  });

  it("--chunk-size 1MiB means PATCHes of 1 MiB for every blob: 3 for 3 MiB, 1 and a closing PUT for 300 KiB (and none without it)", async () => {
    const e = await emulated({});
    const { ref, image } = await sourceImage([3 * MiB, 300 * KiB]);
    const from = `${ref.registry}/${ref.repository}:v1`;
    const [big, small] = image.layers.map((l) => l.desc);

    const chunked = uniqueRepo("chunked");
    const r = await ferry(["copy", "-q", "--chunk-size", "1MiB", from, `${e.host}/${chunked}:v1`]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const seen = uploadsSeen(e.proxy.requests, chunked);
    expect(uploadOf(seen, big!.digest)).toMatchObject({ patches: [MiB, MiB, MiB], put: { body: 0 } });
    expect(uploadOf(seen, small!.digest)).toMatchObject({ patches: [300 * KiB], put: { body: 0 } });
    expect(uploadOf(seen, image.config.desc.digest)).toMatchObject({
      patches: [image.config.desc.size],
      put: { body: 0 },
    });
    expect(seen).toHaveLength(3);

    // The control: the same copy without --chunk-size puts every blob in one request, no PATCH.
    const whole = uniqueRepo("whole");
    expect((await ferry(["copy", "-q", from, `${e.host}/${whole}:v1`])).code).toBe(0);
    const plain = uploadsSeen(e.proxy.requests, whole);
    expect(plain).toHaveLength(3);
    for (const s of plain) expect(s.patches).toEqual([]);
    expect(uploadOf(plain, big!.digest).put!.body).toBe(3 * MiB);
  });

  it.each([
    [["--registry-kind", "127.0.0.1:5000"], /--registry-kind "127.0.0.1:5000": expected HOST=KIND/],
    [["--registry-kind", "127.0.0.1:5000=quay"], /the kind must be one of ecr, ghcr, gar, oci/],
    [["--registry-kind", "http://x=ecr"], /expected HOST=KIND/],
    [["--chunk-size", "0"], /--chunk-size "0": expected a positive size/],
    [["--chunk-size", "lots"], /--chunk-size "lots": expected a positive size/],
  ])("refuses %j with exit 2 and one line", async (flags, message) => {
    const r = await ferry(["copy", ...flags, `${regs.anon.host}/x:v1`, `${regs.anon.host}/y:v1`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});
