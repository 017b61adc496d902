/**
 * Upload sessions: `<root>/uploads/<uuid>/data` receives the bytes, `info.json` names the
 * repository. The sha256 of the data is kept running in memory across PATCHes; after a restart (or
 * an interrupted request) it is recomputed from the file when the upload completes.
 */
import { createHash, type Hash, randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { RegistryError } from "../errors.ts";
import { type Digest, isValidUploadId } from "../names.ts";
import { type BlobStore, hashFile } from "./blobs.ts";
import { isMissing, type Layout } from "./layout.ts";

/** An upload session. `offset` is the number of bytes received so far. */
export interface UploadSession {
  readonly id: string;
  readonly name: string;
  readonly startedAt: number;
  offset: number;
  /** Running sha256 of bytes 0..offset, or null when it must be recomputed from the file. */
  hash: Hash | null;
  /** Tail of the chain of operations on this session (they run one at a time). */
  lock: Promise<void>;
  busy: number;
  lastActive: number;
  done: boolean;
}

/** The `Range` header value for a session: `0-<last byte>`, `0-0` when empty (as distribution does). */
export function rangeHeader(offset: number): string {
  return `0-${Math.max(0, offset - 1)}`;
}

export interface UploadStoreOptions {
  /** Sessions open at once (in memory or on disk); beyond it `create` throws TOOMANYREQUESTS. */
  maxSessions: number;
  /** The clock for session ages; compared with file mtimes, so it must follow real time (tests shift it). */
  now: () => number;
}

export class UploadStore {
  readonly layout: Layout;
  readonly blobs: BlobStore;
  private readonly sessions = new Map<string, UploadSession>();
  /** Ids of every open session, loaded or not: what the cap counts. */
  private readonly open = new Set<string>();
  private readonly maxSessions: number;
  private readonly now: () => number;

  constructor(layout: Layout, blobs: BlobStore, opts: UploadStoreOptions) {
    this.layout = layout;
    this.blobs = blobs;
    this.maxSessions = opts.maxSessions;
    this.now = opts.now;
  }

  /** Counts the sessions left on disk by an earlier run (they count against the cap until purged). */
  async init(): Promise<void> {
    for (const id of await listDir(this.layout.uploads)) if (isValidUploadId(id)) this.open.add(id);
  }

  private dataPath(id: string): string {
    return join(this.layout.upload(id), "data");
  }

  /** Opens a new empty session for repository `name`. */
  async create(name: string): Promise<UploadSession> {
    if (this.open.size >= this.maxSessions) {
      throw new RegistryError("TOOMANYREQUESTS", {
        message: `too many open upload sessions (${this.maxSessions}): finish or cancel some`,
        headers: { "Retry-After": "5" },
      });
    }
    const id = randomUUID();
    const dir = this.layout.upload(id);
    const now = this.now();
    // Taken before the first await, so that concurrent POSTs cannot overshoot the cap.
    this.open.add(id);
    try {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, "data"), "");
      await this.layout.writeAtomic(join(dir, "info.json"), JSON.stringify({ name, startedAt: now }));
    } catch (err) {
      this.open.delete(id);
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    const session: UploadSession = {
      id,
      name,
      startedAt: now,
      offset: 0,
      hash: createHash("sha256"),
      lock: Promise.resolve(),
      busy: 0,
      lastActive: now,
      done: false,
    };
    this.sessions.set(id, session);
    return session;
  }

  /** Finds session `id` of repository `name` (from memory, or from disk after a restart). */
  async get(name: string, id: string): Promise<UploadSession> {
    const unknown = () => new RegistryError("BLOB_UPLOAD_UNKNOWN", { detail: { uuid: id.slice(0, 64) } });
    if (!isValidUploadId(id)) throw unknown();
    let session = this.sessions.get(id);
    if (!session) {
      let info: { name?: unknown; startedAt?: unknown };
      let size: number;
      try {
        info = JSON.parse(await readFile(join(this.layout.upload(id), "info.json"), "utf8"));
        size = (await stat(this.dataPath(id))).size;
      } catch (err) {
        if (isMissing(err) || err instanceof SyntaxError) throw unknown();
        throw err;
      }
      if (typeof info.name !== "string") throw unknown();
      const startedAt = typeof info.startedAt === "number" ? info.startedAt : this.now();
      session = this.sessions.get(id) ?? {
        id,
        name: info.name,
        startedAt,
        offset: size,
        hash: null,
        lock: Promise.resolve(),
        busy: 0,
        lastActive: this.now(),
        done: false,
      };
      this.sessions.set(id, session);
      this.open.add(id);
    }
    if (session.name !== name || session.done) throw unknown();
    return session;
  }

  /** Runs `fn` with exclusive access to the session. */
  async withLock<T>(session: UploadSession, fn: () => Promise<T>): Promise<T> {
    const previous = session.lock;
    let release!: () => void;
    session.lock = new Promise((r) => {
      release = r;
    });
    session.busy++;
    try {
      await previous;
      if (session.done) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", { detail: { uuid: session.id } });
      return await fn();
    } finally {
      session.busy--;
      session.lastActive = this.now();
      release();
    }
  }

  /**
   * Appends a request body to the session (call under `withLock`). With `range` the chunk must
   * start at the current offset (else 416) and be exactly `end - start + 1` bytes long (else it is
   * rolled back). When the client goes away mid-body, what was written is kept and the offset
   * follows the file, so the client can resume from `GET <location>`.
   */
  async append(
    session: UploadSession,
    body: Readable,
    range?: { start: number; end: number },
  ): Promise<void> {
    if (range && range.start !== session.offset) {
      throw new RegistryError("BLOB_UPLOAD_INVALID", {
        status: 416,
        message: `chunk starts at ${range.start}, the upload is at ${session.offset}`,
        headers: { Range: rangeHeader(session.offset), "Docker-Upload-UUID": session.id },
      });
    }
    const path = this.dataPath(session.id);
    const before = session.offset;
    const snapshot = session.hash?.copy() ?? null;
    const limit = range ? range.end - range.start + 1 : Number.POSITIVE_INFINITY;
    const hash = session.hash;
    let received = 0;
    const out = createWriteStream(path, { flags: "a" });
    try {
      await pipeline(
        body,
        async function* count(source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            received += chunk.length;
            // Too long: read on (so that the error can still be answered) but write no more.
            if (received > limit) continue;
            hash?.update(chunk);
            yield chunk;
          }
        },
        out,
      );
    } catch (err) {
      if (!out.closed) await new Promise<void>((r) => out.once("close", () => r()));
      // Interrupted: keep whatever reached the file; the running hash no longer matches it.
      session.offset = (await stat(path)).size;
      session.hash = session.offset === before ? snapshot : null;
      throw err;
    }
    session.offset = before + received;
    if (range && received !== limit) {
      await this.rollback(session, before, snapshot);
      throw new RegistryError("SIZE_INVALID", {
        message: `chunk of ${received} bytes does not match its Content-Range (${limit} bytes)`,
      });
    }
  }

  private async rollback(session: UploadSession, offset: number, hash: Hash | null): Promise<void> {
    await truncate(this.dataPath(session.id), offset);
    session.offset = offset;
    session.hash = hash;
  }

  /**
   * Completes the session (call under `withLock`): checks the data against `digest` and moves it
   * into the blob store, or discards the upload and throws DIGEST_INVALID.
   */
  async complete(session: UploadSession, digest: Digest): Promise<void> {
    const path = this.dataPath(session.id);
    let actual: string;
    if (digest.algorithm === "sha256" && session.hash) {
      actual = session.hash.digest("hex");
      session.hash = null;
    } else {
      actual = await hashFile(path, digest.algorithm);
    }
    if (actual !== digest.hex) {
      await this.discard(session);
      throw new RegistryError("DIGEST_INVALID", {
        detail: { expected: digest.value, actual: `${digest.algorithm}:${actual}` },
      });
    }
    await this.blobs.commit(path, digest);
    await this.discard(session);
  }

  /** Forgets the session and deletes its files. */
  async discard(session: UploadSession): Promise<void> {
    session.done = true;
    this.sessions.delete(session.id);
    this.open.delete(session.id);
    await rm(this.layout.upload(session.id), { recursive: true, force: true });
  }

  /**
   * Deletes sessions idle for more than `maxAgeMs` (judged by the data file's mtime, so a slow
   * upload that keeps sending stays alive), and stale temp files.
   */
  async purge(maxAgeMs: number): Promise<void> {
    const now = this.now();
    for (const id of await listDir(this.layout.uploads)) {
      const live = this.sessions.get(id);
      if (live && (live.busy > 0 || now - live.lastActive <= maxAgeMs)) continue;
      const dir = this.layout.upload(id);
      const mtime = await mtimeOf(join(dir, "data"), await mtimeOf(dir, 0));
      if (now - mtime <= maxAgeMs) continue;
      if (live) {
        if (live.busy > 0) continue;
        live.done = true;
        this.sessions.delete(id);
      }
      await rm(dir, { recursive: true, force: true });
      this.open.delete(id);
    }
    for (const name of await listDir(this.layout.tmp)) {
      const path = join(this.layout.tmp, name);
      if (now - (await mtimeOf(path, now)) > maxAgeMs) await rm(path, { recursive: true, force: true });
    }
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
}

async function mtimeOf(path: string, fallback: number): Promise<number> {
  try {
    return (await stat(path)).mtimeMs;
  } catch (err) {
    if (isMissing(err)) return fallback;
    throw err;
  }
}
