/**
 * Small streaming helpers shared by the archive sinks and sources: pumping a blob through a
 * VerifyingStream into a destination (resuming a broken source from the offset reached), atomic file
 * writes, and a length guard that makes a short read fail instead of ending early.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, rmSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  pipeline as pipelineCallback,
  type Readable,
  Transform,
  type TransformCallback,
  type Writable,
} from "node:stream";
import { pipeline } from "node:stream/promises";
import { type Digest, VerifyingStream } from "../registry/digest.ts";
import type { Descriptor } from "../registry/manifest.ts";
import { ArchiveError } from "./errors.ts";

/** Error codes of a broken connection or file read that a fresh `open(offset)` may get past. */
const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
  "EAI_AGAIN",
]);

function isTransient(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as { retryable?: unknown; code?: unknown };
  if (e.retryable === true) return true;
  return typeof e.code === "string" && TRANSIENT_CODES.has(e.code);
}

export interface PumpOptions {
  /** Names the blob in errors. */
  what: string;
  progress?: ((bytes: number) => void) | undefined;
  /** Sees every chunk as it passes (before verification completes). */
  onChunk?: ((chunk: Buffer) => void) | undefined;
  /** Attempts to reopen the source after a transient failure without progress being lost (default 3). */
  attempts?: number;
}

/**
 * Streams a blob from `open(offset)` through a VerifyingStream into `dest` and resolves once `dest`
 * has finished. The stream into `dest` fails (and `dest` is destroyed) when the size or digest does
 * not match, so the caller must only commit `dest`'s result after this resolves. A transient source
 * failure reopens the source at the offset reached (the hash state is kept). Returns the bytes read.
 */
export async function pumpVerified(
  desc: Descriptor,
  open: (offset: number) => Promise<Readable>,
  dest: Writable,
  opts: PumpOptions,
): Promise<number> {
  const verifier = new VerifyingStream({ digest: desc.digest, size: desc.size, what: opts.what });
  const done = pipeline(verifier, dest);
  done.catch(() => {});
  let offset = 0;
  let failures = 0;
  for (;;) {
    let src: Readable | undefined;
    const before = offset;
    try {
      src = await open(offset);
      for await (const chunk of src as AsyncIterable<Buffer>) {
        if (verifier.errored || verifier.destroyed) break;
        offset += chunk.length;
        opts.onChunk?.(chunk);
        opts.progress?.(chunk.length);
        if (!verifier.write(chunk)) await drained(verifier);
      }
      if (verifier.errored || verifier.destroyed) {
        src.destroy();
        await done; // rejects with the verifier's (or the destination's) error
        throw new ArchiveError(`${opts.what}: writing stopped unexpectedly`);
      }
      break;
    } catch (err) {
      src?.destroy();
      const stopped = verifier.errored ?? (verifier.destroyed ? err : undefined);
      if (stopped) {
        await done.catch(() => {});
        throw verifier.errored ?? err;
      }
      failures = offset > before ? 1 : failures + 1;
      if (!isTransient(err) || failures >= (opts.attempts ?? 3)) {
        verifier.destroy(err as Error);
        await done.catch(() => {});
        throw err;
      }
    }
  }
  verifier.end();
  await done;
  return offset;
}

/** Waits for `drain`; rejects on `error`; resolves on `close` (the caller then sees `destroyed`). */
function drained(stream: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      stream.off("drain", onDrain);
      stream.off("error", onError);
      stream.off("close", onDrain);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    stream.on("drain", onDrain);
    stream.on("error", onError);
    stream.on("close", onDrain);
  });
}

/**
 * A pass-through that errors when the stream ends before `expected` bytes (a file truncated or
 * replaced under a reader): "must fail rather than end early".
 */
export function lengthGuard(expected: number, what: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      seen += chunk.length;
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      cb(
        seen === expected
          ? null
          : new ArchiveError(`${what}: read ${seen} bytes, expected ${expected} (file truncated?)`),
      );
    },
  });
}

/**
 * Writes a stream whose digest is not known in advance to a new file `path`, hashing (sha256) on the
 * way. Returns the digest and size; the caller commits (renames) the file under its digest.
 */
export async function spoolHashed(
  stream: Readable,
  path: string,
  progress?: (bytes: number) => void,
): Promise<{ digest: Digest; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  const fh = await open(path, "wx", 0o644);
  await pipeline(
    stream,
    new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
        hash.update(chunk);
        size += chunk.length;
        progress?.(chunk.length);
        cb(null, chunk);
      },
    }),
    fh.createWriteStream(),
  );
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

/**
 * Reads `length` bytes of `file` from `start`, as a stream that fails (rather than ends early) when
 * the file turns out shorter. Destroying the returned stream closes the file.
 */
export function openFileRange(file: string, start: number, length: number, what: string): Readable {
  if (length === 0) {
    const empty = lengthGuard(0, what);
    empty.end();
    return empty;
  }
  const guard = lengthGuard(length, what);
  pipelineCallback(createReadStream(file, { start, end: start + length - 1 }), guard, () => {});
  return guard;
}

/** A unique temporary name next to `file` (same directory, so a rename commits it atomically). */
export function tempNameFor(file: string, label = "tmp"): string {
  return join(dirname(file), `.ferry-${label}-${randomBytes(6).toString("hex")}`);
}

/** Writes `data` to `file` atomically: a temporary file in the same directory, fsync, rename. */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = tempNameFor(file);
  const fh = await open(tmp, "wx", 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function errnoCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null
    ? ((err as { code?: unknown }).code as string | undefined)
    : undefined;
}

/**
 * Temporary output of sinks not closed yet (a partial archive, a layout being built for one): removed if
 * the process exits first (a copy that failed). `pending` false forgets it (committed or removed).
 */
const partialFiles = new Set<string>();
let exitHook = false;
export function removeAtExit(path: string, pending: boolean): void {
  if (!pending) {
    partialFiles.delete(path);
    return;
  }
  partialFiles.add(path);
  if (!exitHook) {
    exitHook = true;
    process.once("exit", () => {
      for (const f of partialFiles) rmSync(f, { recursive: true, force: true });
    });
  }
}
