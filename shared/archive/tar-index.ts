/**
 * A random-access index of a tar file: one pass over the 512-byte headers (seeking past the bodies,
 * so indexing a multi-GiB archive reads a few KiB), then any entry is read in place with
 * fs.createReadStream({start, end}). Handles ustar prefixes, GNU long names (`L`/`K`), pax headers
 * (`path`, `linkpath`, `size`) and base-256 sizes; symlinks and hardlinks resolve inside the archive.
 */
import { open } from "node:fs/promises";
import type { Readable } from "node:stream";
import { detectCompression } from "./compression.ts";
import { ArchiveError, UnsafePathError } from "./errors.ts";
import { openFileRange } from "./io.ts";

export type TarEntryType = "file" | "directory" | "symlink" | "link" | "other";

export interface TarEntryInfo {
  /** Normalised name: no leading `/` or `./`, no trailing `/`. */
  name: string;
  /** The name as written in the archive. */
  rawName: string;
  type: TarEntryType;
  /** The raw typeflag character. */
  typeflag: string;
  /** Offset of the entry's data in the file. */
  offset: number;
  size: number;
  linkname: string;
  mode: number;
}

export interface TarIndex {
  readonly file: string;
  readonly fileSize: number;
  /** By normalised name; a later entry with the same name replaces an earlier one (as extraction would). */
  readonly entries: ReadonlyMap<string, TarEntryInfo>;
}

/** Largest GNU long-name or pax header accepted. */
const MAX_META_BYTES = 1024 * 1024;
const BLOCK = 512;

/**
 * Normalises an archive path: drops a leading `/`, `.` and empty components; refuses `..`
 * (UnsafePathError). Returns "" for the archive root.
 */
export function normaliseArchivePath(raw: string, what: string): string {
  const out: string[] = [];
  for (const c of raw.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..")
      throw new UnsafePathError(`${what}: entry "${raw}" has a ".." component (path traversal)`, raw);
    if (c.includes("\0")) throw new UnsafePathError(`${what}: entry name contains a NUL byte`, raw);
    out.push(c);
  }
  return out.join("/");
}

function cString(buf: Buffer, start: number, len: number): string {
  let end = start;
  while (end < start + len && buf[end] !== 0) end++;
  return buf.toString("utf8", start, end);
}

function parseNumeric(buf: Buffer, start: number, len: number, field: string, what: string): number {
  const first = buf[start]!;
  if (first & 0x80) {
    // base-256 (GNU): big-endian two's complement, top bit set
    if (first === 0xff) throw new ArchiveError(`${what}: negative ${field} in tar header`);
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) {
      v = v * 256 + buf[start + i]!;
      if (!Number.isSafeInteger(v)) throw new ArchiveError(`${what}: ${field} in tar header is too large`);
    }
    return v;
  }
  const s = buf
    .toString("latin1", start, start + len)
    .replace(/\0.*$/s, "")
    .trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s))
    throw new ArchiveError(`${what}: invalid ${field} ${JSON.stringify(s)} in tar header`);
  return Number.parseInt(s, 8);
}

function checksumOk(header: Buffer, what: string): boolean {
  let stored: number;
  try {
    stored = parseNumeric(header, 148, 8, "checksum", what);
  } catch {
    return false;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : header[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

function parsePax(buf: Buffer, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < buf.length) {
    const space = buf.indexOf(0x20, pos);
    if (space < 0) break;
    const len = Number.parseInt(buf.toString("latin1", pos, space), 10);
    if (!Number.isSafeInteger(len) || len <= 0 || pos + len > buf.length) {
      if (buf[pos] === 0) break; // NUL padding
      throw new ArchiveError(`${what}: malformed pax header record`);
    }
    const record = buf.toString("utf8", space + 1, pos + len - 1);
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

function typeOf(flag: string, name: string): TarEntryType {
  switch (flag) {
    case "0":
    case "\0":
    case "7":
    case "":
      return name.endsWith("/") ? "directory" : "file";
    case "1":
      return "link";
    case "2":
      return "symlink";
    case "5":
      return "directory";
    default:
      return "other";
  }
}

/** Reads every header of a tar file. `what` names the archive in errors. */
export async function indexTar(file: string, what = file): Promise<TarIndex> {
  const fh = await open(file, "r").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") throw new ArchiveError(`${what}: file not found`);
    throw err;
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ArchiveError(`${what}: not a regular file`);
    const fileSize = st.size;
    const entries = new Map<string, TarEntryInfo>();
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    let longName: string | undefined;
    let longLink: string | undefined;
    let pax: Record<string, string> | undefined;
    let globalPax: Record<string, string> = {};
    let count = 0;

    const readExact = async (buf: Buffer, at: number, len: number, label: string) => {
      const { bytesRead } = await fh.read(buf, 0, len, at);
      if (bytesRead !== len) {
        throw new ArchiveError(
          `${what}: truncated tar (${label} at offset ${at} needs ${len} bytes, file has ${fileSize})`,
        );
      }
    };

    for (;;) {
      if (pos === fileSize) {
        if (count === 0) throw new ArchiveError(`${what}: empty file, not a tar archive`);
        break; // end without the zero blocks, as Go's archive/tar accepts
      }
      if (count === 0) {
        const head = Buffer.alloc(Math.min(8, fileSize));
        await fh.read(head, 0, head.length, 0);
        const kind = detectCompression(head);
        if (kind !== "none")
          throw new ArchiveError(`${what}: not a tar archive: ${kind}-compressed (decompress it first)`);
      }
      if (pos + BLOCK > fileSize) {
        throw new ArchiveError(
          `${what}: truncated tar (partial header at offset ${pos}, file has ${fileSize} bytes)`,
        );
      }
      await readExact(header, pos, BLOCK, "header");
      if (header.every((b) => b === 0)) break;
      if (!checksumOk(header, what)) {
        throw new ArchiveError(
          count === 0
            ? `${what}: not a tar archive (bad header checksum; is it compressed?)`
            : `${what}: corrupt tar header at offset ${pos} (bad checksum)`,
        );
      }
      count++;
      const flag = String.fromCharCode(header[156]!).replace("\0", "");
      const magic = header.toString("latin1", 257, 263);
      let name = cString(header, 0, 100);
      if (magic === "ustar\0") {
        const prefix = cString(header, 345, 155);
        if (prefix) name = `${prefix}/${name}`;
      }
      let size = parseNumeric(header, 124, 12, "size", `${what}: entry "${name}"`);
      const linkFromHeader = cString(header, 157, 100);
      const mode = parseNumeric(header, 100, 8, "mode", `${what}: entry "${name}"`);
      const dataOffset = pos + BLOCK;

      if (flag === "L" || flag === "K" || flag === "x" || flag === "g") {
        if (size > MAX_META_BYTES)
          throw new ArchiveError(`${what}: tar meta header of ${size} bytes at offset ${pos} is too large`);
        const buf = Buffer.alloc(size);
        await readExact(buf, dataOffset, size, `long name/pax data`);
        if (flag === "L") longName = cString(buf, 0, size);
        else if (flag === "K") longLink = cString(buf, 0, size);
        else if (flag === "x") pax = parsePax(buf, what);
        else globalPax = { ...globalPax, ...parsePax(buf, what) };
        pos = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
        continue;
      }

      const ext = { ...globalPax, ...pax };
      if (longName !== undefined) name = longName;
      if (ext.path !== undefined) name = ext.path;
      let linkname = longLink ?? linkFromHeader;
      if (ext.linkpath !== undefined) linkname = ext.linkpath;
      if (ext.size !== undefined) {
        const n = Number(ext.size);
        if (!Number.isSafeInteger(n) || n < 0)
          throw new ArchiveError(`${what}: entry "${name}": invalid pax size`);
        size = n;
      }
      longName = longLink = pax = undefined;

      const type = typeOf(flag, name);
      // only regular files carry data (hardlinks, symlinks, dirs have none, whatever the size field says)
      const dataSize = type === "file" || type === "other" ? size : 0;
      if (dataOffset + dataSize > fileSize) {
        throw new ArchiveError(
          `${what}: truncated tar: entry "${name}" needs ${dataSize} bytes at offset ${dataOffset}, the file has ${fileSize}`,
        );
      }
      const normalised = normaliseArchivePath(name, what);
      if (normalised !== "") {
        entries.set(normalised, {
          name: normalised,
          rawName: name,
          type,
          typeflag: flag,
          offset: dataOffset,
          size: dataSize,
          linkname,
          mode,
        });
      }
      pos = dataOffset + Math.ceil(dataSize / BLOCK) * BLOCK;
    }
    return { file, fileSize, entries };
  } finally {
    await fh.close();
  }
}

/**
 * Finds the regular file `name` in the archive, following symlinks (relative to the link's directory,
 * also in parent components) and hardlinks, all of which must stay inside the archive.
 */
export function resolveTarEntry(index: TarIndex, name: string, what: string): TarEntryInfo {
  let comps = normaliseArchivePath(name, what).split("/").filter(Boolean);
  let hops = 0;
  const hop = () => {
    if (++hops > 40) throw new ArchiveError(`${what}: too many links resolving "${name}"`);
  };
  restart: for (;;) {
    for (let i = 1; i <= comps.length; i++) {
      const prefix = comps.slice(0, i).join("/");
      const e = index.entries.get(prefix);
      if (e?.type === "symlink") {
        hop();
        if (e.linkname.startsWith("/")) {
          throw new UnsafePathError(
            `${what}: "${e.name}" is a symlink to the absolute path "${e.linkname}"`,
            e.name,
          );
        }
        const next = comps.slice(0, i - 1);
        for (const t of e.linkname.split("/")) {
          if (t === "" || t === ".") continue;
          if (t === "..") {
            if (next.length === 0) {
              throw new UnsafePathError(
                `${what}: symlink "${e.name}" -> "${e.linkname}" points outside the archive`,
                e.name,
              );
            }
            next.pop();
          } else next.push(t);
        }
        comps = [...next, ...comps.slice(i)];
        continue restart;
      }
      if (i < comps.length) continue;
      if (!e) throw new ArchiveError(`${what}: "${name}" is missing from the archive`);
      if (e.type === "link") {
        hop();
        comps = normaliseArchivePath(e.linkname, what).split("/").filter(Boolean);
        continue restart;
      }
      if (e.type !== "file")
        throw new ArchiveError(`${what}: "${name}" is not a regular file in the archive`);
      return e;
    }
    throw new ArchiveError(`${what}: "${name}" is missing from the archive`);
  }
}

/** True when `name` resolves to a regular file in the archive. */
export function hasTarEntry(index: TarIndex, name: string, what: string): boolean {
  try {
    resolveTarEntry(index, name, what);
    return true;
  } catch (err) {
    if (err instanceof UnsafePathError) throw err;
    return false;
  }
}

/** Streams an entry's data (from `offset` within it). */
export function openTarEntry(index: TarIndex, entry: TarEntryInfo, offset: number, what: string): Readable {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > entry.size) {
    throw new ArchiveError(`${what}: offset ${offset} is outside "${entry.name}" (${entry.size} bytes)`);
  }
  return openFileRange(index.file, entry.offset + offset, entry.size - offset, what);
}

/** Reads a small entry whole (manifest.json, configs, manifests), at most `limit` bytes. */
export async function readTarEntry(
  index: TarIndex,
  entry: TarEntryInfo,
  limit: number,
  what: string,
): Promise<Buffer> {
  if (entry.size > limit)
    throw new ArchiveError(`${what}: "${entry.name}" is ${entry.size} bytes, over the ${limit}-byte limit`);
  const buf = Buffer.alloc(entry.size);
  const fh = await open(index.file, "r");
  try {
    let done = 0;
    while (done < entry.size) {
      const { bytesRead } = await fh.read(buf, done, entry.size - done, entry.offset + done);
      if (bytesRead === 0) throw new ArchiveError(`${what}: "${entry.name}" is truncated`);
      done += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return buf;
}

/** Reads the first bytes of an entry (for magic numbers). */
export async function peekTarEntry(index: TarIndex, entry: TarEntryInfo, n: number): Promise<Buffer> {
  const len = Math.min(n, entry.size);
  const buf = Buffer.alloc(len);
  const fh = await open(index.file, "r");
  try {
    const { bytesRead } = await fh.read(buf, 0, len, entry.offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
