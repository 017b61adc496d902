/** `GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>` */
import { createHash } from "node:crypto";
import { RegistryError } from "../errors.ts";
import { type Context, header, methodNotAllowed, readBody, send } from "../http.ts";
import { parseManifest } from "../manifest.ts";
import { type Digest, isValidTag, looksLikeDigest, parseDigest, requireDigest } from "../names.ts";
import type { ReferrerDescriptor } from "../storage/repos.ts";

/** Largest manifest accepted, as the distribution spec suggests registries accept at least. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

type Reference = { kind: "digest"; digest: Digest } | { kind: "tag"; tag: string };

/** A tag or a digest; anything else answers `onBadTag()` (the right error depends on the method). */
function parseReference(ref: string, onBadTag: () => RegistryError): Reference {
  if (looksLikeDigest(ref)) return { kind: "digest", digest: requireDigest(ref) };
  if (!isValidTag(ref)) throw onBadTag();
  return { kind: "tag", tag: ref };
}

async function unknown(ctx: Context, name: string, ref: string): Promise<RegistryError> {
  if (!(await ctx.storage.repos.exists(name))) return new RegistryError("NAME_UNKNOWN", { detail: { name } });
  return new RegistryError("MANIFEST_UNKNOWN", { detail: { reference: ref } });
}

export async function handleManifest(ctx: Context, name: string, ref: string): Promise<void> {
  switch (ctx.req.method) {
    case "GET":
    case "HEAD":
      return getManifest(ctx, name, ref);
    case "PUT":
      return putManifest(ctx, name, ref);
    case "DELETE":
      return deleteManifest(ctx, name, ref);
    default:
      throw methodNotAllowed(["GET", "HEAD", "PUT", "DELETE"]);
  }
}

async function getManifest(ctx: Context, name: string, ref: string): Promise<void> {
  const { repos } = ctx.storage;
  const reference = parseReference(
    ref,
    () => new RegistryError("MANIFEST_UNKNOWN", { detail: { reference: ref } }),
  );
  const digest = reference.kind === "digest" ? reference.digest : await repos.resolveTag(name, reference.tag);
  const found = digest && (await repos.getManifest(name, digest));
  if (!digest || !found) throw await unknown(ctx, name, ref);
  send(
    ctx,
    200,
    {
      "Content-Type": found.link.mediaType,
      "Content-Length": found.bytes.length,
      "Docker-Content-Digest": digest.value,
      ETag: `"${digest.value}"`,
    },
    found.bytes,
  );
}

async function putManifest(ctx: Context, name: string, ref: string): Promise<void> {
  const { repos, blobs } = ctx.storage;
  const reference = parseReference(
    ref,
    () =>
      new RegistryError("MANIFEST_INVALID", { message: "invalid tag", detail: { tag: ref.slice(0, 200) } }),
  );
  const bytes = await readBody(
    ctx.req,
    MAX_MANIFEST_BYTES,
    () =>
      new RegistryError("MANIFEST_INVALID", {
        status: 413,
        message: `manifest larger than ${MAX_MANIFEST_BYTES} bytes`,
      }),
  );
  const manifest = parseManifest(bytes, header(ctx.req, "content-type"));

  const algorithm = reference.kind === "digest" ? reference.digest.algorithm : "sha256";
  const digest = requireDigest(`${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`);
  if (reference.kind === "digest" && reference.digest.value !== digest.value) {
    throw new RegistryError("DIGEST_INVALID", {
      message: "manifest digest does not match the reference",
      detail: { expected: reference.digest.value, actual: digest.value },
    });
  }

  for (const blob of manifest.blobs) {
    if ((await blobs.linkedSize(name, requireDigest(blob.digest))) === undefined) {
      throw new RegistryError("MANIFEST_BLOB_UNKNOWN", { detail: blob.digest });
    }
  }
  for (const child of manifest.children) {
    if (!(await repos.manifestLink(name, requireDigest(child.digest)))) {
      // 400, not 404: the PUT is what is wrong, the repository is fine.
      throw new RegistryError("MANIFEST_UNKNOWN", {
        status: 400,
        message: "index references a manifest unknown to the repository",
        detail: child.digest,
      });
    }
  }

  let referrer: { subject: Digest; descriptor: ReferrerDescriptor } | undefined;
  const subject = manifest.subject ? parseDigest(manifest.subject.digest) : undefined;
  if (subject) {
    const descriptor: ReferrerDescriptor = {
      mediaType: manifest.mediaType,
      digest: digest.value,
      size: bytes.length,
    };
    if (manifest.artifactType !== undefined) descriptor.artifactType = manifest.artifactType;
    if (manifest.annotations !== undefined) descriptor.annotations = manifest.annotations;
    referrer = { subject, descriptor };
  }
  const link = {
    mediaType: manifest.mediaType,
    size: bytes.length,
    ...(subject ? { subject: subject.value } : {}),
  };
  await repos.putManifest(
    name,
    digest,
    bytes,
    link,
    referrer,
    reference.kind === "tag" ? reference.tag : undefined,
  );

  const headers: Record<string, string> = {
    Location: `/v2/${name}/manifests/${digest.value}`,
    "Docker-Content-Digest": digest.value,
  };
  if (subject) headers["OCI-Subject"] = subject.value;
  send(ctx, 201, headers);
}

async function deleteManifest(ctx: Context, name: string, ref: string): Promise<void> {
  const { repos } = ctx.storage;
  const reference = parseReference(
    ref,
    () => new RegistryError("MANIFEST_UNKNOWN", { detail: { reference: ref } }),
  );
  const deleted =
    reference.kind === "digest"
      ? await repos.deleteManifest(name, reference.digest)
      : await repos.deleteTag(name, reference.tag);
  if (!deleted) throw await unknown(ctx, name, ref);
  send(ctx, 202);
}
