/**
 * Root filesystem extraction is all or nothing: the tree is built in a temporary sibling and renamed
 * into place only when every layer's stream ended cleanly (for a pull: its digest matched). Every
 * failure leaves the destination as it was and no temporary tree behind. Also: whiteout bookkeeping
 * stays linear in the number of entries (counted, not timed).
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline, Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  DestinationNotEmptyError,
  extractLayers,
  type LayerInput,
  type WorkCounters,
} from "../../../shared/archive/index.ts";
import { sha256, VerifyingStream } from "../../../shared/registry/digest.ts";
import { DigestMismatchError, TransportError } from "../../../shared/registry/errors.ts";
import { MediaType } from "../../../shared/registry/media-types.ts";
import { layer, sandbox, tree } from "../../fixtures/archive/layers.ts";
import { buildTar, gzip, type TarSpec } from "../../fixtures/archive/tar.ts";

/** A layer served as `served` but described by `genuine`'s digest, verified as a pull verifies it. */
function tampered(genuine: Buffer, served: Buffer, mediaType: string = MediaType.OciLayer): LayerInput {
  const desc = { mediaType, digest: sha256(genuine), size: genuine.length };
  return {
    desc,
    open: async () => {
      const verify = new VerifyingStream({ digest: desc.digest, size: desc.size, what: "tampered layer" });
      pipeline(Readable.from(chunks(served)), verify, () => {});
      return verify;
    },
  };
}

/** `bytes` as a layer whose descriptor matches it (a genuine layer, broken or not). */
function raw(bytes: Buffer, mediaType: string = MediaType.OciLayer): LayerInput {
  return {
    desc: { mediaType, digest: sha256(bytes), size: bytes.length },
    open: async () => Readable.from(chunks(bytes)),
  };
}

function chunks(bytes: Buffer, size = 64 * 1024): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

/** A tar over 3 MiB: 64 files of 64 KiB (incompressible, so its gzip is as large). */
async function bigTar(): Promise<Buffer> {
  const entries: TarSpec[] = [];
  for (let i = 0; i < 64; i++) entries.push({ name: `big/f${i}`, content: randomBytes(64 * 1024) });
  const tar = await buildTar(entries);
  expect(tar.length).toBeGreaterThan(3 * 1024 * 1024);
  return tar;
}

function flip(bytes: Buffer, at: number): Buffer {
  const out = Buffer.from(bytes);
  out[at] = (out[at]! + 1) % 256;
  return out;
}

describe("extractLayers is all or nothing", () => {
  it("a layer whose bytes do not match its digest leaves no directory, no temporary tree, no created parent", async () => {
    const { base } = await sandbox();
    const root = join(base, "new", "deeper", "root");
    const genuine = await buildTar([{ name: "etc/passwd", content: "root:x:0:0::/root:/bin/sh\n" }]);
    const evil = await buildTar([{ name: "etc/passwd", content: "root::0:0::/root:/bin/sh\n\n" }]);
    expect(evil.length).toBe(genuine.length); // same size: only the digest tells
    const err = await extractLayers(root, [
      await layer([{ name: "bin/sh", content: "#!" }]),
      tampered(genuine, evil),
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((err as Error).message).toMatch(/^tampered layer: content digest sha256:\w+ does not match/);
    expect(await readdir(base)).toEqual(["outside"]);
  });

  it("corrupt, truncated or non-tar layers, small and over 3 MiB, fail clearly and leave nothing", async () => {
    const { base, root } = await sandbox();
    const big = await bigTar();
    const bigGz = gzip(big);
    const small = await buildTar([{ name: "a", content: "a" }]);
    const cases: [string, LayerInput, RegExp][] = [
      [
        "big tar, header corrupted mid-way",
        raw(flip(big, 32 * (64 * 1024 + 512) + 100)),
        /corrupt or truncated tar/,
      ],
      ["big tar, first header corrupted", raw(flip(big, 0)), /corrupt or truncated tar/],
      ["big tar, truncated mid-entry", raw(big.subarray(0, big.length / 2 + 7)), /corrupt or truncated tar/],
      [
        "big gzip, truncated",
        raw(bigGz.subarray(0, Math.floor(bigGz.length / 2)), MediaType.OciLayerGzip),
        /corrupt or truncated compressed data/,
      ],
      [
        "big gzip, tampered mid-way (digest checked at the end)",
        tampered(bigGz, flip(bigGz, Math.floor(bigGz.length / 2)), MediaType.OciLayerGzip),
        /corrupt|does not match/,
      ],
      ["small non-tar data", raw(Buffer.from('{"not": "a tar"}\n'.repeat(40))), /corrupt or truncated tar/],
      [
        "small tar, tampered at the start",
        tampered(small, flip(small, 0)),
        /corrupt or truncated tar|content digest .* does not match/,
      ],
    ];
    for (const [name, bad, message] of cases) {
      const err = await extractLayers(root, [await layer([{ name: "ok", content: "1" }]), bad]).catch(
        (e: unknown) => e,
      );
      expect({ name, message: (err as Error).message }).toEqual({
        name,
        message: expect.stringMatching(message),
      });
      expect({ name, left: await readdir(base) }).toEqual({ name, left: ["outside"] });
    }
  });

  it("a network error during a layer names the layer and leaves nothing", async () => {
    const { base, root } = await sandbox();
    const broken: LayerInput = {
      desc: { mediaType: MediaType.OciLayer, digest: sha256(Buffer.from("x")), size: 4096 },
      what: "app:v1 layer 1/1",
      open: async () =>
        new Readable({
          read() {
            this.destroy(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
          },
        }),
    };
    const err = await extractLayers(root, [broken]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as Error).message).toBe("app:v1 layer 1/1: ECONNRESET: socket hang up");
    expect(await readdir(base)).toEqual(["outside"]);
  });

  it("an existing empty directory is replaced only on success (its mode kept); on failure it stays as it was", async () => {
    const { base, root } = await sandbox();
    await mkdir(root);
    await chmod(root, 0o750);
    const before = await stat(root);
    const genuine = await buildTar([{ name: "f", content: "genuine" }]);
    await expect(extractLayers(root, [tampered(genuine, flip(genuine, 600))])).rejects.toThrow(
      DigestMismatchError,
    );
    const after = await stat(root);
    expect([after.ino, after.mode, after.mtimeMs]).toEqual([before.ino, before.mode, before.mtimeMs]);
    expect(await readdir(root)).toEqual([]);
    expect((await readdir(base)).sort()).toEqual(["outside", "root"]);

    await extractLayers(root, [raw(genuine)]);
    expect(await readFile(join(root, "f"), "utf8")).toBe("genuine");
    expect((await stat(root)).mode & 0o7777).toBe(0o750);
    expect((await readdir(base)).sort()).toEqual(["outside", "root"]);
  });

  it("a non-empty directory or a file is refused before any layer is opened, and left untouched", async () => {
    const { base, root } = await sandbox();
    let opened = 0;
    const counting: LayerInput = {
      ...(await layer([{ name: "f", content: "new" }])),
      open: async () => {
        opened++;
        return Readable.from([]);
      },
    };
    await mkdir(root);
    await writeFile(join(root, "keep"), "mine");
    const before = await stat(join(root, "keep"));
    const err = await extractLayers(root, [counting]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DestinationNotEmptyError);
    expect((err as Error).message).toBe(
      `${root}: exists and is not empty (rootfs: unpacks into a new or empty directory)`,
    );
    expect(await tree(root)).toEqual(["keep"]);
    expect(await readFile(join(root, "keep"), "utf8")).toBe("mine");
    expect((await stat(join(root, "keep"))).mtimeMs).toBe(before.mtimeMs);

    const file = join(base, "file");
    await writeFile(file, "a file");
    await expect(extractLayers(file, [counting])).rejects.toThrow(
      new DestinationNotEmptyError(`${file}: exists and is not a directory`, file),
    );
    expect(await readFile(file, "utf8")).toBe("a file");
    expect(opened).toBe(0);
    expect((await readdir(base)).sort()).toEqual(["file", "outside", "root"]);
  });

  it("a symlink to an empty directory: the directory gets the tree, the link stays a link", async () => {
    const { base, outside } = await sandbox();
    const link = join(base, "link");
    await symlink(outside, link);
    await extractLayers(link, [await layer([{ name: "f", content: "through the link" }])]);
    expect(await readFile(join(outside, "f"), "utf8")).toBe("through the link");
    expect((await readdir(base)).sort()).toEqual(["link", "outside"]);
  });

  it("an abort mid-layer rejects with the signal's reason and removes the temporary tree", async () => {
    const { base, root } = await sandbox();
    const first = await buildTar([{ name: "written", content: "before the abort" }]);
    const ac = new AbortController();
    const seen: string[] = [];
    let reads = 0;
    const endless: LayerInput = {
      desc: { mediaType: MediaType.OciLayer, digest: sha256(first), size: first.length * 2 },
      open: async () =>
        new Readable({
          read() {
            reads++;
            // first the entry (without the end-of-archive blocks), then, asked for more, the abort
            if (reads === 1) this.push(first.subarray(0, 1024));
            else if (reads === 2) {
              readdir(base).then((names) => {
                seen.push(...names);
                ac.abort(new Error("stopped by the test"));
              });
            }
          },
        }),
    };
    const err = await extractLayers(root, [endless], { signal: ac.signal }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("stopped by the test");
    expect(seen.sort()).toEqual([expect.stringMatching(/^\.ferry-rootfs-[0-9a-f]+$/), "outside"]);
    expect(await readdir(base)).toEqual(["outside"]);
  });
});

describe("whiteouts cost work linear in the entries", () => {
  /** n directories with a file and a subdirectory, then whiteouts of both, and opaque markers on half. */
  async function whiteouts(n: number) {
    const { root } = await sandbox();
    const first: TarSpec[] = [];
    const second: TarSpec[] = [];
    for (let i = 0; i < n; i++) {
      first.push(
        { name: `d${i}/`, type: "directory" },
        { name: `d${i}/f`, content: "x" },
        { name: `d${i}/sub/`, type: "directory" },
      );
      second.push({ name: `d${i}/.wh.f` }, { name: `d${i}/.wh.sub` });
      if (i % 2 === 0) second.push({ name: `d${i}/.wh..wh..opq` }, { name: `d${i}/new`, content: "z" });
    }
    const counters: WorkCounters = { indexVisits: 0, fsCalls: 0 };
    const summary = await extractLayers(root, [await layer(first, "none"), await layer(second, "none")], {
      counters,
    });
    return { counters, summary, entries: first.length + second.length, root };
  }

  it("index visits and filesystem calls per entry stay bounded as the layer grows", async () => {
    const small = await whiteouts(200);
    const large = await whiteouts(800);
    // the whiteouts were applied: only the directories (and the new files of the opaque ones) remain
    expect(large.summary.whiteouts).toBe(800 * 2 + 400);
    const listing = await tree(large.root);
    expect(listing).toHaveLength(800 + 400);
    expect(listing.filter((p) => p.endsWith("/f") || p.includes("sub"))).toEqual([]);
    for (const run of [small, large]) {
      // a fixed budget per entry: a re-scan of what earlier layers created, per whiteout, is n²
      expect(run.counters.indexVisits).toBeLessThan(4 * run.entries);
      expect(run.counters.fsCalls).toBeLessThan(3 * run.entries);
    }
    // and 4x the entries costs (about) 4x the work
    expect(large.counters.indexVisits / small.counters.indexVisits).toBeLessThan(4.4);
    expect(large.counters.fsCalls / small.counters.fsCalls).toBeLessThan(4.4);
  });
});
