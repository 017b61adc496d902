/** `GET|HEAD|DELETE /v2/<name>/blobs/<digest>` */
import { pipeline } from "node:stream/promises";
import { RegistryError } from "../errors.ts";
import { type Context, header, methodNotAllowed, send } from "../http.ts";
import { parseRange, requireDigest } from "../names.ts";

export async function handleBlob(ctx: Context, name: string, ref: string): Promise<void> {
  const method = ctx.req.method;
  if (method !== "GET" && method !== "HEAD" && method !== "DELETE")
    throw methodNotAllowed(["GET", "HEAD", "DELETE"]);
  const digest = requireDigest(ref);
  const { blobs } = ctx.storage;

  if (method === "DELETE") {
    if (!(await blobs.unlink(name, digest)))
      throw new RegistryError("BLOB_UNKNOWN", { detail: digest.value });
    send(ctx, 202, { "Docker-Content-Digest": digest.value });
    return;
  }

  const size = await blobs.linkedSize(name, digest);
  if (size === undefined) throw new RegistryError("BLOB_UNKNOWN", { detail: digest.value });
  const elsewhere = ctx.emulation.blobRedirect(method, name, digest.value, ctx.query);
  if (elsewhere) {
    send(ctx, 302, { Location: elsewhere });
    return;
  }
  const headers: Record<string, string | number> = {
    "Content-Type": "application/octet-stream",
    "Docker-Content-Digest": digest.value,
    "Accept-Ranges": "bytes",
    ETag: `"${digest.value}"`,
    "Cache-Control": "max-age=31536000",
  };
  const range = parseRange(header(ctx.req, "range"), size);
  if (range.kind === "unsatisfiable") {
    throw new RegistryError("RANGE_INVALID", {
      message: "requested range not satisfiable",
      headers: { "Content-Range": `bytes */${size}` },
    });
  }
  const { res } = ctx;
  if (range.kind === "partial") {
    res.statusCode = 206;
    headers["Content-Range"] = `bytes ${range.start}-${range.end}/${size}`;
    headers["Content-Length"] = range.end - range.start + 1;
  } else {
    res.statusCode = 200;
    headers["Content-Length"] = size;
  }
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (method === "HEAD" || size === 0) {
    res.end();
    return;
  }
  await pipeline(blobs.read(digest, range.kind === "partial" ? range : undefined), res);
}
