/**
 * Blob uploads: `POST /v2/<name>/blobs/uploads/` (session, monolithic `?digest=`, or
 * `?mount=&from=`) and `GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<uuid>`.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { RegistryError } from "../errors.ts";
import { type Context, hasBody, header, methodNotAllowed, send } from "../http.ts";
import { type Digest, isValidName, parseContentRange, parseDigest, requireDigest } from "../names.ts";
import { rangeHeader, type UploadSession } from "../storage/uploads.ts";

function sessionHeaders(name: string, session: UploadSession): Record<string, string> {
  return {
    Location: `/v2/${name}/blobs/uploads/${session.id}`,
    Range: rangeHeader(session.offset),
    "Docker-Upload-UUID": session.id,
  };
}

function created(ctx: Context, name: string, digest: Digest): void {
  send(ctx, 201, { Location: `/v2/${name}/blobs/${digest.value}`, "Docker-Content-Digest": digest.value });
}

/** The chunk's declared range, checked against Content-Length; undefined for a streamed chunk. */
function chunkRange(ctx: Context): { start: number; end: number } | undefined {
  const value = header(ctx.req, "content-range");
  if (value === undefined) return undefined;
  const range = parseContentRange(value);
  if (!range) {
    throw new RegistryError("BLOB_UPLOAD_INVALID", { message: "malformed Content-Range", detail: { value } });
  }
  const length = header(ctx.req, "content-length");
  if (length !== undefined && Number(length) !== range.end - range.start + 1) {
    throw new RegistryError("SIZE_INVALID", { detail: { contentRange: value, contentLength: length } });
  }
  return range;
}

/** `POST /v2/<name>/blobs/uploads/` */
export async function handleUploadStart(ctx: Context, name: string): Promise<void> {
  if (ctx.req.method !== "POST") throw methodNotAllowed(["POST"]);
  const { blobs, uploads } = ctx.storage;

  const mount = ctx.query.get("mount");
  const from = ctx.query.get("from");
  if (mount !== null) {
    // Mount only from a named repository; anything unusable falls back to a plain session.
    const digest = parseDigest(mount);
    if (
      digest &&
      from !== null &&
      isValidName(from) &&
      (await blobs.linkedSize(from, digest)) !== undefined
    ) {
      await blobs.link(name, digest);
      created(ctx, name, digest);
      return;
    }
  } else if (ctx.query.has("digest")) {
    await monolithic(ctx, name, requireDigest(ctx.query.get("digest")));
    return;
  }
  const session = await uploads.create(name);
  send(ctx, 202, { ...sessionHeaders(name, session), ...ctx.emulation.startHeaders() });
}

/** Single-request upload: the POST body is the whole blob. */
async function monolithic(ctx: Context, name: string, digest: Digest): Promise<void> {
  const { blobs, layout } = ctx.storage;
  const tmp = layout.tempFile();
  const hash = createHash(digest.algorithm);
  try {
    await pipeline(
      ctx.req,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(tmp),
    );
    const actual = hash.digest("hex");
    if (actual !== digest.hex) {
      throw new RegistryError("DIGEST_INVALID", {
        detail: { expected: digest.value, actual: `${digest.algorithm}:${actual}` },
      });
    }
    await blobs.commit(tmp, digest);
  } finally {
    await rm(tmp, { force: true });
  }
  await blobs.link(name, digest);
  created(ctx, name, digest);
}

/** `GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<uuid>` */
export async function handleUploadSession(ctx: Context, name: string, id: string): Promise<void> {
  const { uploads, blobs } = ctx.storage;
  const emulation = ctx.emulation;
  const method = ctx.req.method;
  if (method !== "GET" && method !== "PATCH" && method !== "PUT" && method !== "DELETE") {
    throw methodNotAllowed(["GET", "PATCH", "PUT", "DELETE"]);
  }
  const session = await uploads.get(name, id);

  switch (method) {
    case "GET":
      send(ctx, 204, sessionHeaders(name, session));
      return;
    case "DELETE":
      await uploads.withLock(session, () => uploads.discard(session));
      send(ctx, 204);
      return;
    case "PATCH": {
      const range = chunkRange(ctx);
      await emulation.checkPatch(ctx.req);
      await uploads.withLock(session, () =>
        emulation.part(session, range, () => uploads.append(session, ctx.req, range)),
      );
      const answer = emulation.patchAnswer(session);
      send(ctx, answer.status, { ...sessionHeaders(name, session), Range: answer.range });
      return;
    }
    case "PUT": {
      const digest = requireDigest(ctx.query.get("digest"));
      const range = chunkRange(ctx);
      await uploads.withLock(session, async () => {
        if (range || hasBody(ctx.req))
          await emulation.part(session, range, () => uploads.append(session, ctx.req, range));
        try {
          emulation.checkComplete(session);
        } catch (err) {
          await uploads.discard(session); // refused: the session is over, as after DIGEST_INVALID
          throw err;
        }
        await uploads.complete(session, digest);
      });
      await blobs.link(name, digest);
      created(ctx, name, digest);
      return;
    }
  }
}
