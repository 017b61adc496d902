/**
 * Interop: the real skopeo pushes to and pulls from `ferry serve` (plain HTTP, so TLS
 * verification is off), and the manifests and digests come back unchanged.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import bcrypt from "bcryptjs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithSkopeo, SKOPEO } from "../../helpers/skopeo.ts";
import { header, sha256, startTestRegistry, type TestRegistry } from "./helpers.ts";
import { LayoutBuilder, noise, readLayoutRef } from "./oci-layout.ts";

const run = promisify(execFile);

let work: string;
let reg: TestRegistry;

async function skopeo(...args: string[]): Promise<string> {
  const policy = join(work, "policy.json");
  try {
    const { stdout } = await run(SKOPEO, ["--policy", policy, ...args], {
      env: { ...process.env, REGISTRY_AUTH_FILE: join(work, "auth.json"), TMPDIR: work },
      timeout: 30_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`skopeo ${args.join(" ")} failed: ${e.stderr ?? e.message}`);
  }
}

const push = (src: string, dest: string, ...extra: string[]) =>
  skopeo("copy", "--dest-tls-verify=false", ...extra, src, dest);
const pull = (src: string, dest: string, ...extra: string[]) =>
  skopeo("copy", "--src-tls-verify=false", ...extra, src, dest);
const inspectRaw = (ref: string) => skopeo("inspect", "--raw", "--tls-verify=false", ref);

describeWithSkopeo("ferry serve: interop with skopeo", () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "ferry-serve-skopeo-"));
    await writeFile(
      join(work, "policy.json"),
      JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }),
    );
    await writeFile(join(work, "auth.json"), JSON.stringify({ auths: {} }));
    reg = await startTestRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("copies an image with gzip layers in and out, byte for byte", async () => {
    const src = new LayoutBuilder(join(work, "simple-src"));
    const image = await src.image({
      layers: [
        { files: { "etc/hello.txt": "hello from ferry\n" }, gzip: true },
        { files: { "usr/share/data.bin": noise(50_000, 1) }, gzip: true },
      ],
    });
    src.tag(image.descriptor, "v1");
    await src.write();

    const ref = `docker://${reg.registry.host}/serve/simple:v1`;
    await push(`oci:${src.dir}:v1`, ref);
    const raw = await inspectRaw(ref);
    expect(Buffer.from(raw).equals(image.bytes)).toBe(true);
    const head = await reg.api("HEAD", "/v2/serve/simple/manifests/v1");
    expect(header(head, "docker-content-digest")).toBe(image.descriptor.digest);

    const dst = join(work, "simple-dst");
    await pull(ref, `oci:${dst}:v1`);
    const copied = await readLayoutRef(dst, "v1");
    expect(copied?.digest).toBe(image.descriptor.digest);
    const manifest = JSON.parse(image.bytes.toString()) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
      const data = await readFile(join(dst, "blobs", "sha256", d.slice(7)));
      expect(sha256(data)).toBe(d);
    }
    // registry to registry on the same server: skopeo mounts the blobs across repositories
    const copyRef = `docker://${reg.registry.host}/serve/simple-copy:v1`;
    await skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", ref, copyRef);
    expect(Buffer.from(await inspectRaw(copyRef)).equals(image.bytes)).toBe(true);
    // the inspect summary works too (it reads the config blob)
    const summary = JSON.parse(await skopeo("inspect", "--tls-verify=false", ref)) as { Digest: string };
    expect(summary.Digest).toBe(image.descriptor.digest);
  });

  it("keeps an uncompressed layer uncompressed with --preserve-digests", async () => {
    const src = new LayoutBuilder(join(work, "plain-src"));
    const image = await src.image({ layers: [{ files: { "plain.txt": "not compressed\n" }, gzip: false }] });
    src.tag(image.descriptor, "v1");
    await src.write();
    const ref = `docker://${reg.registry.host}/serve/plain:v1`;
    await push(`oci:${src.dir}:v1`, ref, "--preserve-digests");
    expect(Buffer.from(await inspectRaw(ref)).equals(image.bytes)).toBe(true);
    const dst = join(work, "plain-dst");
    await pull(ref, `oci:${dst}:v1`, "--preserve-digests");
    expect((await readLayoutRef(dst, "v1"))?.digest).toBe(image.descriptor.digest);
  });

  it("copies a multi-platform index with --all", async () => {
    const src = new LayoutBuilder(join(work, "multi-src"));
    const amd = await src.image({
      arch: "amd64",
      layers: [{ files: { "arch.txt": "amd64\n" }, gzip: true }],
    });
    const arm = await src.image({
      arch: "arm64",
      layers: [{ files: { "arch.txt": "arm64\n" }, gzip: true }],
    });
    const index = await src.index([amd.descriptor, arm.descriptor]);
    src.tag(index.descriptor, "multi");
    await src.write();

    const ref = `docker://${reg.registry.host}/serve/multi:multi`;
    await push(`oci:${src.dir}:multi`, ref, "--all");
    expect(Buffer.from(await inspectRaw(ref)).equals(index.bytes)).toBe(true);
    for (const child of [amd, arm]) {
      const r = await reg.api("GET", `/v2/serve/multi/manifests/${child.descriptor.digest}`);
      expect(r.body.equals(child.bytes)).toBe(true);
    }
    const dst = join(work, "multi-dst");
    await pull(ref, `oci:${dst}:multi`, "--all");
    expect((await readLayoutRef(dst, "multi"))?.digest).toBe(index.descriptor.digest);
    for (const child of [amd, arm]) {
      const data = await readFile(join(dst, "blobs", "sha256", child.descriptor.digest.slice(7)));
      expect(data.equals(child.bytes)).toBe(true);
    }
  });

  it("pushes and pulls an 8 MiB layer", async () => {
    const src = new LayoutBuilder(join(work, "big-src"));
    const image = await src.image({
      layers: [{ files: { "big.bin": noise(8 * 1024 * 1024, 99) }, gzip: true }],
    });
    src.tag(image.descriptor, "big");
    await src.write();
    const ref = `docker://${reg.registry.host}/serve/big:big`;
    await push(`oci:${src.dir}:big`, ref);
    const dst = join(work, "big-dst");
    await pull(ref, `oci:${dst}:big`);
    expect((await readLayoutRef(dst, "big"))?.digest).toBe(image.descriptor.digest);
    const layer = (JSON.parse(image.bytes.toString()) as { layers: { digest: string; size: number }[] })
      .layers[0]!;
    expect(layer.size).toBeGreaterThan(8 * 1024 * 1024);
    const data = await readFile(join(dst, "blobs", "sha256", layer.digest.slice(7)));
    expect(sha256(data)).toBe(layer.digest);
  });

  it("pushes with basic auth credentials, and is refused without", async () => {
    const hash = bcrypt.hashSync("pw", 4).replace(/^\$2b\$/, "$2y$");
    await writeFile(join(work, "htpasswd"), `ferry:${hash}\n`);
    const authed = await startTestRegistry({ htpasswd: join(work, "htpasswd") });
    try {
      const src = new LayoutBuilder(join(work, "auth-src"));
      const image = await src.image({ layers: [{ files: { "a.txt": "auth\n" }, gzip: true }] });
      src.tag(image.descriptor, "v1");
      await src.write();
      const ref = `docker://${authed.registry.host}/serve/auth:v1`;
      await expect(push(`oci:${src.dir}:v1`, ref)).rejects.toThrow(/unauthorized|authentication required/i);
      await push(`oci:${src.dir}:v1`, ref, "--dest-creds", "ferry:pw");
      const raw = await skopeo("inspect", "--raw", "--tls-verify=false", "--creds", "ferry:pw", ref);
      expect(Buffer.from(raw).equals(image.bytes)).toBe(true);
    } finally {
      await authed.stop();
    }
  });
});
