/**
 * Applies image layers, in order, into a directory: the root filesystem a container would see.
 *
 * All or nothing (rootfs-target.ts): the tree is built in a temporary sibling of the destination and
 * renamed into place only after the last layer was applied, each layer's stream having ended without
 * error — for a pull that means its digest and size matched (the caller's VerifyingStream fails at the
 * end otherwise). Any failure (digest, corrupt tar or gzip, network, path safety, abort) removes the
 * temporary tree: the destination stays absent, or the empty directory it was. A non-empty destination
 * is refused before any layer is read.
 *
 * Layers are streamed (never buffered): source → decompressor (gzip or zstd, detected from the magic
 * bytes, the media type being only a hint) → byte budget → tar-stream's extract → one entry at a time.
 *
 * Semantics (those of Docker's and containerd's layer appliers):
 * - whiteouts: `.wh.<name>` deletes `<name>` from earlier layers; `.wh..wh..opq` empties its
 *   directory of what earlier layers put there, keeping what the same layer put there (before or
 *   after the marker); other `.wh..wh.*` entries (aufs metadata) are ignored;
 * - an entry replaces whatever is at its path (a directory over a directory merges);
 * - regular files, directories, symlinks and hardlinks are created with their mode (setuid and setgid
 *   bits dropped) and mtime; owners are not applied (ferry does not run as root by design);
 * - character/block devices, fifos and unknown types are skipped and counted (`skipped`).
 *
 * Path safety (layers are untrusted):
 * - an entry name (or hardlink target) with a `..` component is refused with UnsafePathError, before
 *   anything is written for it;
 * - absolute names are made relative (`/etc/passwd` is `etc/passwd`), as tar, Docker and containerd do;
 * - symlinks are never written through: each parent component is checked with lstat, and a symlink
 *   found there is resolved *inside* `dir` as if `dir` were `/` (a chroot): with `a -> /etc`, the
 *   entry `a/passwd` becomes `<dir>/etc/passwd`, never `/etc/passwd`; relative targets with `..`
 *   stop at `dir`. The last component is never followed: an existing symlink there is replaced;
 *   files are created with O_EXCL|O_NOFOLLOW;
 * - hardlink targets resolve the same way and must already exist in `dir` (not directories).
 * - the total uncompressed tar bytes are capped (`maxBytes`): a decompression bomb fails with
 *   ExtractLimitError.
 */
import { constants } from "node:fs";
import {
  chmod,
  type FileHandle,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readlink,
  realpath,
  rm,
  symlink,
  utimes,
} from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { describeError, FerryError, isNetworkError, TransportError } from "../registry/errors.ts";
import type { Descriptor } from "../registry/manifest.ts";
import { compressionOfMediaType, decompressor, detectCompression } from "./compression.ts";
import { DirIndex, type DirNode, type WorkCounters } from "./dir-index.ts";
import { ArchiveError, ExtractLimitError, UnsafePathError } from "./errors.ts";
import { errnoCode } from "./io.ts";
import { commitDir, discardDir, stageDir } from "./rootfs-target.ts";

export type { WorkCounters } from "./dir-index.ts";

/** One layer to apply: its descriptor (media type as a compression hint, digest for messages) and its bytes. */
export interface LayerInput {
  desc: Descriptor;
  /**
   * The layer's bytes. For untrusted sources, a stream that fails at its end unless the digest matched
   * (a VerifyingStream): the tree is committed only when every layer's stream ended cleanly. Destroying
   * the returned stream must release its source (its HTTP response).
   */
  open(): Promise<Readable>;
  /** Names the layer in messages (default `layer <index> (<digest>)`). */
  what?: string;
}

export interface ExtractOptions {
  /** Cap on the total uncompressed tar bytes over all layers (decompression-bomb guard). Default 64 GiB. */
  maxBytes?: number;
  /** Called for each skipped entry (devices, fifos, unknown types). */
  onWarning?: (message: string) => void;
  /** Stops the extraction (the temporary tree is removed); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Incremented with the bookkeeping work done (for tests that check it stays linear in the entries). */
  counters?: WorkCounters;
}

export interface ExtractSummary {
  layers: number;
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  /** `.wh.<name>` and opaque markers applied. */
  whiteouts: number;
  /** Bytes of regular-file content written. */
  bytes: number;
  /** Uncompressed tar bytes read (what maxBytes caps). */
  tarBytes: number;
  /** Devices, fifos and unknown entry types not created. */
  skipped: number;
}

export const DEFAULT_MAX_EXTRACT_BYTES = 64 * 1024 ** 3;
const MAX_SYMLINK_HOPS = 40;
/** fs errors that come from the layer's contents (not from the environment, like ENOSPC or EACCES). */
const LAYER_ERRNOS = new Set([
  "ENOENT",
  "ENOTDIR",
  "EEXIST",
  "ELOOP",
  "ENAMETOOLONG",
  "EINVAL",
  "EISDIR",
  "ENOTEMPTY",
  "EMLINK",
]);
/** File data is written in batches of about this many bytes. */
const WRITE_BATCH = 256 * 1024;
const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";
/** Permission bits applied: rwx for all, plus sticky; setuid/setgid are dropped. */
const MODE_MASK = 0o1777;
const CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

type Header = tar.Header;
/** A tar entry's body as tar-stream hands it over (a streamx Readable). */
type EntryBody = AsyncIterable<unknown> & { readonly destroyed: boolean };

/**
 * Applies `layers` in order into `dir`, all or nothing (see the module comment): `dir` must be absent
 * (its missing parents are created) or an empty directory, else DestinationNotEmptyError before any
 * layer is opened. Throws UnsafePathError, ArchiveError, ExtractLimitError or the layer stream's own
 * error (DigestMismatchError, ...) naming the layer and entry; `dir` is then as it was.
 */
export async function extractLayers(
  dir: string,
  layers: AsyncIterable<LayerInput> | Iterable<LayerInput>,
  opts: ExtractOptions = {},
): Promise<ExtractSummary> {
  opts.signal?.throwIfAborted();
  const staged = await stageDir(dir);
  try {
    const x = new Extractor(await realpath(staged.tmp), opts);
    let i = 0;
    for await (const layer of layers as AsyncIterable<LayerInput>) {
      opts.signal?.throwIfAborted();
      await x.applyLayer(layer, i++);
    }
    opts.signal?.throwIfAborted();
    await x.finish();
    await commitDir(staged);
    return x.summary;
  } catch (err) {
    await discardDir(staged);
    // an abort surfaces as whatever stream it broke: report the abort itself
    throw opts.signal?.aborted ? opts.signal.reason : err;
  }
}

function isAbort(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { name?: unknown }).name === "AbortError";
}

/** `promise`, or a rejection with the signal's reason once it aborts (a late result is then destroyed). */
function abortable(promise: Promise<Readable>, signal: AbortSignal | undefined): Promise<Readable> {
  if (!signal) return promise;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (s) => {
        signal.removeEventListener("abort", onAbort);
        // an abandoned response must still be released, or the client's close() would wait for it
        if (signal.aborted) s.destroy();
        else resolve(s);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

class Extractor {
  readonly summary: ExtractSummary = {
    layers: 0,
    files: 0,
    dirs: 0,
    symlinks: 0,
    hardlinks: 0,
    whiteouts: 0,
    bytes: 0,
    tarBytes: 0,
    skipped: 0,
  };
  private readonly root: string;
  private readonly maxBytes: number;
  private readonly onWarning: ((message: string) => void) | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly work: WorkCounters;
  /** Directories seen under the root: real ones (no lstat needed), and modes/mtimes for the end. */
  private readonly dirs: DirIndex;
  /** Relative paths written by the current layer, with their ancestors (for opaque directories). */
  private touched = new Set<string>();
  private what = "";

  constructor(root: string, opts: ExtractOptions) {
    this.root = root;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_EXTRACT_BYTES;
    this.onWarning = opts.onWarning;
    this.signal = opts.signal;
    this.work = opts.counters ?? { indexVisits: 0, fsCalls: 0 };
    this.dirs = new DirIndex(this.work);
  }

  async applyLayer(layer: LayerInput, index: number): Promise<void> {
    this.what = layer.what ?? `layer ${index} (${layer.desc.digest})`;
    this.touched = new Set();
    const src = await abortable(layer.open(), this.signal);
    // Ctrl-C while a read or a write waits: breaking the source fails every stage after it
    const onAbort = () => src.destroy(this.signal?.reason);
    this.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await this.unpack(src, layer.desc.mediaType);
    } catch (err) {
      throw this.wrap(err);
    } finally {
      this.signal?.removeEventListener("abort", onAbort);
      // Whatever happened, release the source. (A failed layer once left its HTTP response paused
      // mid-body: the client's close() then waited for it forever and Node exited with 13, "unsettled
      // top-level await", instead of printing the error.)
      src.destroy();
    }
    this.summary.layers++;
  }

  /** Streams one layer's tar through the entry handler; resolves once its source ended cleanly. */
  private async unpack(src: Readable, mediaType: string | undefined): Promise<void> {
    const { head, rest } = await peek(src, 6);
    // the magic bytes decide (docker-archive layers are often mislabelled); the media type only
    // decides for a layer too short to tell
    const kind = head.length >= 4 ? detectCompression(head) : compressionOfMediaType(mediaType);
    const stages: Transform[] = [];
    const dec = decompressor(kind, this.what);
    if (dec) stages.push(dec);
    stages.push(this.budget());

    const extract = tar.extract();
    let parseError: unknown;
    extract.on("error", (err: unknown) => {
      parseError ??= err;
    });
    const ac = new AbortController();
    let feedError: unknown;
    const feeding = (pipeline as unknown as (...args: unknown[]) => Promise<void>)(
      rest,
      ...stages,
      async (chunks: AsyncIterable<Buffer>, { signal }: { signal: AbortSignal }) => {
        for await (const chunk of chunks) {
          if (extract.destroyed) return;
          if (!extract.write(chunk)) await writable(extract, signal);
        }
        // only now, after the source ended — its digest verified — may the tar parser finish
        extract.end(undefined);
      },
      { signal: ac.signal },
    ).catch((err: unknown) => {
      feedError ??= err;
      extract.destroy(err as Error);
    });

    try {
      for await (const entry of extract) {
        await this.entry(entry.header, entry);
      }
    } catch (err) {
      ac.abort();
      await feeding;
      // the root cause: a source/decompression/budget failure, else a tar parse error (an entry's body
      // then only says "destroyed"), else the entry handler's own error
      throw feedError !== undefined && !isAbort(feedError) ? feedError : (parseError ?? err);
    }
    await feeding;
    if (feedError !== undefined) throw feedError;
  }

  private wrap(err: unknown): Error {
    if (this.signal?.aborted) return this.signal.reason as Error;
    // a download that broke for good (the client already resumed what it could): name the layer
    if (isNetworkError(err)) {
      const why = err instanceof TransportError ? err.message : describeError(err);
      return new TransportError(`${this.what}: ${why}`, { cause: err });
    }
    if (err instanceof FerryError) return err;
    const e = err instanceof Error ? err : new Error(String(err));
    const code = errnoCode(err) ?? "";
    if (/tar header|end of data|Invalid header|Header exceeds|No body allowed/i.test(e.message)) {
      return new ArchiveError(`${this.what}: corrupt or truncated tar (${e.message})`, { cause: err });
    }
    if (
      code.startsWith("Z_") ||
      code.includes("ZSTD") ||
      /unexpected end of file|incorrect header|zstd/i.test(e.message)
    ) {
      return new ArchiveError(`${this.what}: corrupt or truncated compressed data (${e.message})`, {
        cause: err,
      });
    }
    return e;
  }

  /** Counts uncompressed bytes against the budget. */
  private budget(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) => {
        this.summary.tarBytes += chunk.length;
        if (this.summary.tarBytes > this.maxBytes) {
          cb(
            new ExtractLimitError(
              `${this.what}: uncompressed layers exceed the ${this.maxBytes}-byte extraction limit (decompression bomb?)`,
              this.maxBytes,
            ),
          );
          return;
        }
        cb(null, chunk);
      },
    });
  }

  /** Splits and checks an entry name: no `..`; leading `/`, `.` and empty components dropped. */
  private components(name: string, label = "entry"): string[] {
    const out: string[] = [];
    for (const c of name.split("/")) {
      if (c === "" || c === ".") continue;
      if (c === "..") {
        throw new UnsafePathError(
          `${this.what}: ${label} "${name}" has a ".." component (path traversal); refused`,
          name,
        );
      }
      if (c.includes("\0"))
        throw new UnsafePathError(`${this.what}: ${label} name contains a NUL byte`, name);
      out.push(c);
    }
    return out;
  }

  private async entry(h: Header, body: EntryBody): Promise<void> {
    try {
      await this.applyEntry(h, body);
    } catch (err) {
      // a layer whose entries contradict each other (a path that is a file and a directory, a link
      // into what it replaces): name the entry rather than surface a bare errno
      const code = errnoCode(err);
      if (code && LAYER_ERRNOS.has(code)) {
        throw new ArchiveError(
          `${this.what}: entry "${h.name}" cannot be applied (${(err as Error).message})`,
          {
            cause: err,
          },
        );
      }
      throw err;
    }
    // drain whatever the handler did not read (a body on a symlink, a skipped device), so the tar
    // parser moves on; after an error the whole layer is abandoned instead
    if (!body.destroyed) for await (const _ of body) void _;
  }

  private async applyEntry(h: Header, body: EntryBody): Promise<void> {
    const comps = this.components(h.name);
    if (comps.length === 0) return; // the root itself ("./"): leave dir's own mode alone
    const base = comps.at(-1)!;
    const parentComps = comps.slice(0, -1);

    if (base.startsWith(WHITEOUT)) {
      if (base === OPAQUE) {
        const parent = await this.makeDir(parentComps, h.name);
        this.touch(parent);
        await this.prune(parent);
        this.summary.whiteouts++;
        return;
      }
      if (base.startsWith(`${WHITEOUT}${WHITEOUT}`)) return; // aufs metadata (.wh..wh.plnk, .wh..wh..tmp)
      const victim = base.slice(WHITEOUT.length);
      if (victim === "" || victim === "." || victim === "..") {
        throw new UnsafePathError(`${this.what}: invalid whiteout "${h.name}"`, h.name);
      }
      const parent = await this.resolveDir(parentComps, false, h.name);
      if (parent) await this.remove([...parent, victim]);
      this.summary.whiteouts++;
      return;
    }

    switch (h.type) {
      case "directory":
      case "file":
      case "contiguous-file":
      case "symlink":
      case "link":
        break;
      default: {
        this.summary.skipped++;
        this.onWarning?.(`${this.what}: skipped ${h.type ?? "unknown-type"} entry "${h.name}"`);
        return;
      }
    }

    const parent = await this.makeDir(parentComps, h.name);
    const relParts = [...parent, base];
    const rel = relParts.join("/");
    const abs = join(this.root, rel);
    this.touch(relParts);
    const mode = (h.mode ?? 0o644) & MODE_MASK;

    switch (h.type) {
      case "directory": {
        const existing = await this.lstat(abs);
        if (!existing?.isDirectory()) {
          if (existing) await this.remove(relParts);
          this.work.fsCalls++;
          await mkdir(abs, { mode: 0o700 });
        }
        const node = this.dirs.at(relParts, true);
        node.real = true;
        node.meta = { mode: (h.mode ?? 0o755) & MODE_MASK, mtime: h.mtime };
        this.summary.dirs++;
        return;
      }
      case "file":
      case "contiguous-file": {
        await this.clear(relParts, abs);
        const fh = await open(abs, CREATE_FILE, 0o600);
        try {
          // batch the small chunks tar-stream and zlib hand over into fewer, larger writes
          let batch: Buffer[] = [];
          let batched = 0;
          for await (const data of body) {
            const chunk = data as Buffer;
            batch.push(chunk);
            batched += chunk.length;
            this.summary.bytes += chunk.length;
            if (batched >= WRITE_BATCH) {
              await writeAll(fh, batch, batched);
              batch = [];
              batched = 0;
            }
          }
          if (batched > 0) await writeAll(fh, batch, batched);
          await fh.chmod(mode);
          if (h.mtime) await fh.utimes(h.mtime, h.mtime);
        } finally {
          await fh.close();
        }
        this.summary.files++;
        return;
      }
      case "symlink": {
        const target = h.linkname ?? "";
        if (target === "" || target.includes("\0")) {
          throw new ArchiveError(`${this.what}: symlink "${h.name}" has an empty or invalid target`);
        }
        await this.clear(relParts, abs);
        await symlink(target, abs);
        if (h.mtime) await lutimes(abs, h.mtime, h.mtime).catch(() => {});
        this.summary.symlinks++;
        return;
      }
      case "link": {
        const tcomps = this.components(h.linkname ?? "", "hardlink target");
        if (tcomps.length === 0)
          throw new ArchiveError(`${this.what}: hardlink "${h.name}" has an empty target`);
        const tparent = await this.resolveDir(tcomps.slice(0, -1), false, h.linkname ?? "");
        const tabs = tparent ? join(this.root, ...tparent, tcomps.at(-1)!) : undefined;
        const tstat = tabs ? await this.lstat(tabs) : null;
        if (!tabs || !tstat) {
          throw new ArchiveError(
            `${this.what}: hardlink "${h.name}" -> "${h.linkname}": target not extracted (must come earlier)`,
          );
        }
        if (tstat.isDirectory())
          throw new ArchiveError(
            `${this.what}: hardlink "${h.name}" -> "${h.linkname}": target is a directory`,
          );
        if (tabs === abs) return;
        if (tabs.startsWith(`${abs}/`)) {
          throw new ArchiveError(
            `${this.what}: hardlink "${h.name}" -> "${h.linkname}": target is inside the entry it replaces`,
          );
        }
        await this.clear(relParts, abs);
        await link(tabs, abs);
        this.summary.hardlinks++;
        return;
      }
    }
  }

  /** Marks a path and its ancestors as written by this layer. */
  private touch(parts: string[]): void {
    let rel = "";
    for (const p of parts) {
      rel = rel ? `${rel}/${p}` : p;
      this.touched.add(rel);
    }
  }

  /**
   * Resolves directory components inside the root: lstat each, follow symlinks as if the root were
   * `/` (a `..` stops at the root), create missing directories when `create` (else return null).
   * The result is the list of real directory names under the root.
   */
  private async makeDir(comps: string[], entryName: string): Promise<string[]> {
    return (await this.resolveDir(comps, true, entryName))!;
  }

  private async resolveDir(comps: string[], create: boolean, entryName: string): Promise<string[] | null> {
    const resolved: string[] = [];
    // nodes[i] is the index node of resolved[0..i) (nodes[0] the root): each step looks up one child
    const nodes: DirNode[] = [this.dirs.root];
    const queue = [...comps];
    let hops = 0;
    while (queue.length > 0) {
      const c = queue.shift()!;
      if (c === "" || c === ".") continue;
      if (c === "..") {
        if (resolved.length > 0) {
          resolved.pop();
          nodes.pop();
        }
        continue;
      }
      const here = nodes.at(-1)!;
      const known = this.dirs.child(here, c);
      if (known?.real) {
        resolved.push(c);
        nodes.push(known);
        continue;
      }
      const abs = join(this.root, ...resolved, c);
      const st = await this.lstat(abs);
      if (!st) {
        if (!create) return null;
        this.work.fsCalls++;
        await mkdir(abs, { mode: 0o755 });
      } else if (st.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) {
          throw new UnsafePathError(
            `${this.what}: entry "${entryName}": too many levels of symlinks`,
            entryName,
          );
        }
        this.work.fsCalls++;
        const target = await readlink(abs);
        if (target.startsWith("/")) {
          resolved.length = 0;
          nodes.length = 1;
        }
        queue.unshift(...target.split("/"));
        continue;
      } else if (!st.isDirectory()) {
        if (!create) return null;
        throw new ArchiveError(
          `${this.what}: entry "${entryName}": "${[...resolved, c].join("/")}" is not a directory`,
        );
      }
      const node = this.dirs.child(here, c, true);
      node.real = true;
      resolved.push(c);
      nodes.push(node);
    }
    return resolved;
  }

  /** Makes room for a non-directory entry: removes whatever is at `parts` (never following a symlink). */
  private async clear(parts: string[], abs: string): Promise<void> {
    if (await this.lstat(abs)) await this.remove(parts);
  }

  /**
   * Removes `parts` (recursively, without following symlinks) and forgets what the index knew under
   * it: one walk as deep as the path, whatever the number of directories seen so far.
   */
  private async remove(parts: string[]): Promise<void> {
    this.work.fsCalls++;
    await rm(join(this.root, ...parts), { recursive: true, force: true });
    this.dirs.remove(parts);
  }

  /** Opaque directory: removes what earlier layers put under `parts`, keeping this layer's entries. */
  private async prune(parts: string[]): Promise<void> {
    this.work.fsCalls++;
    const children = await readdir(join(this.root, ...parts), { withFileTypes: true });
    for (const child of children) {
      const childParts = [...parts, child.name];
      if (!this.touched.has(childParts.join("/"))) await this.remove(childParts);
      else if (child.isDirectory()) await this.prune(childParts);
    }
  }

  /** Applies directory modes and mtimes, deepest first. */
  async finish(): Promise<void> {
    for (const [parts, meta] of this.dirs.metaDeepestFirst()) {
      const abs = join(this.root, ...parts);
      // removals forget their subtree, so this is a directory; checked anyway, as chmod and utimes
      // follow symlinks and one pointing outside the root must never be touched
      if (!(await this.lstat(abs))?.isDirectory()) continue;
      await chmod(abs, meta.mode);
      if (meta.mtime) await utimes(abs, meta.mtime, meta.mtime);
    }
  }

  private lstat(path: string) {
    this.work.fsCalls++;
    return lstatOrNull(path);
  }
}

/** Writes every byte of `chunks` (writev may write part of them). */
async function writeAll(fh: FileHandle, chunks: Buffer[], total: number): Promise<void> {
  let { bytesWritten } = await fh.writev(chunks);
  while (bytesWritten < total) {
    const rest = Buffer.concat(chunks).subarray(bytesWritten);
    const r = await fh.write(rest, 0, rest.length);
    bytesWritten += r.bytesWritten;
  }
}

async function lstatOrNull(path: string) {
  try {
    return await lstat(path);
  } catch (err) {
    if (errnoCode(err) === "ENOENT" || errnoCode(err) === "ENOTDIR") return null;
    throw err;
  }
}

/** Waits until a streamx writable drains, closes, or the pipeline is aborted. */
function writable(stream: tar.Extract, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
    signal.addEventListener("abort", done, { once: true });
    if (signal.aborted) done();
  });
}

/**
 * Reads at least `n` bytes (or to the end) from `src` and returns them with a stream of everything
 * (those bytes included), without buffering beyond the first chunks.
 */
async function peek(src: Readable, n: number): Promise<{ head: Buffer; rest: Readable }> {
  const it = (src as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let len = 0;
  let ended = false;
  while (len < n) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    chunks.push(chunk);
    len += chunk.length;
  }
  const head = Buffer.concat(chunks);
  async function* all(): AsyncGenerator<Buffer> {
    try {
      if (head.length) yield head;
      if (ended) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    } finally {
      await it.return?.();
    }
  }
  return { head, rest: Readable.from(all(), { objectMode: false }) };
}
