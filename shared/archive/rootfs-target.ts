/**
 * The directory a root filesystem is unpacked into, written all-or-nothing: the tree is built in a
 * temporary sibling (`.ferry-rootfs-<random>` in the same parent, so on the same filesystem) and
 * renamed into place only when every layer was applied and verified. On failure the temporary tree
 * is removed, and so are the parent directories this run created: the destination is as it was.
 *
 * The destination must be absent or an empty directory (rename(2) replaces an empty directory
 * atomically; the result is then a new directory, with the old one's permission bits). A non-empty
 * directory or a file is refused before anything is read: merging layers into existing files could
 * not be undone, and replacing them would destroy data.
 */
import type { Stats } from "node:fs";
import { chmod, lstat, mkdir, readdir, realpath, rename, rm, rmdir, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { ArchiveError, DestinationNotEmptyError } from "./errors.ts";
import { errnoCode, tempNameFor } from "./io.ts";

export interface StagedDir {
  /** The temporary directory the tree is built in. */
  readonly tmp: string;
  /** The final path (symlinks to an empty directory resolved: the directory is replaced, not the link). */
  readonly target: string;
  /** The destination as given, for messages. */
  readonly given: string;
  /** Permission bits of an existing empty destination, kept on the new tree. */
  readonly keepMode: number | undefined;
  /** Parent directories created for this run, outermost first. */
  readonly createdParents: string[];
}

/** Checks `dir` (absent or an empty directory) and creates the temporary sibling to build the tree in. */
export async function stageDir(dir: string): Promise<StagedDir> {
  const given = dir;
  let target = resolve(dir);
  let st: Stats | undefined = await lstat(target).catch((err: unknown) => {
    if (errnoCode(err) === "ENOENT") return undefined;
    throw err;
  });
  if (st?.isSymbolicLink()) {
    // a link to a directory stands for that directory; a dangling link or a link to a file is refused
    st = await stat(target).catch(() => undefined);
    if (!st?.isDirectory()) {
      throw new DestinationNotEmptyError(`${given}: exists and is not a directory`, given);
    }
    target = await realpath(target);
  }
  let keepMode: number | undefined;
  const createdParents: string[] = [];
  if (st) {
    if (!st.isDirectory())
      throw new DestinationNotEmptyError(`${given}: exists and is not a directory`, given);
    if ((await readdir(target)).length > 0) {
      throw new DestinationNotEmptyError(
        `${given}: exists and is not empty (rootfs: unpacks into a new or empty directory)`,
        given,
      );
    }
    keepMode = st.mode & 0o7777;
  } else {
    const parent = dirname(target);
    const first = await mkdir(parent, { recursive: true });
    if (first) {
      for (let d = parent; ; d = dirname(d)) {
        createdParents.unshift(d);
        if (d === first || d === dirname(d)) break;
      }
    }
  }
  const tmp = tempNameFor(target, "rootfs");
  try {
    await mkdir(tmp);
  } catch (err) {
    await removeCreatedParents(createdParents);
    throw new ArchiveError(
      `${given}: cannot create the directory to unpack into next to it (${(err as Error).message})`,
      { cause: err },
    );
  }
  return { tmp, target, given, keepMode, createdParents };
}

/** Renames the finished tree into place. On failure the caller still owns (and discards) `tmp`. */
export async function commitDir(s: StagedDir): Promise<void> {
  if (s.keepMode !== undefined) await chmod(s.tmp, s.keepMode);
  try {
    await rename(s.tmp, s.target);
  } catch (err) {
    const code = errnoCode(err);
    if (code === "ENOTEMPTY" || code === "EEXIST" || code === "ENOTDIR" || code === "EISDIR") {
      // something was put at the destination while ferry was unpacking
      throw new DestinationNotEmptyError(
        `${s.given}: was created or filled while the image was unpacked; left as it is`,
        s.given,
      );
    }
    throw new ArchiveError(
      `${s.given}: cannot put the unpacked root filesystem in place (${(err as Error).message})`,
      { cause: err },
    );
  }
}

/** Removes the temporary tree and the parents created for it; the destination is left as it was. */
export async function discardDir(s: StagedDir): Promise<void> {
  await removeTree(s.tmp);
  await removeCreatedParents(s.createdParents);
}

/**
 * `rm -rf` that also gets through directories the layers made read-only (their modes are applied
 * just before the rename, and a failed rename must still clean up when ferry does not run as root).
 */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (err) {
    const code = errnoCode(err);
    if (code !== "EACCES" && code !== "EPERM") throw err;
    await makeWritable(path);
    await rm(path, { recursive: true, force: true });
  }
}

/** Gives the owner rwx on every directory under `path` (symlinks are not followed). */
async function makeWritable(path: string): Promise<void> {
  const stack = [path];
  while (stack.length > 0) {
    const d = stack.pop()!;
    await chmod(d, 0o700).catch(() => {});
    const children = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const c of children) if (c.isDirectory()) stack.push(`${d}/${c.name}`);
  }
}

/** Removes the parents this run created, innermost first; one that is not empty (someone else's now) stays. */
async function removeCreatedParents(created: string[]): Promise<void> {
  for (let i = created.length - 1; i >= 0; i--) {
    try {
      await rmdir(created[i]!);
    } catch {
      return;
    }
  }
}
