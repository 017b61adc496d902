import { existsSync } from "node:fs";
import { lstat, mkdir, readdir, readFile, readlink, realpath, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import * as zlib from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ArchiveError,
  ExtractLimitError,
  extractLayers,
  type LayerInput,
  UnsafePathError,
} from "../../../shared/archive/index.ts";
import { sha256 } from "../../../shared/registry/digest.ts";
import { MediaType } from "../../../shared/registry/media-types.ts";
import { layer, sandbox, tree } from "../../fixtures/archive/layers.ts";
import { buildTar, gzip, type TarSpec } from "../../fixtures/archive/tar.ts";
import { removeTmpDir, tmpDir } from "../../helpers/tmp.ts";

async function expectContained(base: string, outside: string): Promise<void> {
  expect((await readdir(base)).sort()).toEqual(["outside", "root"].filter((n) => existsSync(join(base, n))));
  expect(await readdir(outside)).toEqual([]);
}

describe("extractLayers", () => {
  it("applies whiteouts and opaque directories across layers", async () => {
    const { root } = await sandbox();
    const summary = await extractLayers(root, [
      await layer([
        { name: "etc/", type: "directory" },
        { name: "etc/a", content: "a" },
        { name: "etc/b", content: "b" },
        { name: "var/lib/", type: "directory" },
        { name: "var/lib/x", content: "x" },
        { name: "var/lib/sub/deep", content: "deep" },
        { name: "opt/keep", content: "keep" },
      ]),
      await layer([
        { name: "etc/.wh.a" },
        { name: "var/lib/w", content: "same layer, before the marker" },
        { name: "var/lib/", type: "directory" },
        { name: "var/lib/.wh..wh..opq" },
        { name: "var/lib/z", content: "same layer, after the marker" },
        { name: "etc/.wh..wh.plnk" }, // aufs metadata: ignored
      ]),
      await layer([{ name: ".wh.opt" }, { name: "new/file", content: "n" }], "none"),
    ]);
    expect(await tree(root)).toEqual([
      "etc/",
      "etc/b",
      "new/",
      "new/file",
      "var/",
      "var/lib/",
      "var/lib/w",
      "var/lib/z",
    ]);
    expect(summary).toMatchObject({ layers: 3, whiteouts: 3, files: 8, dirs: 3 });
  });

  it("creates symlinks, hardlinks, modes and mtimes; drops setuid; replaces entries", async () => {
    const { root } = await sandbox();
    const mtime = new Date("2020-05-06T07:08:09Z");
    const summary = await extractLayers(root, [
      await layer([
        { name: "bin/", type: "directory", mode: 0o750, mtime },
        { name: "bin/tool", content: "tool", mode: 0o4755, mtime },
        { name: "bin/secret", content: "s", mode: 0o600 },
        { name: "bin/alias", type: "symlink", linkname: "tool" },
        { name: "bin/hard", type: "link", linkname: "bin/tool" },
        { name: "usr/lib/", type: "directory" },
        { name: "lib", type: "symlink", linkname: "usr/lib" },
        { name: "replace/dir-to-file/", type: "directory" },
        { name: "replace/dir-to-file/inner", content: "i" },
        { name: "replace/file-to-dir", content: "f" },
        { name: "dev/null", type: "character-device" },
        { name: "run/fifo", type: "fifo" },
      ]),
      await layer([
        { name: "lib/libx.so", content: "lib through a symlink (inside the root)" },
        { name: "replace/dir-to-file", content: "now a file" },
        { name: "replace/file-to-dir/", type: "directory" },
        { name: "replace/file-to-dir/x", content: "x" },
      ]),
    ]);
    const tool = await stat(join(root, "bin/tool"));
    expect(tool.mode & 0o7777).toBe(0o755);
    expect(tool.mtime.getTime()).toBe(mtime.getTime());
    expect((await stat(join(root, "bin/secret"))).mode & 0o777).toBe(0o600);
    expect((await stat(join(root, "bin"))).mode & 0o777).toBe(0o750);
    expect((await stat(join(root, "bin"))).mtime.getTime()).toBe(mtime.getTime());
    expect(await readlink(join(root, "bin/alias"))).toBe("tool");
    expect((await stat(join(root, "bin/hard"))).ino).toBe(tool.ino);
    expect(await readFile(join(root, "usr/lib/libx.so"), "utf8")).toMatch(/through a symlink/);
    expect((await lstat(join(root, "lib"))).isSymbolicLink()).toBe(true);
    expect(await readFile(join(root, "replace/dir-to-file"), "utf8")).toBe("now a file");
    expect(await readFile(join(root, "replace/file-to-dir/x"), "utf8")).toBe("x");
    expect(existsSync(join(root, "dev/null"))).toBe(false);
    expect(summary).toMatchObject({ symlinks: 2, hardlinks: 1, skipped: 2 });
  });

  it("decompresses zstd layers (and takes the magic bytes over the media type)", async (ctx) => {
    if (!(zlib as unknown as { zstdCompressSync?: unknown }).zstdCompressSync) ctx.skip();
    const { root } = await sandbox();
    const z = await layer([{ name: "z", content: "zstd!" }], "zstd");
    const mislabelled = await layer([{ name: "g", content: "gzip labelled as plain tar" }], "gzip");
    mislabelled.desc.mediaType = MediaType.DockerLayer;
    await extractLayers(root, [z, mislabelled]);
    expect(await readFile(join(root, "z"), "utf8")).toBe("zstd!");
    expect(await readFile(join(root, "g"), "utf8")).toMatch(/gzip/);
  });

  it("refuses '..' and makes absolute names relative, writing nothing outside", async () => {
    const { base, root, outside } = await sandbox();
    for (const name of ["../escape", "../outside/x", "a/../../escape", "./../escape"]) {
      const err = await extractLayers(root, [await layer([{ name, content: "pwned" }])]).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UnsafePathError);
      expect((err as UnsafePathError).code).toBe("UNSAFE_PATH");
      expect((err as Error).message).toContain(name);
    }
    await expectContained(base, outside);
    await extractLayers(root, [await layer([{ name: "/abs/file", content: "contained" }])]);
    expect(await readFile(join(root, "abs/file"), "utf8")).toBe("contained");
    await expectContained(base, outside);
  });

  it("never writes through a symlink leading out of the root (resolved inside it, like a chroot)", async () => {
    const { base, root, outside } = await sandbox();
    const outsideReal = await realpath(outside);
    await extractLayers(root, [
      await layer([
        { name: "abs", type: "symlink", linkname: outsideReal },
        { name: "abs/pwned", content: "1" },
        { name: "rel", type: "symlink", linkname: "../../../outside" },
        { name: "rel/pwned", content: "2" },
        { name: "final", type: "symlink", linkname: join(outsideReal, "final") },
      ]),
      await layer([
        { name: "final", content: "replaces the symlink, not its target" },
        { name: "abs/.wh.pwned" },
      ]),
    ]);
    await expectContained(base, outside);
    // the absolute symlink is followed as if root were "/"
    expect(existsSync(join(root, outsideReal, "pwned"))).toBe(false); // whited out in layer 2
    expect(await readFile(join(root, "outside/pwned"), "utf8")).toBe("2"); // ".." stops at the root
    expect((await lstat(join(root, "final"))).isFile()).toBe(true);
  });

  it("refuses hardlinks to outside, and to targets not extracted yet", async () => {
    const { base, root, outside } = await sandbox();
    const secretDir = tmpDir("ferry-archive-secret-");
    await writeFile(join(secretDir, "secret"), "s3cret");
    const cases: [TarSpec[], unknown][] = [
      [[{ name: "h", type: "link", linkname: "../outside/x" }], UnsafePathError],
      [[{ name: "h", type: "link", linkname: join(secretDir, "secret") }], ArchiveError],
      [
        [
          { name: "s", type: "symlink", linkname: secretDir },
          { name: "h", type: "link", linkname: "s/secret" },
        ],
        ArchiveError,
      ],
      [
        [
          { name: "h", type: "link", linkname: "later" },
          { name: "later", content: "x" },
        ],
        ArchiveError,
      ],
      // found by the property test: a hardlink replacing the directory its own target is in
      [
        [
          { name: "d/x/y", content: "y" },
          { name: "d", type: "link", linkname: "d/x/y" },
        ],
        ArchiveError,
      ],
    ];
    for (const [entries, type] of cases) {
      const err = await extractLayers(root, [await layer(entries)]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(type);
      expect(existsSync(join(root, "h"))).toBe(false);
    }
    await expectContained(base, outside);
    expect(await readFile(join(secretDir, "secret"), "utf8")).toBe("s3cret");
    expect((await stat(join(secretDir, "secret"))).nlink).toBe(1);
  });

  it("stops a gzip bomb at maxBytes", async () => {
    const { root } = await sandbox();
    const bomb = await layer([{ name: "zeros", content: Buffer.alloc(8 * 1024 * 1024) }]);
    expect(bomb.desc.size).toBeLessThan(64 * 1024);
    const err = await extractLayers(root, [bomb], { maxBytes: 1024 * 1024 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExtractLimitError);
    expect((err as Error).message).toMatch(/exceed the 1048576-byte extraction limit/);
    expect((err as ExtractLimitError).code).toBe("EXTRACT_LIMIT");
  });

  it("reports corrupt compressed data and truncated tars clearly, leaving no directory", async () => {
    const { base, root } = await sandbox();
    const good = await buildTar([{ name: "f", content: Buffer.alloc(4096, 1) }]);
    const gz = gzip(good);
    const cut = (bytes: Buffer, mediaType: string): LayerInput => ({
      desc: { mediaType, digest: sha256(bytes), size: bytes.length },
      open: async () => Readable.from([bytes]),
    });
    await expect(
      extractLayers(root, [cut(gz.subarray(0, gz.length - 20), MediaType.OciLayerGzip)]),
    ).rejects.toThrow(/layer 0 \(sha256:[0-9a-f]+\): corrupt or truncated compressed data/);
    await expect(extractLayers(root, [cut(good.subarray(0, 1000), MediaType.OciLayer)])).rejects.toThrow(
      /corrupt or truncated tar/,
    );
    const junk = Buffer.alloc(1024, 0x41);
    await expect(extractLayers(root, [cut(junk, MediaType.OciLayer)])).rejects.toThrow(ArchiveError);
    const bz = Buffer.concat([Buffer.from("BZh91AY&SY"), Buffer.alloc(100)]);
    await expect(extractLayers(root, [cut(bz, MediaType.OciLayer)])).rejects.toThrow(
      /bzip2-compressed layers are not supported/,
    );
    expect(await readdir(base)).toEqual(["outside"]);
  });

  it("property: random entry names and links never produce anything outside the target", async () => {
    // symlink targets aim at a fixed directory outside every sandbox (and at relative escapes)
    const decoy = await realpath(tmpDir("ferry-archive-decoy-"));
    const component = fc.oneof(
      { arbitrary: fc.constantFrom("fca", "fcb"), weight: 6 },
      {
        arbitrary: fc.constantFrom("..", ".", "", ".wh.fca", ".wh..wh..opq", ".wh..", ".wh.", "fcc"),
        weight: 4,
      },
    );
    const name = fc
      .tuple(fc.boolean(), fc.array(component, { minLength: 1, maxLength: 4 }))
      .map(([abs, parts]) => `${abs ? "/" : ""}${parts.join("/")}`);
    const linkTarget = fc.oneof(
      name,
      // (no "/": were the code ever wrong, running the tests as root must not touch the real root)
      fc.constantFrom(decoy, `${decoy}/fca`, "../../outside", "../..", "../../outside/fcb", "../outside"),
    );
    const entry: fc.Arbitrary<TarSpec> = fc.oneof(
      name.map((n) => ({ name: n, content: "data" })),
      name.map((n) => ({ name: n, type: "directory" as const })),
      fc.tuple(name, linkTarget).map(([n, l]) => ({ name: n, type: "symlink" as const, linkname: l })),
      fc.tuple(name, linkTarget).map(([n, l]) => ({ name: n, type: "link" as const, linkname: l })),
    );
    // the classic attack, generated on purpose: a symlink, then an entry written through it
    const throughLink: fc.Arbitrary<TarSpec[]> = fc
      .tuple(name, linkTarget, fc.array(component, { minLength: 1, maxLength: 2 }), entry)
      .map(([n, l, rest, e]) => [
        { name: n, type: "symlink" as const, linkname: l },
        { ...e, name: [n, ...rest].join("/") },
      ]);
    const layerEntries = fc
      .array(
        fc.oneof(
          entry.map((e) => [e]),
          throughLink,
        ),
        { minLength: 1, maxLength: 6 },
      )
      .map((chunks) => chunks.flat());
    await fc.assert(
      fc.asyncProperty(fc.array(layerEntries, { minLength: 1, maxLength: 3 }), async (layers) => {
        const { base, root, outside } = await sandbox();
        await rm(decoy, { recursive: true, force: true }); // fresh for every run, so shrinking stays honest
        await mkdir(decoy);
        const inputs = await Promise.all(layers.map((l) => layer(l, "none")));
        let failed = false;
        try {
          await extractLayers(root, inputs);
        } catch (err) {
          if (!(err instanceof UnsafePathError || err instanceof ArchiveError)) throw err;
          failed = true;
        }
        expect(await readdir(outside)).toEqual([]);
        expect(await readdir(decoy)).toEqual([]);
        // all or nothing: the target exists only after a success, and no temporary tree is left
        expect((await readdir(base)).sort()).toEqual(failed ? ["outside"] : ["outside", "root"]);
        for (const n of ["fca", "fcb", "fcc"]) expect(existsSync(join("/", n))).toBe(false);
        if (failed) return removeTmpDir(base);
        // every non-symlink path under the target really is under it
        const rootReal = await realpath(root);
        for (const p of await tree(root)) {
          if (p.includes(" -> ")) continue;
          const real = await realpath(join(root, p));
          expect(real === rootReal || real.startsWith(`${rootReal}/`)).toBe(true);
        }
        removeTmpDir(base);
      }),
      { numRuns: Number(process.env.FERRY_FC_RUNS ?? 250) },
    );
  });
});
