/**
 * `ferry pull <ref> rootfs:DIR` is all or nothing, through the real CLI against the real registry:
 * a fault proxy serving the right manifest but tampered layer bytes, layers that are genuinely broken
 * (corrupt tar, non-tar, truncated gzip; small and over 3 MiB), a download that breaks for good, and
 * Ctrl-C. Each ends with exit 1 and one clear line naming the image and layer — no Node warning
 * ("unsettled top-level await", exit 13), no stack trace — and DIR as it was: absent (no temporary
 * sibling, no parent created), or the same empty or non-empty directory.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../../shared/registry/digest.ts";
import { MediaType } from "../../../shared/registry/media-types.ts";
import {
  bytesBlob,
  imageOf,
  type SampleBlob,
  type SampleImage,
  tarLayer,
} from "../../../shared/sample/image.ts";
import {
  type Fault,
  type FaultProxy,
  type ProxiedRequest,
  startFaultProxy,
} from "../../helpers/fault-proxy.ts";
import { ferry } from "../../helpers/ferry-cli.ts";
import { pushSample, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { tmpDir } from "../../helpers/tmp.ts";

const regs = registries();
const PLATFORM = { os: "linux", architecture: "amd64" };
/** 80 files of 64 KiB: a tar of 5.3 MB (4 MB gzip'd); file i's header starts at i * (65536 + 512). */
const FILES = 80;
const FILE_SIZE = 64 * 1024;

interface Pushed {
  repo: string;
  tag: string;
  image: SampleImage;
}

async function push(name: string, layers: { blob: SampleBlob; diffId: string }[]): Promise<Pushed> {
  const image = imageOf(layers, PLATFORM);
  const repo = uniqueRepo(name);
  await pushSample(regs.anon, repo, [image], undefined, "v1");
  return { repo, tag: "v1", image };
}

/** A genuine layer (its digest matches) whose bytes are not a valid gzip'd or plain tar. */
function broken(bytes: Buffer, mediaType: string = MediaType.OciLayer) {
  return { blob: bytesBlob(bytes, mediaType), diffId: sha256(bytes) };
}

function flip(bytes: Buffer, at: number): Buffer {
  const out = Buffer.from(bytes);
  out[at] = (out[at]! + 1) % 256;
  return out;
}

/** Base64 of random bytes: gzip gets it to 3/4 (Huffman codes), so a flipped byte garbles what follows. */
function text(): string {
  return randomBytes((FILE_SIZE / 4) * 3).toString("base64");
}

let small: { blob: SampleBlob; diffId: string };
let bigGz: { blob: SampleBlob; diffId: string };
let bigTar: Buffer;
let good: Pushed;
let proxy: FaultProxy | undefined;

beforeAll(async () => {
  small = await tarLayer([
    { name: "etc/", type: "directory" },
    { name: "etc/motd", content: "hello\n" },
  ]);
  const entries = Array.from({ length: FILES }, (_, i) => ({ name: `big/f${i}`, content: text() }));
  bigGz = await tarLayer(entries);
  bigTar = await (async () => {
    const plain = await tarLayer(entries, false);
    const chunks: Buffer[] = [];
    for await (const c of await plain.blob.open(0)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  })();
  expect(bigGz.blob.desc.size).toBeGreaterThan(3 * 1024 * 1024);
  expect(bigTar.length).toBeGreaterThan(3 * 1024 * 1024);
  good = await push("rootfs-good", [small, bigGz]);
});

afterAll(async () => {
  await proxy?.close();
});

/** Routes the next pulls through a fault proxy applying `fault` to GETs of the big layer only. */
async function throughProxy(fault: (r: ProxiedRequest) => Fault): Promise<FaultProxy> {
  await proxy?.close();
  const hex = bigGz.blob.desc.digest.slice("sha256:".length);
  proxy = await startFaultProxy(`http://${regs.anon.host}`, (r) =>
    r.method === "GET" && r.url.includes(`/blobs/sha256:${hex}`) ? fault(r) : undefined,
  );
  return proxy;
}

/** A fresh parent directory and the DIR inside it (not created). */
function target(): { parent: string; dir: string } {
  const parent = tmpDir("ferry-cli-rootfs-");
  return { parent, dir: join(parent, "rootfs") };
}

type Result = Awaited<ReturnType<typeof ferry>>;

/** Exit 1 by itself, exactly one stderr line matching `line`, nothing of Node's, nothing on stdout. */
function expectOneClearError(res: Result, line: RegExp): void {
  expect({ code: res.code, signal: res.signal, stdout: res.stdout }).toEqual({
    code: 1,
    signal: null,
    stdout: "",
  });
  const lines = res.stderr.trimEnd().split("\n");
  expect(lines).toEqual([expect.stringMatching(line)]);
  expect(res.stderr).not.toMatch(/Warning|await|\n\s+at |node:internal/);
}

const LAYER2 = String.raw`layer 2/2 \(sha256:[0-9a-f]{64}\)`;

describe("ferry pull rootfs: nothing lands unless every layer is genuine", () => {
  it("tampered layer bytes behind the right manifest: exit 1, one line, no DIR, no temporary sibling", async () => {
    const size = bigGz.blob.desc.size;
    for (const at of [size - 100, Math.floor(size / 2), 10]) {
      const p = await throughProxy(() => ({ kind: "corrupt", at }));
      const { parent, dir } = target();
      const res = await ferry(["pull", `${p.host}/${good.repo}:v1`, `rootfs:${dir}`]);
      // near the end, only the digest tells; earlier, gzip or tar breaks first (large layers used to
      // end here with exit 13 and Node's "unsettled top-level await" warning)
      expectOneClearError(
        res,
        new RegExp(
          `^ferry: ${p.host}/${good.repo}:v1: ${LAYER2}: (content digest sha256:\\w+ does not match expected|corrupt or truncated (tar|compressed data))`,
        ),
      );
      expect({ at, left: readdirSync(parent) }).toEqual({ at, left: [] });
      expect(p.injected).toBeGreaterThan(0);
    }
  });

  it("the same for a pull pinned by @sha256, into an existing empty DIR (left the same directory)", async () => {
    const p = await throughProxy(() => ({ kind: "corrupt", at: bigGz.blob.desc.size - 1 }));
    const { parent, dir } = target();
    mkdirSync(dir, { mode: 0o750 });
    const before = statSync(dir);
    const pinned = `${p.host}/${good.repo}@${good.image.manifest.digest}`;
    const res = await ferry(["pull", pinned, `rootfs:${dir}`]);
    expectOneClearError(
      res,
      new RegExp(`^ferry: ${pinned}: ${LAYER2}: content digest sha256:\\w+ does not match`),
    );
    const after = statSync(dir);
    expect([after.ino, after.mode, after.mtimeMs]).toEqual([before.ino, before.mode, before.mtimeMs]);
    expect(readdirSync(dir)).toEqual([]);
    expect(readdirSync(parent)).toEqual(["rootfs"]);

    // and without the fault, the same pull fills it
    const clean = await throughProxy(() => undefined);
    const ok = await ferry([
      "pull",
      `${clean.host}/${good.repo}@${good.image.manifest.digest}`,
      `rootfs:${dir}`,
    ]);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(readFileSync(join(dir, "etc/motd"), "utf8")).toBe("hello\n");
    expect(readdirSync(join(dir, "big"))).toHaveLength(FILES);
    expect(readdirSync(parent)).toEqual(["rootfs"]);
  });

  it("a non-empty DIR is refused before any layer is downloaded, and left byte for byte", async () => {
    const p = await throughProxy(() => undefined);
    const { parent, dir } = target();
    mkdirSync(dir);
    writeFileSync(join(dir, "mine"), "my data\n");
    const before = statSync(join(dir, "mine"));
    const res = await ferry(["pull", `${p.host}/${good.repo}:v1`, `rootfs:${dir}`]);
    expectOneClearError(
      res,
      /^ferry: \S+rootfs: exists and is not empty \(rootfs: unpacks into a new or empty directory\)$/,
    );
    expect(readdirSync(dir)).toEqual(["mine"]);
    expect(readFileSync(join(dir, "mine"), "utf8")).toBe("my data\n");
    expect(statSync(join(dir, "mine")).mtimeMs).toBe(before.mtimeMs);
    expect(readdirSync(parent)).toEqual(["rootfs"]);
    expect(p.requests.filter((r) => r.url.includes("/blobs/"))).toEqual([]);
    expect(p.requests.length).toBeGreaterThan(0);
  });

  it("genuinely broken layers (digest right), small and over 3 MiB: one line, no DIR", async () => {
    const bigGzBytes = Buffer.concat(
      await (async () => {
        const out: Buffer[] = [];
        for await (const c of await bigGz.blob.open(0)) out.push(c as Buffer);
        return out;
      })(),
    );
    const header = (i: number) => i * (FILE_SIZE + 512);
    const cases: [string, { blob: SampleBlob; diffId: string }, RegExp][] = [
      [
        "small non-tar data",
        broken(Buffer.from('{"not": "a tar"}\n'.repeat(40))),
        /corrupt or truncated tar/,
      ],
      [
        "big tar, header corrupted mid-way",
        broken(flip(bigTar, header(FILES / 2) + 100)),
        /corrupt or truncated tar/,
      ],
      ["big tar, corrupted at the start", broken(flip(bigTar, 0)), /corrupt or truncated tar/],
      [
        "big gzip, truncated",
        broken(bigGzBytes.subarray(0, Math.floor(bigGzBytes.length / 2)), MediaType.OciLayerGzip),
        /corrupt or truncated compressed data/,
      ],
      [
        "big gzip, corrupted mid-way",
        broken(flip(bigGzBytes, Math.floor(bigGzBytes.length / 2)), MediaType.OciLayerGzip),
        /corrupt or truncated (compressed data|tar)/,
      ],
    ];
    for (const [name, layer, message] of cases) {
      const img = await push("rootfs-broken", [small, layer]);
      const { parent, dir } = target();
      const ref = `${regs.anon.host}/${img.repo}:v1`;
      const res = await ferry(["pull", ref, `rootfs:${dir}`]);
      expect({ name, stderr: res.stderr }).toEqual({
        name,
        stderr: expect.stringMatching(new RegExp(`^ferry: ${ref}: ${LAYER2}: ${message.source}`)),
      });
      expectOneClearError(res, /./);
      expect({ name, left: readdirSync(parent) }).toEqual({ name, left: [] });
    }
  });

  it("a download that breaks for good names the layer; no DIR, no created parent", async () => {
    const p = await throughProxy(() => ({ kind: "reset-response", after: 0 }));
    const parent = tmpDir("ferry-cli-rootfs-");
    const dir = join(parent, "new", "rootfs");
    const res = await ferry(["pull", `${p.host}/${good.repo}:v1`, `rootfs:${dir}`]);
    expectOneClearError(res, new RegExp(`^ferry: ${p.host}/${good.repo}:v1: ${LAYER2}: `));
    expect(readdirSync(parent)).toEqual([]);
  });

  it("Ctrl-C while a layer downloads: the temporary tree is removed, exit 1, one line", async () => {
    let arrived!: () => void;
    const downloading = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const p = await throughProxy(() => {
      arrived();
      return { kind: "hang-response", after: 1024 * 1024 };
    });
    const { parent, dir } = target();
    let during: string[] = [];
    const res = await ferry(
      ["pull", `${p.host}/${good.repo}:v1`, `rootfs:${dir}`],
      {},
      {
        onSpawn: (child) => {
          void downloading.then(() => {
            during = readdirSync(parent);
            child.kill("SIGINT");
          });
        },
      },
    );
    // the tree being built was there while the layer downloaded, and is gone after
    expect(during).toEqual([expect.stringMatching(/^\.ferry-rootfs-[0-9a-f]+$/)]);
    expectOneClearError(
      res,
      new RegExp(`^ferry: ${p.host}/${good.repo}:v1: interrupted by SIGINT; ${dir} left as it was$`),
    );
    expect(readdirSync(parent)).toEqual([]);
  });
});
