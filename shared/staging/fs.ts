/**
 * Staging in a local directory: the default for local runs (`ferry workflow copy`, tests).
 * Layout: `<root>/<key>` for objects; `<root>/.multipart/<uploadId>/{key,<partNumber>}` for uploads in
 * progress. Completing an upload concatenates the parts into a temporary file by streaming, then renames
 * it into place, so a reader never sees a half-written object. Part ETags are the MD5 of the part (as S3).
 * A directory has no minimum part size (`minPartBytes` 0 unless given): local runs and tests stage in
 * small parts; give S3's 5 MiB to make a local run refuse what S3 would.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { checkKey, checkPartSizes, type StagedPart, StagingError, type StagingStore } from "./types.ts";

const MULTIPART = ".multipart";

export class FsStagingStore implements StagingStore {
  readonly root: string;
  readonly location: string;
  readonly minPartBytes: number;

  constructor(root: string, opts: { minPartBytes?: number } = {}) {
    this.root = root;
    this.location = root;
    this.minPartBytes = opts.minPartBytes ?? 0;
  }

  private path(key: string): string {
    return join(this.root, ...checkKey(key).split("/"));
  }

  private uploadDir(uploadId: string): string {
    if (!/^[a-f0-9]{32}$/.test(uploadId)) throw new StagingError(`unknown multipart upload ${uploadId}`);
    return join(this.root, MULTIPART, uploadId);
  }

  async createMultipart(key: string): Promise<string> {
    checkKey(key);
    const uploadId = randomBytes(16).toString("hex");
    const dir = this.uploadDir(uploadId);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "key"), key);
    return uploadId;
  }

  private async checkUpload(key: string, uploadId: string): Promise<string> {
    const dir = this.uploadDir(uploadId);
    let owner: string;
    try {
      owner = await readFile(join(dir, "key"), "utf8");
    } catch {
      throw new StagingError(`multipart upload ${uploadId} of ${key} does not exist in ${this.location}`);
    }
    if (owner !== key) throw new StagingError(`multipart upload ${uploadId} belongs to ${owner}, not ${key}`);
    return dir;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<StagedPart> {
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000)
      throw new StagingError(`part number ${partNumber} out of range 1..10000`);
    const dir = await this.checkUpload(key, uploadId);
    const tmp = join(dir, `${partNumber}.${randomBytes(4).toString("hex")}.tmp`);
    await writeFile(tmp, body);
    await rename(tmp, join(dir, String(partNumber)));
    return { partNumber, etag: createHash("md5").update(body).digest("hex"), size: body.length };
  }

  async completeMultipart(key: string, uploadId: string, parts: StagedPart[]): Promise<void> {
    const dir = await this.checkUpload(key, uploadId);
    const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber);
    for (let i = 1; i < sorted.length; i++)
      if (sorted[i]!.partNumber === sorted[i - 1]!.partNumber)
        throw new StagingError(`part ${sorted[i]!.partNumber} listed twice`);
    checkPartSizes(this.location, key, sorted, this.minPartBytes);
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.${randomBytes(4).toString("hex")}.tmp`;
    try {
      const out = createWriteStream(tmp);
      const md5s = sorted.map((p) => p.etag.replace(/"/g, ""));
      await pipeline(async function* (this: void) {
        for (const [i, p] of sorted.entries()) {
          const file = join(dir, String(p.partNumber));
          const hash = createHash("md5");
          for await (const c of createReadStream(file)) {
            hash.update(c as Buffer);
            yield c as Buffer;
          }
          if (hash.digest("hex") !== md5s[i])
            throw new StagingError(`part ${p.partNumber} of ${key}: ETag does not match the stored part`);
        }
      }, out);
      await rename(tmp, target);
    } catch (e) {
      await rm(tmp, { force: true });
      if ((e as NodeJS.ErrnoException).code === "ENOENT")
        throw new StagingError(`completing ${key}: a listed part was never uploaded`);
      throw e;
    }
    await rm(dir, { recursive: true, force: true });
  }

  async abortMultipart(_key: string, uploadId: string): Promise<void> {
    try {
      await rm(this.uploadDir(uploadId), { recursive: true, force: true });
    } catch {
      // best effort
    }
  }

  async openRange(key: string, start: number, end?: number): Promise<Readable> {
    const path = this.path(key);
    const size = await this.size(key);
    if (size === undefined) throw new StagingError(`${this.location}/${key} does not exist`);
    const stop = Math.min(end ?? size, size);
    if (start < 0 || start > stop)
      throw new StagingError(`range ${start}-${stop} outside ${key} (${size} bytes)`);
    if (start === stop) return Readable.from([]);
    return createReadStream(path, { start, end: stop - 1, highWaterMark: 256 * 1024 });
  }

  async size(key: string): Promise<number | undefined> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? s.size : undefined;
    } catch {
      return undefined;
    }
  }

  async putObject(key: string, body: Uint8Array | string): Promise<void> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.${randomBytes(4).toString("hex")}.tmp`;
    await writeFile(tmp, body);
    await rename(tmp, target);
  }

  async getObject(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.path(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries: import("node:fs").Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const full = join(dir, e.name);
        if (e.isDirectory()) {
          if (dir === this.root && e.name === MULTIPART) continue;
          await walk(full);
        } else if (e.isFile() && !e.name.endsWith(".tmp")) {
          const key = relative(this.root, full).split(sep).join("/");
          if (key.startsWith(prefix)) out.push(key);
        }
      }
    };
    // Start as deep as the prefix's directories go.
    const dirPart = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    await walk(dirPart ? join(this.root, ...dirPart.split("/")) : this.root);
    return out.sort();
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async deletePrefix(prefix: string): Promise<number> {
    const keys = await this.list(prefix);
    for (const k of keys) await this.delete(k);
    // Remove directories left empty under the prefix.
    if (prefix.endsWith("/")) await rm(this.path(prefix.slice(0, -1)), { recursive: true, force: true });
    return keys.length;
  }

  /** Multipart uploads still open (tests: nothing must be left after a failure). */
  async openUploads(): Promise<string[]> {
    try {
      return await readdir(join(this.root, MULTIPART));
    } catch {
      return [];
    }
  }
}
