/**
 * Where things live under the registry root, and small filesystem helpers (atomic writes).
 *
 * ```
 * <root>/blobs/<alg>/<hex[0:2]>/<hex>                      content, one copy per digest
 * <root>/repositories/<name>/_layers/<alg>/<hex>            blob link: the blob is visible in <name>
 * <root>/repositories/<name>/_manifests/revisions/<alg>/<hex>   manifest link (JSON: media type, size, subject)
 * <root>/repositories/<name>/_manifests/tags/<tag>          tag → digest
 * <root>/repositories/<name>/_referrers/<alg>/<subject hex>/<alg>-<hex>   referrer descriptor (JSON)
 * <root>/uploads/<uuid>/{data,info.json}                    upload sessions
 * <root>/tmp/                                                temp files, renamed into place
 * ```
 * Every path is built from values that passed the grammar checks of names.ts; `inside` re-checks
 * that the result stays under the root as a second line of defence.
 */
import { randomUUID } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import type { Digest } from "../names.ts";

export class Layout {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /** Joins under the root and refuses anything that would resolve outside it. */
  inside(...parts: string[]): string {
    const p = resolve(this.root, ...parts);
    if (p !== this.root && !p.startsWith(this.root + sep))
      throw new Error(`path escapes the registry root: ${p}`);
    return p;
  }

  blob(d: Digest): string {
    return this.inside("blobs", d.algorithm, d.hex.slice(0, 2), d.hex);
  }

  get repositories(): string {
    return this.inside("repositories");
  }

  repo(name: string): string {
    return this.inside("repositories", ...name.split("/"));
  }

  layerLink(name: string, d: Digest): string {
    return join(this.repo(name), "_layers", d.algorithm, d.hex);
  }

  manifestsDir(name: string): string {
    return join(this.repo(name), "_manifests");
  }

  manifestLink(name: string, d: Digest): string {
    return join(this.manifestsDir(name), "revisions", d.algorithm, d.hex);
  }

  tagsDir(name: string): string {
    return join(this.manifestsDir(name), "tags");
  }

  tag(name: string, tag: string): string {
    return join(this.tagsDir(name), tag);
  }

  referrersDir(name: string, subject: Digest): string {
    return join(this.repo(name), "_referrers", subject.algorithm, subject.hex);
  }

  referrer(name: string, subject: Digest, d: Digest): string {
    return join(this.referrersDir(name, subject), `${d.algorithm}-${d.hex}`);
  }

  get uploads(): string {
    return this.inside("uploads");
  }

  upload(id: string): string {
    return this.inside("uploads", id);
  }

  get tmp(): string {
    return this.inside("tmp");
  }

  /** A fresh temp file path in `<root>/tmp` (same filesystem as everything else, so rename is atomic). */
  tempFile(): string {
    return join(this.tmp, randomUUID());
  }

  async init(): Promise<void> {
    for (const dir of ["blobs", "repositories", "uploads", "tmp"])
      await mkdir(this.inside(dir), { recursive: true });
  }

  /**
   * Writes `data` to `path` atomically: temp file, optional fsync, rename. Readers see the old
   * content or the new one, never a torn file.
   */
  async writeAtomic(path: string, data: string | Uint8Array, opts: { fsync?: boolean } = {}): Promise<void> {
    const tmp = this.tempFile();
    const fh = await open(tmp, "w");
    try {
      await fh.writeFile(data);
      if (opts.fsync) await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await mkdir(dirname(path), { recursive: true });
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}

/** True for "no such file or directory" (and "not a directory", which a missing parent can give). */
export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}
