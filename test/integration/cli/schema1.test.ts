/**
 * Docker schema 1 from a small registry that signs the manifest again on every GET, as distribution
 * did: the bytes change from read to read, the digest it reports (Docker-Content-Digest, over the
 * payload without signatures) does not. ferry shows that digest, checks it, and refuses to copy.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sha256 } from "../../../shared/registry/digest.ts";
import { MediaType } from "../../../shared/registry/media-types.ts";
import { ferry } from "../../helpers/ferry-cli.ts";
import { hostileServer } from "../../helpers/hostile.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { schema1Image } from "../../helpers/schema1.ts";

const regs = registries();
const anon = clientFor(regs.anon);
const image = schema1Image("old/app", "1.0", [sha256("layer a"), sha256("layer b")]);
/** Every manifest body the server sent, in order. */
const served: Buffer[] = [];

const legacy = await hostileServer((r, res) => {
  if (r.url === "/v2/") return res.writeHead(200).end("{}");
  const m = /^\/v2\/(old|liar)\/app\/manifests\/([^/?]+)$/.exec(r.url);
  if (m && (m[2] === "1.0" || m[2] === image.digest)) {
    const body = image.sign();
    const headers = {
      "content-type": MediaType.DockerSchema1Signed,
      "content-length": String(body.length),
      // the liar reports a digest that is not the payload's
      "docker-content-digest": m[1] === "liar" ? sha256("something else") : image.digest,
    };
    if (r.method === "HEAD") return res.writeHead(200, headers).end();
    served.push(body);
    return res.writeHead(200, headers).end(body);
  }
  res
    .writeHead(404, { "content-type": "application/json" })
    .end(JSON.stringify({ errors: [{ code: "NOT_FOUND", message: "not here" }] }));
});
const work = mkdtempSync(join(tmpdir(), "ferry-schema1-"));
afterAll(async () => {
  await legacy.close();
  await anon.close();
  rmSync(work, { recursive: true, force: true });
});

const src = `${legacy.host}/old/app:1.0`;

describe("Docker schema 1", () => {
  it("the registry re-signs it on every read: the bytes differ, and none hashes to the digest", async () => {
    const before = served.length;
    for (let i = 0; i < 2; i++) expect((await ferry(["inspect", "--raw", src])).code).toBe(0);
    const [a, b] = served.slice(before);
    expect(a && b && !a.equals(b)).toBe(true);
    expect([sha256(a!), sha256(b!)]).not.toContain(image.digest);
  });

  it("ferry inspect shows the registry's digest and says it is schema 1", async () => {
    const out = await ferry(["inspect", src]);
    expect(out.stderr).toBe("");
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(`  digest     ${image.digest}\n`);
    expect(out.stdout).toContain(`  mediaType  ${MediaType.DockerSchema1Signed}\n`);
    expect(out.stdout).toMatch(/note {7}Docker schema 1 \(deprecated\).*ferry cannot copy/);
    expect(out.stdout).toContain("size       unknown in 2 layer(s)");
  });

  it("ferry inspect --json too, and by digest (checked against the payload)", async () => {
    for (const ref of [src, `${legacy.host}/old/app@${image.digest}`]) {
      const out = await ferry(["inspect", "--json", ref]);
      expect(out.stderr).toBe("");
      expect(out.code).toBe(0);
      const json = JSON.parse(out.stdout) as Record<string, unknown>;
      expect(json.digest).toBe(image.digest);
      expect(json.mediaType).toBe(MediaType.DockerSchema1Signed);
      expect(json.note).toMatch(/^Docker schema 1/);
      expect(json.size).toBeUndefined();
      expect(json.layers).toEqual([
        { digest: sha256("layer a"), mediaType: MediaType.DockerLayerGzip, size: -1 },
        { digest: sha256("layer b"), mediaType: MediaType.DockerLayerGzip, size: -1 },
      ]);
    }
  });

  it("a Docker-Content-Digest that is not the payload's is an error naming the image", async () => {
    const out = await ferry(["inspect", `${legacy.host}/liar/app:1.0`]);
    expect(out.code).toBe(1);
    expect(out.stdout).toBe("");
    expect(out.stderr.trim().split("\n")).toHaveLength(1);
    expect(out.stderr).toContain(`${legacy.host}/liar/app:1.0`);
    expect(out.stderr).toContain(
      `content digest ${image.digest} does not match expected ${sha256("something else")}`,
    );
  });

  it("ferry copy refuses with exit 1 and one line naming the image; nothing reaches the destination", async () => {
    const dst = { registry: regs.anon.host, repository: uniqueRepo("schema1") };
    const before = legacy.seen.length;
    const out = await ferry(["copy", `docker://${src}`, `docker://${dst.registry}/${dst.repository}:1.0`]);
    expect(out.code).toBe(1);
    expect(out.stdout).toBe("");
    const lines = out.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${src} is a Docker schema 1 manifest`);
    expect(lines[0]).toContain("re-signed on every read");
    expect(lines[0]).toContain("convert the image");
    expect(lines[0]).not.toMatch(/\bat \S+:\d+/); // no stack trace
    expect(await anon.headManifest({ ...dst, tag: "1.0" })).toBeUndefined();
    const blobReads = legacy.seen.slice(before).filter((r) => r.url.includes("/blobs/"));
    expect(legacy.seen.length).toBeGreaterThan(before);
    expect(blobReads).toEqual([]);
  });

  it("ferry pull refuses it too and leaves no output behind", async () => {
    // (oci: is left out: a failed pull into a new OCI layout leaves an empty layout today, whatever the cause)
    for (const dest of [`docker-archive:${join(work, "image.tar")}`, `rootfs:${join(work, "rootfs")}`]) {
      const out = await ferry(["pull", src, dest]);
      expect(out.code).toBe(1);
      expect(out.stderr.trim().split("\n")).toEqual([
        expect.stringContaining(`${src} is a Docker schema 1 manifest`),
      ]);
    }
    expect(existsSync(join(work, "image.tar"))).toBe(false);
    expect(existsSync(join(work, "rootfs"))).toBe(false);
  });
});
