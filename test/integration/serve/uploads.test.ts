import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytes, header, sha256, startTestRegistry, type TestRegistry } from "./helpers.ts";

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startTestRegistry();
});
afterAll(async () => {
  await reg.stop();
});

function blobFile(digest: string): string {
  const hex = digest.slice("sha256:".length);
  return join(reg.root, "blobs", "sha256", hex.slice(0, 2), hex);
}

async function startUpload(name: string): Promise<string> {
  const r = await reg.api("POST", `/v2/${name}/blobs/uploads/`);
  expect(r.status).toBe(202);
  expect(header(r, "range")).toBe("0-0");
  expect(header(r, "docker-upload-uuid")).toMatch(/^[0-9a-f-]{36}$/);
  const location = header(r, "location")!;
  expect(location).toBe(`/v2/${name}/blobs/uploads/${header(r, "docker-upload-uuid")}`);
  return location;
}

async function getBlob(name: string, digest: string): Promise<Buffer> {
  const r = await reg.api("GET", `/v2/${name}/blobs/${digest}`);
  expect(r.status).toBe(200);
  return r.body;
}

describe("ferry serve: ping", () => {
  it("answers GET /v2/ with {} and the API version header", async () => {
    const r = await reg.api("GET", "/v2/");
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({});
    expect(header(r, "docker-distribution-api-version")).toBe("registry/2.0");
  });
});

describe("ferry serve: blob uploads", () => {
  it("accepts a monolithic POST ?digest= upload", async () => {
    const data = bytes(70_000, 7);
    const digest = sha256(data);
    const r = await reg.api("POST", `/v2/mono/blobs/uploads/?digest=${digest}`, { body: data });
    expect(r.status).toBe(201);
    expect(header(r, "location")).toBe(`/v2/mono/blobs/${digest}`);
    expect(header(r, "docker-content-digest")).toBe(digest);
    expect((await getBlob("mono", digest)).equals(data)).toBe(true);
  });

  it("accepts POST then PUT ?digest= with the whole body", async () => {
    const data = bytes(12_345, 3);
    const location = await startUpload("put-mono");
    const r = await reg.api("PUT", `${location}?digest=${sha256(data)}`, { body: data });
    expect(r.status).toBe(201);
    expect((await getBlob("put-mono", sha256(data))).equals(data)).toBe(true);
  });

  it.each([1, 1000, 4096, 65_536, 99_999])("accepts chunked PATCHes of %i bytes", async (chunk) => {
    const data = bytes(100_000, chunk);
    const digest = sha256(data);
    let location = await startUpload("chunked");
    for (let start = 0; start < data.length; start += chunk) {
      const piece = data.subarray(start, Math.min(start + chunk, data.length));
      const end = start + piece.length - 1;
      if (chunk === 1 && start > 50) {
        // one-byte chunks for the whole blob would be slow: send the rest in one go
        const rest = data.subarray(start);
        const r = await reg.api("PATCH", location, {
          body: rest,
          headers: {
            "content-range": `${start}-${data.length - 1}`,
            "content-type": "application/octet-stream",
          },
        });
        expect(r.status).toBe(202);
        location = header(r, "location")!;
        break;
      }
      const r = await reg.api("PATCH", location, {
        body: piece,
        headers: { "content-range": `${start}-${end}`, "content-type": "application/octet-stream" },
      });
      expect(r.status).toBe(202);
      expect(header(r, "range")).toBe(`0-${end}`);
      location = header(r, "location")!;
    }
    const status = await reg.api("GET", location);
    expect(status.status).toBe(204);
    expect(header(status, "range")).toBe(`0-${data.length - 1}`);
    const done = await reg.api("PUT", `${location}?digest=${digest}`);
    expect(done.status).toBe(201);
    expect(header(done, "docker-content-digest")).toBe(digest);
    expect((await getBlob("chunked", digest)).equals(data)).toBe(true);
  });

  it("accepts a streamed PATCH (chunked transfer encoding, no Content-Range) and a final chunk on PUT", async () => {
    const data = bytes(300_000, 11);
    const digest = sha256(data);
    const location = await startUpload("streamed");
    async function* body() {
      for (let i = 0; i < 200_000; i += 10_000) yield data.subarray(i, i + 10_000);
    }
    const r = await reg.api("PATCH", location, { body: body() });
    expect(r.status).toBe(202);
    expect(header(r, "range")).toBe("0-199999");
    const done = await reg.api("PUT", `${location}?digest=${digest}`, {
      body: data.subarray(200_000),
      headers: { "content-range": `200000-${data.length - 1}` },
    });
    expect(done.status).toBe(201);
    expect((await getBlob("streamed", digest)).equals(data)).toBe(true);
  });

  it("answers 416 with the current Range to an out-of-order chunk, and the session survives", async () => {
    const data = bytes(3000, 5);
    const location = await startUpload("ooo");
    expect(
      (
        await reg.api("PATCH", location, {
          body: data.subarray(0, 1000),
          headers: { "content-range": "0-999" },
        })
      ).status,
    ).toBe(202);
    const skip = await reg.api("PATCH", location, {
      body: data.subarray(2000),
      headers: { "content-range": "2000-2999" },
    });
    expect(skip.status).toBe(416);
    expect(header(skip, "range")).toBe("0-999");
    expect(skip.json().errors[0].code).toBe("BLOB_UPLOAD_INVALID");
    const again = await reg.api("PATCH", location, {
      body: data.subarray(0, 1000),
      headers: { "content-range": "0-999" },
    });
    expect(again.status).toBe(416);
    const rest = await reg.api("PATCH", location, {
      body: data.subarray(1000),
      headers: { "content-range": "1000-2999" },
    });
    expect(rest.status).toBe(202);
    expect((await reg.api("PUT", `${location}?digest=${sha256(data)}`)).status).toBe(201);
  });

  it("refuses a chunk whose Content-Length disagrees with its Content-Range", async () => {
    const location = await startUpload("sizes");
    const r = await reg.api("PATCH", location, {
      body: Buffer.alloc(10),
      headers: { "content-range": "0-19" },
    });
    expect(r.status).toBe(400);
    expect(r.json().errors[0].code).toBe("SIZE_INVALID");
    expect(header(await reg.api("GET", location), "range")).toBe("0-0");

    // chunked transfer encoding (no Content-Length): the length is checked after reading
    const ok = await reg.api("PATCH", location, {
      body: Buffer.alloc(5, 1),
      headers: { "content-range": "0-4" },
    });
    expect(ok.status).toBe(202);
    for (const size of [20, 3]) {
      async function* body() {
        yield Buffer.alloc(size, 2);
      }
      const wrong = await reg.api("PATCH", location, { body: body(), headers: { "content-range": "5-14" } });
      expect(wrong.status).toBe(400);
      expect(wrong.json().errors[0].code).toBe("SIZE_INVALID");
      expect(header(await reg.api("GET", location), "range")).toBe("0-4");
    }
    const done = await reg.api("PUT", `${location}?digest=${sha256(Buffer.alloc(5, 1))}`);
    expect(done.status).toBe(201);
  });

  it("rejects a wrong digest with DIGEST_INVALID, discards the data, stores nothing under either digest", async () => {
    const data = bytes(5000, 9);
    const wrong = sha256("something else");
    const location = await startUpload("mismatch");
    expect((await reg.api("PATCH", location, { body: data })).status).toBe(202);
    const r = await reg.api("PUT", `${location}?digest=${wrong}`);
    expect(r.status).toBe(400);
    expect(r.json().errors[0].code).toBe("DIGEST_INVALID");
    expect(existsSync(blobFile(wrong))).toBe(false);
    expect(existsSync(blobFile(sha256(data)))).toBe(false);
    expect((await reg.api("HEAD", `/v2/mismatch/blobs/${wrong}`)).status).toBe(404);
    expect((await reg.api("GET", location)).status).toBe(404);

    const mono = await reg.api("POST", `/v2/mismatch/blobs/uploads/?digest=${wrong}`, { body: data });
    expect(mono.status).toBe(400);
    expect(mono.json().errors[0].code).toBe("DIGEST_INVALID");
    expect(existsSync(blobFile(wrong))).toBe(false);
    expect(await readdir(join(reg.root, "tmp"))).toEqual([]);
  });

  it("refuses PUT without a valid digest", async () => {
    const location = await startUpload("nodigest");
    const r = await reg.api("PUT", location);
    expect(r.status).toBe(400);
    expect(r.json().errors[0].code).toBe("DIGEST_INVALID");
    const bad = await reg.api("PUT", `${location}?digest=sha256:1234`);
    expect(bad.json().errors[0].code).toBe("DIGEST_INVALID");
  });

  it("answers BLOB_UPLOAD_UNKNOWN for unknown, foreign-repository and cancelled sessions", async () => {
    const unknown = await reg.api("GET", "/v2/x/blobs/uploads/00000000-0000-4000-8000-000000000000");
    expect(unknown.status).toBe(404);
    expect(unknown.json().errors[0].code).toBe("BLOB_UPLOAD_UNKNOWN");
    expect((await reg.api("PATCH", "/v2/x/blobs/uploads/not-a-uuid", { body: "x" })).status).toBe(404);

    const location = await startUpload("cancel");
    const uuid = location.split("/").pop();
    expect((await reg.api("GET", `/v2/other/blobs/uploads/${uuid}`)).status).toBe(404);
    expect((await reg.api("DELETE", location)).status).toBe(204);
    expect((await reg.api("GET", location)).status).toBe(404);
    expect(existsSync(join(reg.root, "uploads", uuid!))).toBe(false);
  });

  it("keeps one copy per digest and survives concurrent uploads of the same blob", async () => {
    const data = bytes(200_000, 21);
    const digest = sha256(data);
    const names = ["conc/a", "conc/b", "conc/c", "conc/d"];
    const results = await Promise.all(
      names.map(async (name) => {
        const location = await startUpload(name);
        await reg.api("PATCH", location, { body: data });
        return reg.api("PUT", `${location}?digest=${digest}`);
      }),
    );
    expect(results.map((r) => r.status)).toEqual([201, 201, 201, 201]);
    for (const name of names) expect((await getBlob(name, digest)).equals(data)).toBe(true);
    expect(await readdir(join(reg.root, "blobs", "sha256", digest.slice(7, 9)))).toEqual([digest.slice(7)]);
  });
});

describe("ferry serve: mount, blob reads and deletes", () => {
  it("mounts a blob from another repository, and falls back to a session otherwise", async () => {
    const digest = await reg.pushBlob("mount/src", bytes(4000, 31));
    const before = await reg.api("HEAD", `/v2/mount/dst/blobs/${digest}`);
    expect(before.status).toBe(404);

    const r = await reg.api("POST", `/v2/mount/dst/blobs/uploads/?mount=${digest}&from=mount/src`);
    expect(r.status).toBe(201);
    expect(header(r, "location")).toBe(`/v2/mount/dst/blobs/${digest}`);
    expect(header(r, "docker-content-digest")).toBe(digest);
    expect((await reg.api("HEAD", `/v2/mount/dst/blobs/${digest}`)).status).toBe(200);

    const missing = sha256("never pushed");
    const fallback = await reg.api("POST", `/v2/mount/dst/blobs/uploads/?mount=${missing}&from=mount/src`);
    expect(fallback.status).toBe(202);
    expect(header(fallback, "location")).toMatch(/^\/v2\/mount\/dst\/blobs\/uploads\//);
    // a blob is visible only where linked: not in a repository that never got it
    const notLinked = await reg.api(
      "POST",
      `/v2/mount/third/blobs/uploads/?mount=${digest}&from=mount/elsewhere`,
    );
    expect(notLinked.status).toBe(202);
    expect((await reg.api("HEAD", `/v2/mount/third/blobs/${digest}`)).status).toBe(404);
  });

  it("serves HEAD and single byte ranges", async () => {
    const data = bytes(10_000, 41);
    const digest = await reg.pushBlob("ranges", data);
    const head = await reg.api("HEAD", `/v2/ranges/blobs/${digest}`);
    expect(head.status).toBe(200);
    expect(header(head, "content-length")).toBe("10000");
    expect(header(head, "docker-content-digest")).toBe(digest);
    expect(head.body.length).toBe(0);

    const part = await reg.api("GET", `/v2/ranges/blobs/${digest}`, { headers: { range: "bytes=100-199" } });
    expect(part.status).toBe(206);
    expect(header(part, "content-range")).toBe("bytes 100-199/10000");
    expect(part.body.equals(data.subarray(100, 200))).toBe(true);

    const open = await reg.api("GET", `/v2/ranges/blobs/${digest}`, { headers: { range: "bytes=9990-" } });
    expect(open.body.equals(data.subarray(9990))).toBe(true);
    const suffix = await reg.api("GET", `/v2/ranges/blobs/${digest}`, { headers: { range: "bytes=-5" } });
    expect(suffix.body.equals(data.subarray(9995))).toBe(true);

    const beyond = await reg.api("GET", `/v2/ranges/blobs/${digest}`, { headers: { range: "bytes=10000-" } });
    expect(beyond.status).toBe(416);
    expect(header(beyond, "content-range")).toBe("bytes */10000");
  });

  it("answers BLOB_UNKNOWN and DIGEST_INVALID", async () => {
    const r = await reg.api("GET", `/v2/ranges/blobs/${sha256("nope")}`);
    expect(r.status).toBe(404);
    expect(r.json().errors[0].code).toBe("BLOB_UNKNOWN");
    const bad = await reg.api("GET", "/v2/ranges/blobs/sha256:xyz");
    expect(bad.status).toBe(400);
    expect(bad.json().errors[0].code).toBe("DIGEST_INVALID");
  });

  it("deletes a blob link; the blob stays visible in other repositories", async () => {
    const data = bytes(2000, 51);
    const digest = await reg.pushBlob("del/a", data);
    await reg.pushBlob("del/b", data);
    expect((await reg.api("DELETE", `/v2/del/a/blobs/${digest}`)).status).toBe(202);
    expect((await reg.api("HEAD", `/v2/del/a/blobs/${digest}`)).status).toBe(404);
    expect((await reg.api("DELETE", `/v2/del/a/blobs/${digest}`)).status).toBe(404);
    expect((await getBlob("del/b", digest)).equals(data)).toBe(true);
  });
});

describe("ferry serve: sessions across restarts and purging", () => {
  it("resumes a session after a restart, rehashing the received data", async () => {
    const own = await startTestRegistry();
    const data = bytes(50_000, 61);
    const first = await own.api("POST", "/v2/restart/blobs/uploads/");
    const location = header(first, "location")!;
    expect(
      (
        await own.api("PATCH", location, {
          body: data.subarray(0, 20_000),
          headers: { "content-range": "0-19999" },
        })
      ).status,
    ).toBe(202);
    await own.registry.close();

    const again = await startTestRegistry({ root: own.root });
    try {
      const status = await again.api("GET", location);
      expect(status.status).toBe(204);
      expect(header(status, "range")).toBe("0-19999");
      const rest = await again.api("PATCH", location, {
        body: data.subarray(20_000),
        headers: { "content-range": `20000-${data.length - 1}` },
      });
      expect(rest.status).toBe(202);
      expect((await again.api("PUT", `${location}?digest=${sha256(data)}`)).status).toBe(201);
      const blob = await again.api("GET", `/v2/restart/blobs/${sha256(data)}`);
      expect(blob.body.equals(data)).toBe(true);
    } finally {
      await again.stop();
      await own.stop().catch(() => {});
    }
  });

  it("purges sessions idle for longer than uploadMaxAgeMs, and only those", async () => {
    // The registry's clock is shifted instead of waiting: it is compared with the files' mtimes.
    let skew = 0;
    const own = await startTestRegistry({ uploadMaxAgeMs: 60_000, now: () => Date.now() + skew });
    try {
      const r = await own.api("POST", "/v2/purge/blobs/uploads/");
      const location = header(r, "location")!;
      await own.api("PATCH", location, { body: "abc" });
      const uuid = location.split("/").pop()!;
      await own.registry.purgeUploads();
      expect(existsSync(join(own.root, "uploads", uuid))).toBe(true);
      expect((await own.api("GET", location)).status).toBe(204);

      skew = 30_000;
      await own.registry.purgeUploads();
      expect(existsSync(join(own.root, "uploads", uuid))).toBe(true);
      // activity resets the age: a PATCH at +30 s, then a purge at +80 s (50 s idle) keeps it
      expect((await own.api("PATCH", location, { body: "def" })).status).toBe(202);
      skew = 80_000;
      await own.registry.purgeUploads();
      expect(header(await own.api("GET", location), "range")).toBe("0-5");

      skew = 200_000;
      await own.registry.purgeUploads();
      expect(existsSync(join(own.root, "uploads", uuid))).toBe(false);
      expect((await own.api("GET", location)).status).toBe(404);
    } finally {
      await own.stop();
    }
  });
});
