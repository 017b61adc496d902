/**
 * `ferry serve` emulating other registries' upload rules (serve/emulate.ts), over raw HTTP: each rule
 * bites, and the plain registry (the control) is unchanged. The client's side — ferry obeying these
 * rules — is in ../registry/upload-rules.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EmulatedRegistry } from "../../../serve/index.ts";
import { bytes, header, type Reply, sha256, startTestRegistry, type TestRegistry } from "./helpers.ts";

const MiB = 1024 * 1024;
const OCTET = { "content-type": "application/octet-stream" };

const registries: Record<string, TestRegistry> = {};
beforeAll(async () => {
  const start = async (key: string, emulate?: EmulatedRegistry, chunkMinLength?: number) => {
    registries[key] = await startTestRegistry({
      ...(emulate ? { emulate } : {}),
      ...(chunkMinLength ? { chunkMinLength } : {}),
    });
  };
  await Promise.all([
    start("plain"),
    start("ecr", "ecr"),
    start("ghcr", "ghcr"),
    start("gar", "gar"),
    start("min", undefined, 100_000),
  ]);
});
afterAll(async () => {
  await Promise.all(Object.values(registries).map((r) => r.stop()));
});

async function session(reg: TestRegistry, name: string): Promise<{ location: string; post: Reply }> {
  const post = await reg.api("POST", `/v2/${name}/blobs/uploads/`);
  expect(post.status).toBe(202);
  return { location: header(post, "location")!, post };
}

/** PATCHes `data[start, end)` with its Content-Range. */
function patch(reg: TestRegistry, location: string, data: Buffer, start: number, end: number) {
  return reg.api("PATCH", location, {
    body: data.subarray(start, end),
    headers: { ...OCTET, "content-range": `${start}-${end - 1}` },
  });
}

/** Sends `data` in PATCHes of the given sizes, then an empty PUT ?digest=; returns every answer. */
async function upload(reg: TestRegistry, name: string, data: Buffer, sizes: number[]) {
  const { location } = await session(reg, name);
  const patches: Reply[] = [];
  let at = 0;
  for (const size of sizes) {
    patches.push(await patch(reg, location, data, at, at + size));
    at += size;
  }
  expect(at).toBe(data.length);
  const put = await reg.api("PUT", `${location}?digest=${sha256(data)}`);
  return { patches, put };
}

describe("ferry serve --emulate ecr", () => {
  it("answers PATCH with 201 and a Range stuck at the first chunk's end, and stores every byte", async () => {
    const reg = registries.ecr!;
    const data = bytes(11 * MiB, 11);
    const { patches, put } = await upload(reg, "ecr/ok", data, [5 * MiB, 5 * MiB, MiB]);
    expect(patches.map((p) => p.status)).toEqual([201, 201, 201]);
    // aws/containers-roadmap#2831: stale after the first chunk
    expect(patches.map((p) => header(p, "range"))).toEqual([
      `0-${5 * MiB - 1}`,
      `0-${5 * MiB - 1}`,
      `0-${5 * MiB - 1}`,
    ]);
    expect(put.status).toBe(201);
    const got = await reg.api("GET", `/v2/ecr/ok/blobs/${sha256(data)}`);
    expect(got.body.equals(data)).toBe(true);
  });

  it("refuses, when the upload completes, a part under 5 MiB that was not the last", async () => {
    const reg = registries.ecr!;
    const data = bytes(3 * MiB, 12);
    const { patches, put } = await upload(reg, "ecr/small", data, [MiB, MiB, MiB]);
    expect(patches.map((p) => p.status)).toEqual([201, 201, 201]);
    expect(put.status).toBe(400);
    expect(put.json().errors[0]).toMatchObject({
      code: "BLOB_UPLOAD_INVALID",
      message: "All layer parts except the last part should be at least 5MB",
    });
    expect((await reg.api("HEAD", `/v2/ecr/small/blobs/${sha256(data)}`)).status).toBe(404);
  });

  it("accepts a small upload in one small part (the last part may be any size)", async () => {
    const reg = registries.ecr!;
    const data = bytes(300_000, 13);
    const { patches, put } = await upload(reg, "ecr/one", data, [data.length]);
    expect(patches.map((p) => p.status)).toEqual([201]);
    expect(put.status).toBe(201);
  });

  it("answers a chunk restarting at byte 0 with 416 in ECR's words", async () => {
    const reg = registries.ecr!;
    const data = bytes(6 * MiB, 14);
    const { location } = await session(reg, "ecr/restart");
    expect((await patch(reg, location, data, 0, 5 * MiB)).status).toBe(201);
    const again = await patch(reg, location, data, 0, 5 * MiB);
    expect(again.status).toBe(416);
    expect(again.json().errors[0]).toEqual({
      code: "BLOB_UPLOAD_INVALID",
      message: `First byte of the layer part is 0 instead of ${5 * MiB}`,
    });
  });
});

describe("ferry serve --emulate ghcr", () => {
  it("refuses a PATCH declaring more than 4 MiB with GHCR's 416, and takes 4 MiB ones", async () => {
    const reg = registries.ghcr!;
    const data = bytes(4 * MiB + 1, 21);
    const { location } = await session(reg, "ghcr/big");
    const big = await patch(reg, location, data, 0, data.length);
    expect(big.status).toBe(416);
    expect(big.json().errors[0]).toEqual({
      code: "REQUESTED_RANGE_NOT_SATISFIABLE",
      message: "the request body is too large and exceeds the maximum permissible limit of 4.00MiB",
    });
    // nothing was stored: the same session takes the bytes in chunks of 4 MiB and 1 byte
    expect((await patch(reg, location, data, 0, 4 * MiB)).status).toBe(202);
    expect((await patch(reg, location, data, 4 * MiB, data.length)).status).toBe(202);
    expect((await reg.api("PUT", `${location}?digest=${sha256(data)}`)).status).toBe(201);
  });

  it("does not cap a monolithic PUT", async () => {
    const reg = registries.ghcr!;
    const data = bytes(5 * MiB, 22);
    const { location } = await session(reg, "ghcr/mono");
    const put = await reg.api("PUT", `${location}?digest=${sha256(data)}`, { body: data, headers: OCTET });
    expect(put.status).toBe(201);
  });
});

describe("ferry serve --emulate gar", () => {
  it("refuses every PATCH with 405, and takes the blob in one PUT", async () => {
    const reg = registries.gar!;
    const data = bytes(200_000, 31);
    const { location } = await session(reg, "gar/blob");
    const refused = await patch(reg, location, data, 0, 1000);
    expect(refused.status).toBe(405);
    expect(refused.json().errors[0].code).toBe("UNSUPPORTED");
    const put = await reg.api("PUT", `${location}?digest=${sha256(data)}`, { body: data, headers: OCTET });
    expect(put.status).toBe(201);
  });

  it("answers a blob GET with 302 and a relative Location that serves the blob (HEAD is served)", async () => {
    const reg = registries.gar!;
    const data = bytes(50_000, 32);
    const digest = await reg.pushBlob("gar/get", data);
    const first = await reg.api("GET", `/v2/gar/get/blobs/${digest}`);
    expect(first.status).toBe(302);
    const location = header(first, "location")!;
    expect(location).toBe(`/v2/gar/get/blobs/${digest}?download`);
    const second = await reg.api("GET", location);
    expect(second.status).toBe(200);
    expect(second.body.equals(data)).toBe(true);
    expect((await reg.api("HEAD", `/v2/gar/get/blobs/${digest}`)).status).toBe(200);
    // an unknown blob is a 404, not a redirect
    expect((await reg.api("GET", `/v2/gar/get/blobs/${sha256("nope")}`)).status).toBe(404);
  });
});

describe("ferry serve chunkMinLength", () => {
  it("announces OCI-Chunk-Min-Length on new sessions, and only there", async () => {
    const { post } = await session(registries.min!, "min/header");
    expect(header(post, "oci-chunk-min-length")).toBe("100000");
    const plain = await session(registries.plain!, "plain/header");
    expect(header(plain.post, "oci-chunk-min-length")).toBeUndefined();
  });

  it("refuses an upload whose non-final chunk is below the minimum; takes one whose last chunk is", async () => {
    const reg = registries.min!;
    const data = bytes(250_000, 41);
    const bad = await upload(reg, "min/bad", data, [50_000, 200_000]);
    expect(bad.patches.map((p) => p.status)).toEqual([202, 202]);
    expect(bad.put.status).toBe(400);
    expect(bad.put.json().errors[0].code).toBe("BLOB_UPLOAD_INVALID");
    expect(bad.put.json().errors[0].message).toMatch(/fewer than OCI-Chunk-Min-Length 100000/);
    const good = await upload(reg, "min/good", data, [100_000, 100_000, 50_000]);
    expect(good.put.status).toBe(201);
  });
});

describe("ferry serve without emulation (the control)", () => {
  it("answers 202 with a Range that follows the offset, takes small chunks, and serves blob GETs", async () => {
    const reg = registries.plain!;
    const data = bytes(3000, 51);
    const { patches, put } = await upload(reg, "plain/small", data, [1000, 1000, 1000]);
    expect(patches.map((p) => [p.status, header(p, "range")])).toEqual([
      [202, "0-999"],
      [202, "0-1999"],
      [202, "0-2999"],
    ]);
    expect(put.status).toBe(201);
    expect((await reg.api("GET", `/v2/plain/small/blobs/${sha256(data)}`)).status).toBe(200);
  });

  it("refuses the options it does not know", async () => {
    await expect(startTestRegistry({ emulate: "quay" as EmulatedRegistry })).rejects.toThrow(
      /emulate must be one of ecr, ghcr, gar, got quay/,
    );
    await expect(startTestRegistry({ chunkMinLength: -1 })).rejects.toThrow(/chunkMinLength must be/);
  });
});
