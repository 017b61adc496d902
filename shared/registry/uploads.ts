/**
 * Blob uploads: one algorithm for every path (the CLI engine in one process, the workflow's Lambda steps
 * with a byte budget each). In order (regclient's BlobPut, ggcr's writer):
 *   1. exists     — `HEAD` at the destination: present with the right size → nothing to do;
 *   2. mount      — same registry, another repository has it: `POST ?mount=&from=` → 201 done, 202 → a
 *                   session (cancelled: an ordinary upload follows);
 *   3. monolithic — blobs up to the registry's `monolithicMax`: `PUT <location>?digest=` with the body;
 *   4. chunked    — `PATCH <location>` with `Content-Range` per chunk, then `PUT ?digest=` (`runUpload`).
 *
 * Every session is its own (one per blob); the `Location` changes after every request and the newest is
 * always used, resolved against the request URL. The offset is tracked here, not read from `Range` (ECR's
 * goes stale: aws/containers-roadmap#2831).
 *
 * **Verify before commit.** ferry's own hash decides before the destination commits anything: a chunked
 * upload checks the digest before `PUT ?digest=`; a monolithic `PUT` holds back its final bytes until
 * the hash of everything before them matched — a body that ends early commits nothing. A mismatch names
 * the *source* the bytes came from; `pushBlob` reads a blob whose bytes did not match once more from the
 * start (a flaky proxy or CDN can corrupt one response) and fails clearly when the second read is wrong.
 *
 * **Recovery** (one rule, `recoverable`): a chunk that fails on the network, on a temporary status, on
 * a 401 (a token that expired mid-upload), or because the registry's offset is not ours (404, 416, 400
 * BLOB_UPLOAD_INVALID: a lost answer, a stale `_state`) is reconciled by asking the registry where the
 * session stands (`GET <location>`) and re-reading the source from there, the running hash rolled back
 * to the chunk's start and fed the bytes the registry already holds. A session the registry lost
 * (distribution 2.8 cancels one whose PATCH broke) restarts from zero, at most MAX_RESTARTS times.
 *
 * **Resumable state.** `runUpload` runs the chunk loop from a `SavedUpload` (or a new session) with an
 * optional byte budget and returns either "committed" or the state to continue from — Location, offset,
 * the exported running hash (digest.ts `blobHash`) — which a workflow step records and the next step
 * passes back. Without a budget (the CLI) it runs to the end.
 */
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { RegistryClient } from "./client.ts";
import { headerValue } from "./client.ts";
import { type BlobHash, blobHash, type Digest } from "./digest.ts";
import {
  DigestMismatchError,
  FerryError,
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

/** An upload session between two runs of `runUpload` (another Lambda step): plain JSON. */
export interface SavedUpload {
  /** The newest Location. Holds the registry's session id and `_state`: keep it out of logs. */
  location: string;
  offset: number;
  minChunk: number;
  /** The running hash of bytes `[0, offset)` (an exported sha256 state). */
  hash?: string;
  /** Sessions the registry lost and ferry restarted so far. */
  restarts?: number;
  /**
   * The registry may hold more than `offset` (the answer to the last run's final PATCH may have been
   * lost): ask where the session stands before sending anything. Some registries ignore `Content-Range`
   * (distribution 2.x appends at its own offset), so a PATCH from a stale offset would add bytes twice.
   */
  uncertain?: boolean;
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
  /** Where the bytes come from, for errors: `localhost:5000/app:v1`. Default "the source". */
  source?: string;
}

/** Returns the bytes of the blob from `offset`. Called again to resume after a fault. */
export type BlobOpener = (offset: number) => Promise<Readable>;

/** Returns the blob's bytes `[from, to)`. */
export type BlobBytes = (from: number, to: number) => Promise<Readable>;

const OCTET = "application/octet-stream";

/** Sessions one blob may lose (and restart from zero) before its upload fails. */
export const MAX_RESTARTS = 3;

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

/** A new session that is not a mount (uploads stream one-shot bodies: the challenge is learnt first). */
async function newSession(client: RegistryClient, repo: Repository): Promise<UploadSession> {
  await client.ensureChallenge(repo.registry);
  const s = await startUpload(client, repo);
  if (s === "mounted")
    throw new RegistryError({
      status: 201,
      method: "POST",
      url: client.url(repo, "blobs/uploads/").toString(),
      context: "unexpected mount",
    });
  return s;
}

/**
 * Tries cross-repository mounts from `from` (same registry, other repositories), in order. True when one
 * worked; a refused mount (202: an ordinary session, as ECR answers across accounts) is cancelled.
 */
export async function tryMount(
  client: RegistryClient,
  repo: Repository,
  digest: Digest,
  from: readonly Repository[],
): Promise<boolean> {
  const candidates = from.filter((r) => r.registry === repo.registry && r.repository !== repo.repository);
  if (candidates.length === 0) return false;
  await client.ensureChallenge(repo.registry);
  for (const r of candidates) {
    const s = await startUpload(client, repo, { digest, from: r });
    if (s === "mounted") return true;
    await cancelUpload(client, s);
  }
  return false;
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

/** The destination has the blob with its size (or one it cannot tell). */
async function present(client: RegistryClient, repo: Repository, desc: Descriptor): Promise<boolean> {
  const size = await client.headBlob(repo, desc.digest);
  return size !== undefined && (size === desc.size || size < 0 || desc.size < 0);
}

/**
 * Pushes one blob by the algorithm in this file's header. `open(offset)` gives the bytes from an offset;
 * it is called again when a chunk must be re-sent. Throws DigestMismatchError (nothing committed) when
 * the bytes do not match `desc.digest` on two reads from the start.
 */
export async function pushBlob(
  client: RegistryClient,
  repo: Repository,
  desc: Descriptor,
  open: BlobOpener,
  opts: PushBlobOptions = {},
): Promise<PushBlobResult> {
  const rules = client.options.uploadRules(repo.registry);
  const chunked = !rules.monolithicOnly && (desc.size < 0 || desc.size > rules.monolithicMax);
  let sent = 0;
  const progress = (n: number) => {
    sent += n;
    opts.progress?.(n);
  };
  const source = opts.source ?? "the source";
  let reads = 0;
  if (opts.eager && !chunked) {
    const eager = await pushBlobEager(client, repo, desc, open, opts, progress);
    if (eager === "uploaded") return { action: "uploaded", bytesSent: sent };
    if (eager === "skipped" || eager === "mounted") return { action: eager, bytesSent: 0 };
    if (eager === "bad read") reads = 1;
  } else {
    if (!opts.skipExistsCheck && (await present(client, repo, desc)))
      return { action: "skipped", bytesSent: 0 };
    if (await tryMount(client, repo, desc.digest, opts.mountFrom ?? []))
      return { action: "mounted", bytesSent: 0 };
  }
  // A blob whose bytes did not match is read once more from the start: one bad response (a flaky proxy
  // or CDN) should not fail a migration. Nothing was committed from the bad read.
  for (;;) {
    reads++;
    try {
      if (chunked) {
        await runUpload(client, repo, desc, undefined, {
          read: (from) => open(from),
          chunkSize: rules.chunkSize,
          source,
          progress,
        });
      } else {
        await uploadMonolithicWithRetries(client, repo, desc, open, source, progress);
      }
      return { action: "uploaded", bytesSent: sent };
    } catch (err) {
      if (!(isBadRead(err) && reads < 2)) throw err;
    }
  }
}

/** Bytes from the source that did not match their digest. */
function isBadRead(err: unknown): boolean {
  return err instanceof DigestMismatchError && err.source;
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
  progress: (n: number) => void,
): Promise<BlobAction | "bad read" | undefined> {
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
    await client.ensureChallenge(repo.registry);
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
    return "mounted";
  }
  if (size !== undefined && (size === desc.size || size < 0)) {
    drop();
    await cancelUpload(client, session);
    return "skipped";
  }
  try {
    await uploadMonolithic(client, session, desc, await sourceP, opts.source ?? "the source", progress);
    return "uploaded";
  } catch (err) {
    await cancelUpload(client, session);
    if (isBadRead(err)) return "bad read";
    if (!recoverable(err)) throw err;
    return undefined;
  }
}

/** Monolithic uploads, each attempt a new session: a PUT whose body broke cannot be continued. */
async function uploadMonolithicWithRetries(
  client: RegistryClient,
  repo: Repository,
  desc: Descriptor,
  open: BlobOpener,
  source: string,
  progress: (n: number) => void,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0) await sleep(backoff(client, attempt));
    // Open the source while the session is created (one round trip saved per blob).
    const sourceP = open(0);
    sourceP.catch(() => undefined);
    let session: UploadSession;
    try {
      session = await newSession(client, repo);
    } catch (err) {
      void sourceP.then(
        (s) => s.destroy(),
        () => undefined,
      );
      throw err;
    }
    try {
      await uploadMonolithic(client, session, desc, await sourceP, source, progress);
      return;
    } catch (err) {
      await cancelUpload(client, session);
      if (!recoverable(err) || attempt >= client.options.retries) throw err;
    }
  }
}

/**
 * One `PUT ?digest=` with the whole body, which the registry commits as soon as the body ends: the final
 * bytes are held back until the hash of everything before them matched (`verified`), so bytes that do
 * not match their digest never complete a body — the request fails, the registry commits nothing.
 */
async function uploadMonolithic(
  client: RegistryClient,
  session: UploadSession,
  desc: Descriptor,
  source: Readable,
  from: string,
  progress: (n: number) => void,
): Promise<void> {
  const what = `blob ${desc.digest} read from ${from} for ${formatRepository(session.repo)}`;
  await completeUpload(client, session, desc.digest, {
    stream: verified(source, desc, what, progress),
    length: desc.size,
  });
}

/** Passes `desc.size` bytes through, hashing them; checks size and digest before yielding the last piece. */
async function* verified(
  source: AsyncIterable<unknown>,
  desc: Descriptor,
  what: string,
  progress: (n: number) => void,
): AsyncGenerator<Uint8Array> {
  const hash = blobHash(desc.digest, { from: 0, to: desc.size, size: desc.size });
  let n = 0;
  for await (const c of source) {
    const b = c as Buffer;
    n += b.length;
    if (n > desc.size) throw new SizeMismatchError(what, desc.size, n);
    hash.update(b);
    if (n === desc.size) checkDigest(desc, hash, n, what);
    progress(b.length);
    yield b;
  }
  checkDigest(desc, hash, n, what);
}

/** One run of the chunk loop: where the bytes come from and how far to go. */
export interface UploadRun {
  /** The blob's bytes `[from, to)`; called again after a fault, from where the registry stands. */
  read: BlobBytes;
  /** PATCH size (raised to the registry's minimum). */
  chunkSize: number;
  /** Stop after about this many bytes (whole chunks) and return the state; default: to the end. */
  maxBytes?: number;
  /** Where the bytes come from, for a digest mismatch. */
  source: string;
  progress?: (bytes: number) => void;
  /** Called with every session this run opens (the first, and any restart), before anything is sent to it. */
  onSession?: (session: UploadSession) => Promise<void>;
}

export type UploadOutcome =
  | { committed: true; bytesSent: number }
  | { committed: false; saved: SavedUpload; bytesSent: number };

/**
 * The chunked upload loop (see the file header): continues `saved` (or starts a session), sends whole
 * chunks, recovers from faults by the one rule, and — once every byte went through and the digest
 * matched — commits with `PUT ?digest=`. With `maxBytes`, it stops at a chunk boundary after that many
 * bytes and returns the state to continue from.
 */
export async function runUpload(
  client: RegistryClient,
  repo: Repository,
  desc: Descriptor,
  saved: SavedUpload | undefined,
  run: UploadRun,
): Promise<UploadOutcome> {
  const size = desc.size;
  const what = `blob ${desc.digest} read from ${run.source} for ${formatRepository(repo)}`;
  // Every descriptor ferry copies has a size (Docker schema 1, whose layers had none, is refused at plan).
  if (!(size >= 0)) throw new SizeMismatchError(`${what}: no size in its descriptor`, 0, size);
  let sent = 0;
  const progress = (n: number) => {
    sent += n;
    run.progress?.(n);
  };
  const open = async () => {
    const s = await newSession(client, repo);
    await run.onSession?.(s);
    return s;
  };
  let session = saved ? restoreUpload(repo, saved) : await open();
  let restarts = saved?.restarts ?? 0;
  const rules = client.options.uploadRules(repo.registry);
  const budget = run.maxBytes ?? Number.POSITIVE_INFINITY;
  // A chunk: the asked size (at most the budget), at least what the registry requires.
  const step = () => Math.max(Math.min(run.chunkSize, budget), rules.minChunk, session.minChunk);
  // Where a run from `from` stops: the blob's end, or after the budget's worth of whole chunks.
  const stopFrom = (from: number) => {
    if (!Number.isFinite(budget)) return size;
    return Math.min(size, from + Math.max(1, Math.floor(budget / step())) * step());
  };
  let stopAt = stopFrom(session.offset);
  let hash = blobHash(desc.digest, { from: session.offset, to: stopAt, size, state: saved?.hash });
  let reader: ExactReader | undefined;
  /**
   * Asks the registry where the session stands (we stand at `start`, and it may hold at most `upTo`) and
   * goes on from there: the bytes it holds beyond `start` — sent by an attempt whose answer never came —
   * are fed to the hash from the source and count as sent. A session the registry lost, or one that
   * stands anywhere else, is replaced by a new one from zero (at most MAX_RESTARTS times).
   */
  const reconcile = async (start: number, upTo: number, cause: unknown) => {
    reader?.destroy();
    let reported: number;
    try {
      reported = await uploadStatus(client, session);
    } catch (e) {
      if (!recoverable(e)) throw e;
      reported = -1; // the registry lost the session
    }
    if (reported < start || reported > upTo) {
      await cancelUpload(client, session);
      if (restarts >= MAX_RESTARTS) {
        throw new RegistryError({
          status: cause instanceof RegistryError ? cause.status : 0,
          method: "PATCH",
          url: redactUrl(session.location),
          context: `${what}: the registry lost the upload session ${MAX_RESTARTS + 1} times`,
        });
      }
      restarts++;
      session = await open();
      stopAt = stopFrom(0);
      hash = blobHash(desc.digest, { from: 0, to: stopAt, size });
      reader = new ExactReader(await run.read(0, stopAt));
      return;
    }
    reader = new ExactReader(await run.read(start, stopAt));
    if (reported > start) {
      if (!(await reader.skip(reported - start, (b) => hash.update(b))))
        throw new TransportError(`${what}: the source ended while resuming an upload`);
      sent += reported - start;
    }
    session.offset = reported;
  };

  try {
    if (saved?.uncertain) await reconcile(session.offset, size, undefined);
    else reader = new ExactReader(await run.read(session.offset, stopAt));
    let resumes = 0;
    while (session.offset < stopAt) {
      const start = session.offset;
      const length = Math.min(step(), stopAt - start);
      const checkpoint = hash.copy();
      const r = reader!;
      try {
        await patchChunk(
          client,
          session,
          r.take(length, (b) => {
            hash.update(b);
            progress(b.length);
          }),
          length,
        );
        if (r.lastTaken !== length) throw new SizeMismatchError(what, size, start + r.lastTaken);
      } catch (err) {
        if (!recoverable(err) || resumes >= client.options.retries) throw err;
        resumes++;
        await sleep(backoff(client, resumes));
        hash = checkpoint;
        await reconcile(start, start + length, err);
      }
    }
  } finally {
    reader?.destroy();
  }
  if (session.offset < size) {
    return {
      committed: false,
      saved: {
        location: session.location.href,
        offset: session.offset,
        minChunk: session.minChunk,
        hash: hash.exportState(),
        ...(restarts ? { restarts } : {}),
      },
      bytesSent: sent,
    };
  }
  try {
    checkDigest(desc, hash, session.offset, what);
  } catch (err) {
    await cancelUpload(client, session); // never committed: the session goes before any PUT ?digest=
    throw err;
  }
  try {
    await completeUpload(client, session, desc.digest);
  } catch (err) {
    // A lost answer to an earlier PUT: the session is gone but the blob is there.
    if (!(err instanceof RegistryError && err.status === 404 && (await present(client, repo, desc))))
      throw err;
  }
  return { committed: true, bytesSent: sent };
}

/** A live session from a saved one. */
export function restoreUpload(repo: Repository, saved: SavedUpload): UploadSession {
  return { repo, location: new URL(saved.location), offset: saved.offset, minChunk: saved.minChunk };
}

/**
 * The one recovery rule for uploads: what a fresh look at the session (or a new session) can fix —
 * the network, temporary statuses, an expired token (401: the transport dropped it), and the registry
 * disagreeing about the offset or the session (404, 416, 400 BLOB_UPLOAD_INVALID). Bytes that do not
 * match their digest are never recoverable here.
 */
export function recoverable(err: unknown): boolean {
  if (err instanceof DigestMismatchError) return false;
  if (err instanceof SizeMismatchError) return err.retryable;
  if (err instanceof RegistryError)
    return (
      err.retryable ||
      [401, 404, 416].includes(err.status) ||
      (err.status === 400 && err.hasCode("BLOB_UPLOAD_INVALID"))
    );
  return isNetworkError(err) || err instanceof TransportError;
}

function backoff(client: RegistryClient, attempt: number): number {
  return Math.min(client.options.retryMaxMs, client.options.retryBaseMs * 2 ** attempt);
}

/** Size and digest of `bytes` bytes hashed into `hash`; a mismatch blames `what` (the source). */
function checkDigest(desc: Descriptor, hash: BlobHash, bytes: number, what: string): void {
  if (desc.size >= 0 && bytes !== desc.size) throw new SizeMismatchError(what, desc.size, bytes);
  const actual = hash.digest();
  if (actual !== desc.digest) throw new DigestMismatchError(what, desc.digest, actual, { source: true });
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
  if (client.options.uploadRules(repo.registry).monolithicOnly) {
    // A monolithic PUT names the digest before the body: a stream whose digest is known only at its end
    // cannot go there in one pass (Google Artifact Registry takes no PATCH).
    stream.destroy();
    throw new FerryError(
      "UNSUPPORTED",
      `${formatRepository(repo)} takes monolithic uploads only, so a layer compressed on the way (--compress) ` +
        "cannot be streamed to it: copy without --compress, or compress into an oci: layout first and push that",
    );
  }
  const session = await newSession(client, repo);
  const hash = blobHash("sha256:", { from: 0, to: -1, size: -1 });
  let n = 0;
  try {
    const counted = async function* () {
      for await (const c of stream) {
        const b = c as Buffer;
        n += b.length;
        hash.update(b);
        progress?.(b.length);
        yield b;
      }
    };
    await patchChunk(client, session, counted(), -1);
    session.offset = n;
    const digest = hash.digest();
    await completeUpload(client, session, digest);
    return { mediaType, digest, size: n };
  } catch (err) {
    stream.destroy();
    await cancelUpload(client, session);
    throw err;
  }
}
