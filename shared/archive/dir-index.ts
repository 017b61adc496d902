/**
 * What the rootfs extractor remembers about the directories it has seen, as a tree keyed by path
 * component (resolved names under the root, never through a symlink):
 * - `real`: known to be a real directory (not a symlink), so resolving an entry's parents need not
 *   lstat it again;
 * - `meta`: the mode and mtime its directory entry asked for, applied at the end (a read-only
 *   directory must stay writable until then).
 *
 * A tree rather than a Set/Map of path strings because removing a path (a whiteout, an entry
 * replacing a directory, an opaque directory pruned) must forget everything under it: with flat
 * maps that is a scan of every key per removal, quadratic in a layer of many whiteouts (32k whiteouts
 * took 27 s); here it is one delete at the end of a walk as deep as the path.
 */

export interface DirMeta {
  mode: number;
  mtime: Date | undefined;
}

export interface DirNode {
  children: Map<string, DirNode> | undefined;
  real: boolean;
  meta: DirMeta | undefined;
}

/** Counts of the extractor's bookkeeping work, for tests that check it stays linear. */
export interface WorkCounters {
  /** Tree nodes visited (lookups, inserts, removals, the final walk). */
  indexVisits: number;
  /** Filesystem metadata calls (lstat, readdir, readlink, mkdir, rm). */
  fsCalls: number;
}

export class DirIndex {
  readonly root: DirNode = newNode();
  private readonly counters: WorkCounters;

  constructor(counters: WorkCounters) {
    this.counters = counters;
  }

  /** The child `name` of `node`, created when `create`. */
  child(node: DirNode, name: string, create: true): DirNode;
  child(node: DirNode, name: string, create?: boolean): DirNode | undefined;
  child(node: DirNode, name: string, create = false): DirNode | undefined {
    this.counters.indexVisits++;
    let c = node.children?.get(name);
    if (!c && create) {
      c = newNode();
      node.children ??= new Map();
      node.children.set(name, c);
    }
    return c;
  }

  /** The node at `parts` (created with its ancestors when `create`). */
  at(parts: readonly string[], create: true): DirNode;
  at(parts: readonly string[], create?: boolean): DirNode | undefined;
  at(parts: readonly string[], create = false): DirNode | undefined {
    let node: DirNode | undefined = this.root;
    for (const p of parts) {
      node = this.child(node, p, create);
      if (!node) return undefined;
    }
    return node;
  }

  /** Forgets `parts` and everything under it (the path was removed from disk). */
  remove(parts: readonly string[]): void {
    if (parts.length === 0) {
      this.root.children = undefined;
      return;
    }
    const parent = this.at(parts.slice(0, -1));
    this.counters.indexVisits++;
    parent?.children?.delete(parts.at(-1)!);
  }

  /** Every directory with recorded metadata, each after all of its descendants (deepest first). */
  metaDeepestFirst(): [string[], DirMeta][] {
    // pre-order with an explicit stack (no recursion limit on deep trees), then reversed: a node then
    // comes after everything below it
    const order: [string[], DirNode][] = [];
    const stack: [string[], DirNode][] = [[[], this.root]];
    while (stack.length > 0) {
      const [parts, node] = stack.pop()!;
      this.counters.indexVisits++;
      order.push([parts, node]);
      for (const [name, c] of node.children ?? []) stack.push([[...parts, name], c]);
    }
    const out: [string[], DirMeta][] = [];
    for (let i = order.length - 1; i >= 0; i--) {
      const [parts, node] = order[i]!;
      if (node.meta) out.push([parts, node.meta]);
    }
    return out;
  }
}

function newNode(): DirNode {
  return { children: undefined, real: false, meta: undefined };
}
