/**
 * Blob uploads. The algorithm, in order (regclient's BlobPut, ggcr's writer):
 *   1. exists   — `HEAD` at the destination: present with the right size → nothing to do;
 *   2. mount    — same registry, another repo has it: `POST ?mount=&from=` → 201 done, 202 → a session;
 *   3. monolithic — blobs up to the registry's `monolithicMax`: `PUT <location>?digest=` with the body;
 *   4. chunked  — `PATCH <location>` with `Content-Range` per chunk, then `PUT ?digest=`.
 * Every session is its own (one per blob); the `Location` changes after every request and the newest is
 * always used, resolved against the request URL. The offset is tracked here, not read from `Range`
 * (ECR's goes stale: aws/containers-roadmap#2831). A broken chunk is recovered by asking the registry
 * for the session's offset (`GET <location>`) and re-reading the source from there; the running hash is
 * checkpointed at each chunk start so resuming never re-hashes from zero. The digest is checked before
 * the final PUT, so a blob whose bytes do not match is never committed.
 */
import type { Hash } from "node:crypto";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { RegistryClient } from "./client.ts";
import { headerValue } from "./client.ts";
import { type Digest, digestAlgorithm, hasherFor } from "./digest.ts";
import {
  DigestMismatchError,
  RegistryError,
  redactUrl,
  SizeMismatchError,
  TransportError,
} from "./errors.ts";
import { ExactReader } from "./exact-reader.ts";
import { drain, isNetworkError } from "./http/transport.ts";
import type { Descriptor } from "./manifest.ts";
import { formatRepository, type Repository } from "./reference.ts";

/** An open upload session. `location` is always the newest the registry gave. */
export interface UploadSession {
  repo: Repository;
  location: URL;
  /** Bytes the registry has accepted so far (tracked by ferry). */
  offset: number;
  /** The registry's minimum non-final chunk (`OCI-Chunk-Min-Length`), 0 when unstated. */
  minChunk: number;
}

export type BlobAction = "skipped" | "mounted" | "uploaded";

export interface PushBlobResult {
  action: BlobAction;
  /** Bytes sent to the destination, retries included. */
  bytesSent: number;
}

export interface PushBlobOptions {
  /** Repositories on the same registry to try a cross-repository mount from. */
  mountFrom?: Repository[];
  /** Skip the existence check (the caller just did it). */
  skipExistsCheck?: boolean;
  /** Called with the number of bytes each time some are sent. */
  progress?: (bytes: number) => void;
  /**
   * For small blobs, bound by round trips: ask whether the blob exists, start the session (or the
   * mount) and open the source all at once, then either cancel (present, mounted) or upload. Saves two
   * round trips per blob; costs a session and a source request that are dropped when the blob exists.
   */
  eager?: boolean;
}

/** Returns the bytes of the blob from `offset`. Called again to resume after a fault. */
export type BlobOpener = (offset: number) => Promise<Readable>;

const OCTET = "application/octet-stream";

/** `POST` a new upload session, optionally as a mount. Returns "mounted" when the registry did the mount. */
export async function startUpload(
  client: RegistryClient,
  repo: Repository,
  mount?: { digest: Digest; from: Repository },
): Promise<UploadSession | "mounted"> {
  const query = mount
    ? `?mount=${encodeURIComponent(mount.digest)}&from=${encodeURIComponent(mount.from.repository)}`
    : "";
  const res = await client.request({
    op: mount ? "blob.mount" : "upload.post",
    method: "POST",
    registry: repo.registry,
    url: client.url(repo, `blobs/uploads/${query}`),
    headers: { "content-length": "0" },
    scopes: client.scopes(repo, ["pull", "push"], mount ? [mount.from] : []),
    expect: mount ? [201, 202] : [202],
    context: mount
      ? `mount blob ${mount.digest} from ${formatRepository(mount.from)} into ${formatRepository(repo)}`
      : `start upload to ${formatRepository(repo)}`,
  });
  await drain(res.body);
  if (res.status === 201) return "mounted";
  return {
    repo,
    location: nextLocation(res.headers.location, res.url),
    offset: 0,
    minChunk: Number(headerValue(res.headers["oci-chunk-min-length"]) ?? 0) || 0,
  };
}

/**
 * `GET <location>`: the registry's view of the session's offset (updates `location`).
 * distribution signs its offset into the Location's `_state`; after a lost answer that state is stale
 * and the status request is refused (404), so it is asked once more with the bare session path.
 */
export async function uploadStatus(client: RegistryClient, session: UploadSession): Promise<number> {
  const ask = (url: URL) =>
    client.request({
      op: "upload.status",
      method: "GET",
      registry: session.repo.registry,
      url,
      scopes: client.scopes(session.repo, ["pull", "push"]),
      expect: [204, 200, 404],
      context: `check upload to ${formatRepository(session.repo)}`,
    });
  let res = await ask(session.location);
  if (res.status === 404 && session.location.search) {
    await drain(res.body);
    const bare = new URL(session.location);
    bare.search = "";
    res = await ask(bare);
  }
  await drain(res.body);
  if (res.status === 404) {
    throw new RegistryError({
      status: 404,
      method: "GET",
      url: redactUrl(res.url),
      errors: [{ code: "BLOB_UPLOAD_UNKNOWN" }],
      context: `check upload to ${formatRepository(session.repo)}`,
    });
  }
  if (res.headers.location) session.location = nextLocation(res.headers.location, res.url);
  return rangeEnd(headerValue(res.headers.range));
}

/**
 * Bytes a registry holds, from its `Range: 0-<last>` header. distribution answers `0-0` for an empty
 * session as well as for a one-byte one; it is read as empty, so no byte is ever skipped (at worst one
 * is offered again and refused with 416, and the upload starts over).
 */
export function rangeEnd(range: string | undefined): number {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(range ?? "");
  if (!m || m[1] === "0") return 0;
  return Number(m[1]) + 1;
}

/** `DELETE <location>`: abandons a session. Best effort: errors are swallowed. */
export async function cancelUpload(client: RegistryClient, session: UploadSession): Promise<void> {
  try {
    const res = await client.request({
      op: "upload.delete",
      method: "DELETE",
      registry: session.repo.registry,
      url: session.location,
      scopes: client.scopes(session.repo, ["pull", "push"]),
      expect: [204, 200, 202, 404],
      context: `cancel upload to ${formatRepository(session.repo)}`,
    });
    await drain(res.body);
  } catch {
    // the registry purges abandoned sessions itself
  }
}

/**
 * `PATCH` one chunk of `length` bytes at the session's offset. Accepts 202 (spec) and 201/204 (ECR
 * answers 201: openai/tart#273). The body is one-shot: no transparent retry here.
 */
export async function patchChunk(
  client: RegistryClient,
  session: UploadSession,
  body: AsyncIterable<Uint8Array>,
  length: number,
): Promise<void> {
  const start = session.offset;
  const headers: Record<string, string> = { "content-type": OCTET };
  if (length >= 0) {
    headers["content-length"] = String(length);
    headers["content-range"] = `${start}-${start + length - 1}`;
  }
  const res = await client.request({
    op: "upload.patch",
    method: "PATCH",
    registry: session.repo.registry,
    url: session.location,
    headers,
    oneShotBody: body,
    scopes: client.scopes(session.repo, ["pull", "push"]),
    expect: [202, 201, 204],
    context: `upload chunk ${start}-${length >= 0 ? start + length - 1 : "end"} to ${formatRepository(session.repo)}`,
  });
  await drain(res.body);
  if (res.headers.location) session.location = nextLocation(res.headers.location, res.url);
  if (length >= 0) session.offset = start + length;
  else {
    session.offset = rangeEnd(headerValue(res.headers.range)) || session.offset;
  }
}

/** `PUT <location>?digest=` closing the session, with an optional final body (monolithic upload). */
export async function completeUpload(
  client: RegistryClient,
  session: UploadSession,
  digest: Digest,
  body?: { stream: AsyncIterable<Uint8Array>; length: number },
): Promise<void> {
  const url = new URL(session.location);
  url.searchParams.set("digest", digest);
  const res = await client.request({
    op: body ? "upload.put" : "upload.complete",
    method: "PUT",
    registry: session.repo.registry,
    url,
    headers: { "content-type": OCTET, "content-length": String(body ? body.length : 0) },
    ...(body ? { oneShotBody: body.stream } : { body: new Uint8Array(0) }),
    scopes: client.scopes(session.repo, ["pull", "push"]),
    expect: [201, 204, 200],
    context: `commit blob ${digest} to ${formatRepository(session.repo)}`,
  });
  await drain(res.body);
}

/**
 * The eager path of `pushBlob` (see PushBlobOptions.eager): HEAD, POST (a mount when the source is on
 * the same registry) and the source GET go out together. Returns undefined when it could not finish
 * (the normal path then runs, with its retries).
 */
async function pushBlobEager(
  client: RegistryClient,
  repo: Repository,
  desc: Descriptor,
  open: BlobOpener,
  opts: PushBlobOptions,
): Promise<PushBlobResult | undefined> {
  const from = (opts.mountFrom ?? []).find(
    (r) => r.registry === repo.registry && r.repository !== repo.repository,
  );
  const sourceP = open(0);
  sourceP.catch(() => undefined);
  const drop = () =>
    void sourceP.then(
      (s) => s.destroy(),
      () => undefined,
    );
  let size: number | undefined;
  let session: UploadSession | "mounted";
  try {
    await client.transport.ensureChallenge(repo.registry, client.base(repo.registry));
    [size, session] = await Promise.all([
      opts.skipExistsCheck ? Promise.resolve(undefined) : client.headBlob(repo, desc.digest),
      startUpload(client, repo, from ? { digest: desc.digest, from } : undefined),
    ]);
  } catch {
    drop();
    return undefined;
  }
  if (session === "mounted") {
    drop();
    return { action: "mounted", bytesSent: 0 };
  }
  if (size !== undefined && (size === desc.size || size < 0)) {
    drop();
    await cancelUpload(client, session);
    return { action: "skipped", bytesSent: 0 };
  }
  let sent = 0;
  try {
    await uploadMonolithic(client, session, desc, sourceP, (n) => {
      sent += n;
      opts.progress?.(n);
    });
    return { action: "uploaded", bytesSent: sent };
  } catch (err) {
    await cancelUpload(client, session);
    if (!isRetryable(err)) throw err;
    return undefined;
  }
}

/**
 * Pushes one blob by the algorithm in this file's header. `open(offset)` gives the bytes from an offset;
 * it is called again when a chunk must be re-sent. Throws DigestMismatchError (nothing committed) when the
 * bytes do not match `desc.digest`.
 */
export async function pushBlob(
  client: RegistryClient,
  repo: Repository,
  desc: Descriptor,
  open: BlobOpener,
  opts: PushBlobOptions = {},
): Promise<PushBlobResult> {
  const rules = client.options.uploadRules(repo.registry);
  if (opts.eager && desc.size >= 0 && desc.size <= rules.monolithicMax) {
    const eager = await pushBlobEager(client, repo, desc, open, opts);
    if (eager) return eager;
  }
  if (!opts.skipExistsCheck) {
    const size = await client.headBlob(repo, desc.digest);
    if (size !== undefined && (size === desc.size || size < 0 || desc.size < 0))
      return { action: "skipped", bytesSent: 0 };
  }
  // Uploads stream one-shot bodies: learn the auth challenge first so no body meets a 401.
  await client.transport.ensureChallenge(repo.registry, client.base(repo.registry));
  for (const from of opts.mountFrom ?? []) {
    if (from.registry !== repo.registry || from.repository === repo.repository) continue;
    const s = await startUpload(client, repo, { digest: desc.digest, from });
    if (s === "mounted") return { action: "mounted", bytesSent: 0 };
    await cancelUpload(client, s);
  }
  let sent = 0;
  const progress = (n: number) => {
    sent += n;
    opts.progress?.(n);
  };
  let lastError: unknown;
  // Whole-upload attempts: a session the registry lost (404 on status) or a monolithic PUT that broke
  // starts over with a new session.
  for (let attempt = 0; attempt <= client.options.retries; attempt++) {
    if (attempt > 0)
      await sleep(Math.min(client.options.retryMaxMs, client.options.retryBaseMs * 2 ** attempt));
    const chunked = !rules.monolithicOnly && (desc.size < 0 || desc.size > rules.monolithicMax);
    // Monolithic: open the source while the session is created (one round trip saved per blob).
    const sourceP = chunked ? undefined : open(0);
    sourceP?.catch(() => undefined);
    let session: UploadSession | "mounted";
    try {
      session = await startUpload(client, repo);
    } catch (err) {
      void sourceP?.then(
        (s) => s.destroy(),
        () => undefined,
      );
      throw err;
    }
    if (session === "mounted") {
      void sourceP?.then(
        (s) => s.destroy(),
        () => undefined,
      );
      return { action: "mounted", bytesSent: sent };
    }
    try {
      if (chunked) await uploadChunked(client, session, desc, open, rules.chunkSize, progress);
      else await uploadMonolithic(client, session, desc, sourceP!, progress);
      return { action: "uploaded", bytesSent: sent };
    } catch (err) {
      lastError = err;
      await cancelUpload(client, session);
      if (!isRetryable(err)) throw err;
    }
  }
  throw lastError;
}

function isRetryable(err: unknown): boolean {
  if (err instanceof DigestMismatchError) return false;
  if (err instanceof SizeMismatchError) return err.retryable;
  // 401: a token that expired mid-upload (the transport dropped it; the next request fetches a new one).
  if (err instanceof RegistryError) return err.retryable || [401, 404, 416].includes(err.status);
  return isNetworkError(err) || err instanceof TransportError;
}

async function uploadMonolithic(
  client: RegistryClient,
  session: UploadSession,
  desc: Descriptor,
  sourceP: Promise<Readable>,
  progress: (n: number) => void,
): Promise<void> {
  const source = await sourceP;
  const hash = hasherFor(desc.digest);
  const counted = { n: 0 };
  const stream = hashing(source, hash, counted, progress, desc.size);
  await completeUpload(client, session, desc.digest, { stream, length: desc.size });
  // The registry verified the digest it was given; check ours too, so a source that lied is caught here.
  checkDigest(desc, hash, counted.n, session.repo);
}

async function uploadChunked(
  client: RegistryClient,
  session: UploadSession,
  desc: Descriptor,
  open: BlobOpener,
  chunkSize: number,
  progress: (n: number) => void,
): Promise<void> {
  const size = desc.size;
  const step = Math.max(chunkSize, session.minChunk);
  let hash = hasherFor(desc.digest);
  let reader = new ExactReader(await open(0));
  let resumes = 0;
  try {
    if (size < 0) {
      // Unknown size (legacy schema 1): one streamed PATCH, no Content-Range.
      const counted = { n: 0 };
      await patchChunk(client, session, hashing(reader.source, hash, counted, progress, -1), -1);
      session.offset = counted.n;
      checkDigest({ ...desc, size: counted.n }, hash, counted.n, session.repo);
      await completeUpload(client, session, desc.digest);
      return;
    }
    while (session.offset < size) {
      const start = session.offset;
      const length = Math.min(step, size - start);
      const checkpoint = hash.copy();
      try {
        await patchChunk(
          client,
          session,
          reader.take(length, (b) => {
            hash.update(b);
            progress(b.length);
          }),
          length,
        );
        if (reader.lastTaken !== length)
          throw new SizeMismatchError(`blob ${desc.digest} source`, size, start + reader.lastTaken);
      } catch (err) {
        if (!isRetryable(err) || resumes >= client.options.retries) throw err;
        resumes++;
        reader.destroy();
        await sleep(Math.min(client.options.retryMaxMs, client.options.retryBaseMs * 2 ** resumes));
        // Where does the registry stand? Resume from there (never from zero when it kept the bytes).
        const reported = await uploadStatus(client, session);
        if (reported < start || reported > start + length) throw err; // lost or impossible state: restart whole upload
        hash = checkpoint;
        reader = new ExactReader(await open(start));
        if (reported > start && !(await reader.skip(reported - start, (b) => hash.update(b)))) {
          throw new TransportError("blob source ended while resuming an upload");
        }
        session.offset = reported;
      }
    }
    checkDigest(desc, hash, size, session.repo);
    await completeUpload(client, session, desc.digest);
  } finally {
    reader.destroy();
  }
}

function checkDigest(desc: Descriptor, hash: Hash, bytes: number, repo: Repository): void {
  const what = `blob ${desc.digest} for ${formatRepository(repo)}`;
  if (desc.size >= 0 && bytes !== desc.size) throw new SizeMismatchError(what, desc.size, bytes);
  const actual = `${digestAlgorithm(desc.digest)}:${hash.digest("hex")}`;
  if (actual !== desc.digest) throw new DigestMismatchError(what, desc.digest, actual);
}

/** Hashes and counts while passing bytes through; refuses more than `max` bytes. */
async function* hashing(
  source: AsyncIterable<unknown>,
  hash: Hash,
  counted: { n: number },
  progress: (n: number) => void,
  max: number,
): AsyncGenerator<Uint8Array> {
  for await (const c of source) {
    const b = c as Buffer;
    counted.n += b.length;
    if (max >= 0 && counted.n > max) throw new SizeMismatchError("blob source", max, counted.n);
    hash.update(b);
    progress(b.length);
    yield b;
  }
}

/** Resolves a `Location` header (absolute or relative) against the URL that sent it. */
export function nextLocation(location: string | string[] | undefined, requestUrl: URL): URL {
  const loc = Array.isArray(location) ? location[0] : location;
  if (!loc)
    throw new RegistryError({
      status: 202,
      method: "POST",
      url: requestUrl.toString(),
      context: "upload answer without Location",
    });
  return new URL(loc, requestUrl);
}

/**
 * Uploads a stream whose digest is only known at its end (a layer compressed on the fly): one streamed
 * `PATCH`, hashing as it goes, then `PUT ?digest=` with the digest computed. One-shot: a failure is
 * reported, not retried (the caller can produce the stream again).
 */
export async function pushBlobStream(
  client: RegistryClient,
  repo: Repository,
  mediaType: string,
  stream: Readable,
  progress?: (bytes: number) => void,
): Promise<Descriptor> {
  await client.transport.ensureChallenge(repo.registry, client.base(repo.registry));
  const session = await startUpload(client, repo);
  if (session === "mounted")
    throw new RegistryError({
      status: 201,
      method: "POST",
      url: client.url(repo, "blobs/uploads/").toString(),
      context: "unexpected mount",
    });
  const hash = hasherFor("sha256:");
  const counted = { n: 0 };
  try {
    await patchChunk(client, session, hashing(stream, hash, counted, progress ?? (() => {}), -1), -1);
    session.offset = counted.n;
    const digest = `sha256:${hash.digest("hex")}`;
    await completeUpload(client, session, digest);
    return { mediaType, digest, size: counted.n };
  } catch (err) {
    stream.destroy();
    await cancelUpload(client, session);
    throw err;
  }
}
