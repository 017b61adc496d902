/**
 * Per-repository metadata: manifest links, tags, the referrers index, and the catalog walk.
 * Manifest bytes themselves live in the shared blob store.
 */
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { type Digest, isValidName, isValidTag, parseDigest } from "../names.ts";
import type { BlobStore } from "./blobs.ts";
import { isMissing, type Layout } from "./layout.ts";

/** What a repository records about a manifest revision. */
export interface ManifestLink {
  /** The media type the manifest was pushed with: served back as its Content-Type. */
  mediaType: string;
  size: number;
  /** Digest of the manifest's `subject`, when it has one. */
  subject?: string;
}

/** A descriptor as listed by the referrers API. */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export class RepoStore {
  readonly layout: Layout;
  readonly blobs: BlobStore;

  constructor(layout: Layout, blobs: BlobStore) {
    this.layout = layout;
    this.blobs = blobs;
  }

  /** True once a manifest has been pushed to `name`. */
  async exists(name: string): Promise<boolean> {
    return isDir(this.layout.manifestsDir(name));
  }

  /** The link and bytes of a manifest revision in `name`, or undefined. */
  async getManifest(name: string, d: Digest): Promise<{ link: ManifestLink; bytes: Buffer } | undefined> {
    const link = await this.manifestLink(name, d);
    if (!link) return undefined;
    const bytes = await this.blobs.readAll(d);
    return bytes ? { link, bytes } : undefined;
  }

  /** The link of a manifest revision, or undefined when the repository does not have it. */
  async manifestLink(name: string, d: Digest): Promise<ManifestLink | undefined> {
    const text = await readText(this.layout.manifestLink(name, d));
    if (text === undefined) return undefined;
    try {
      const link = JSON.parse(text) as ManifestLink;
      return typeof link.mediaType === "string" && typeof link.size === "number" ? link : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Stores manifest bytes (already verified to hash to `d`), links them into `name`, records it
   * as a referrer of its subject, and finally points `tag` at it.
   */
  async putManifest(
    name: string,
    d: Digest,
    bytes: Uint8Array,
    link: ManifestLink,
    referrer?: { subject: Digest; descriptor: ReferrerDescriptor },
    tag?: string,
  ): Promise<void> {
    await this.blobs.putBytes(bytes, d);
    await this.layout.writeAtomic(this.layout.manifestLink(name, d), JSON.stringify(link));
    if (referrer) {
      const path = this.layout.referrer(name, referrer.subject, d);
      await this.layout.writeAtomic(path, JSON.stringify(referrer.descriptor));
    }
    if (tag !== undefined) await this.layout.writeAtomic(this.layout.tag(name, tag), d.value);
  }

  /** The digest a tag points at, or undefined. */
  async resolveTag(name: string, tag: string): Promise<Digest | undefined> {
    const text = await readText(this.layout.tag(name, tag));
    return text === undefined ? undefined : parseDigest(text.trim());
  }

  /** Removes a tag (not the manifest). False when there was no such tag. */
  async deleteTag(name: string, tag: string): Promise<boolean> {
    if ((await this.resolveTag(name, tag)) === undefined) return false;
    await rm(this.layout.tag(name, tag), { force: true });
    return true;
  }

  /** Removes a manifest revision from `name` with its tags and referrer entry. False when absent. */
  async deleteManifest(name: string, d: Digest): Promise<boolean> {
    const link = await this.manifestLink(name, d);
    if (!link) return false;
    const subject = link.subject ? parseDigest(link.subject) : undefined;
    if (subject) await rm(this.layout.referrer(name, subject, d), { force: true });
    for (const tag of (await this.listTags(name)) ?? []) {
      if ((await this.resolveTag(name, tag))?.value === d.value)
        await rm(this.layout.tag(name, tag), { force: true });
    }
    await rm(this.layout.manifestLink(name, d), { force: true });
    return true;
  }

  /** Tags of `name`, sorted; undefined when the repository is unknown. */
  async listTags(name: string): Promise<string[] | undefined> {
    if (!(await this.exists(name))) return undefined;
    const entries = await readDirSafe(this.layout.tagsDir(name));
    return entries.filter(isValidTag).sort(compareStrings);
  }

  /** Every repository that holds at least one manifest, sorted. */
  async listRepositories(): Promise<string[]> {
    const found: string[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch((err) => {
        if (isMissing(err)) return [];
        throw err;
      });
      for (const entry of entries) {
        if (!entry.isDirectory()) continue;
        if (entry.name === "_manifests" && prefix !== "") found.push(prefix);
        if (entry.name.startsWith("_")) continue;
        const name = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
        if (isValidName(name)) await walk(join(dir, entry.name), name);
      }
    };
    await walk(this.layout.repositories, "");
    return found.sort(compareStrings);
  }

  /** Descriptors of the manifests in `name` whose subject is `subject`, sorted by digest. */
  async listReferrers(name: string, subject: Digest): Promise<ReferrerDescriptor[]> {
    const dir = this.layout.referrersDir(name, subject);
    const out: ReferrerDescriptor[] = [];
    for (const file of await readDirSafe(dir)) {
      const d = parseDigest(file.replace("-", ":"));
      if (!d || !(await this.manifestLink(name, d))) continue;
      const text = await readText(join(dir, file));
      if (text === undefined) continue;
      try {
        out.push(JSON.parse(text) as ReferrerDescriptor);
      } catch {
        // a torn entry (cannot happen with atomic writes, but never fail the listing for it)
      }
    }
    return out.sort((a, b) => compareStrings(a.digest, b.digest));
  }
}

/** Byte-wise (code point) string order, as the spec's "lexical" order. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if (isMissing(err) || (err as NodeJS.ErrnoException).code === "EISDIR") return undefined;
    throw err;
  }
}

async function readDirSafe(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}
