/**
 * The content-addressed blob store shared by all repositories, and per-repository blob links.
 * A file only ever appears under `blobs/<alg>/..` by a rename of data whose digest was verified.
 */
import { createHash } from "node:crypto";
import { createReadStream, type ReadStream } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Digest, DigestAlgorithm } from "../names.ts";
import { isMissing, type Layout } from "./layout.ts";

export class BlobStore {
  readonly layout: Layout;

  constructor(layout: Layout) {
    this.layout = layout;
  }

  /** Size of the stored blob, or undefined when absent. */
  async size(d: Digest): Promise<number | undefined> {
    try {
      const st = await stat(this.layout.blob(d));
      return st.isFile() ? st.size : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  /** Streams bytes `start..end` (inclusive) of a blob. */
  read(d: Digest, range?: { start: number; end: number }): ReadStream {
    // 1 MiB reads: a quarter of the syscalls and event-loop turns of the default 64 KiB for large layers
    const hwm = { highWaterMark: 1024 * 1024 };
    return createReadStream(
      this.layout.blob(d),
      range ? { ...hwm, start: range.start, end: range.end } : hwm,
    );
  }

  /** Reads a whole (small) blob, e.g. a manifest. */
  async readAll(d: Digest): Promise<Buffer | undefined> {
    try {
      return await readFile(this.layout.blob(d));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  /**
   * Moves a file whose content the caller has verified to hash to `d` into the store. The data is
   * fsynced first so that even a power loss cannot leave a torn file under the digest. When the
   * blob is already there (an identical concurrent upload won), the file is just removed.
   */
  async commit(file: string, d: Digest): Promise<void> {
    const target = this.layout.blob(d);
    if ((await this.size(d)) !== undefined) {
      await rm(file, { force: true });
      return;
    }
    const fh = await open(file, "r+");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await mkdir(dirname(target), { recursive: true });
    try {
      await rename(file, target);
    } catch (err) {
      // Platforms that refuse to rename over an existing file: an identical copy won the race.
      if ((await this.size(d)) === undefined) throw err;
      await rm(file, { force: true });
    }
  }

  /** Stores small verified bytes (a manifest) under `d`. */
  async putBytes(bytes: Uint8Array, d: Digest): Promise<void> {
    if ((await this.size(d)) !== undefined) return;
    await this.layout.writeAtomic(this.layout.blob(d), bytes, { fsync: true });
  }

  /** Links a stored blob into a repository, making it visible there. */
  async link(name: string, d: Digest): Promise<void> {
    await this.layout.writeAtomic(this.layout.layerLink(name, d), d.value);
  }

  /** Removes a repository's link; the content stays for other repositories. False when not linked. */
  async unlink(name: string, d: Digest): Promise<boolean> {
    const path = this.layout.layerLink(name, d);
    try {
      await stat(path);
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
    await rm(path, { force: true });
    return true;
  }

  /** Size of the blob when it is linked into `name` and present, else undefined. */
  async linkedSize(name: string, d: Digest): Promise<number | undefined> {
    try {
      await stat(this.layout.layerLink(name, d));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    return this.size(d);
  }
}

/** Hashes a file from disk (used when no running hash is available). */
export async function hashFile(path: string, algorithm: DigestAlgorithm): Promise<string> {
  const hash = createHash(algorithm);
  await pipeline(createReadStream(path), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) hash.update(chunk);
  });
  return hash.digest("hex");
}
