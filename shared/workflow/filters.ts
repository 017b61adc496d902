/**
 * Tag selection for bulk migrations: include/exclude regular expressions, a semver range, the latest N
 * versions, immutable patterns. Regular expressions match the *whole* name (`v1\..*` does not match
 * `xv1.2`). The semver subset (no dependency): versions `[v]MAJOR[.MINOR[.PATCH]][-pre][+build]`;
 * ranges of comparators (`>=1.2.0 <2`), carets (`^1.4`), tildes (`~2.0.1`), x-ranges (`1.x`, `*`),
 * hyphens (`1.0 - 2.0`), alternatives joined by `||`. Pre-releases match only a comparator that names
 * one with the same MAJOR.MINOR.PATCH, as npm does.
 */

export interface Version {
  major: number;
  minor: number;
  patch: number;
  pre: (string | number)[];
}

const VERSION = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/** A tag as a version (missing MINOR/PATCH are 0), or undefined when it is not one. */
export function parseVersion(tag: string): Version | undefined {
  const m = VERSION.exec(tag);
  if (!m) return undefined;
  const pre = m[4] ? m[4].split(".").map((p) => (/^\d+$/.test(p) ? Number(p) : p)) : [];
  return { major: Number(m[1]), minor: Number(m[2] ?? 0), patch: Number(m[3] ?? 0), pre };
}

export function compareVersions(a: Version, b: Version): number {
  for (const k of ["major", "minor", "patch"] as const) if (a[k] !== b[k]) return a[k] < b[k] ? -1 : 1;
  if (!a.pre.length || !b.pre.length) return a.pre.length ? -1 : b.pre.length ? 1 : 0;
  for (let i = 0; i < Math.max(a.pre.length, b.pre.length); i++) {
    const x = a.pre[i];
    const y = b.pre[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    if (typeof x === "number" && typeof y === "number") return x < y ? -1 : 1;
    if (typeof x === "number") return -1;
    if (typeof y === "number") return 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

type Op = "<" | "<=" | ">" | ">=" | "=";
interface Comparator {
  op: Op;
  v: Version;
}

/** A partial version: undefined parts are wildcards. */
interface Partial {
  major?: number;
  minor?: number;
  patch?: number;
  pre: (string | number)[];
}

function parsePartial(s: string): Partial {
  const m =
    /^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(s);
  if (!m) throw new TypeError(`"${s}" is not a version`);
  const num = (x: string | undefined) => (x === undefined || /^[xX*]$/.test(x) ? undefined : Number(x));
  const major = num(m[1]);
  const minor = major === undefined ? undefined : num(m[2]);
  const patch = minor === undefined ? undefined : num(m[3]);
  const pre = m[4] ? m[4].split(".").map((p) => (/^\d+$/.test(p) ? Number(p) : p)) : [];
  return {
    ...(major !== undefined ? { major } : {}),
    ...(minor !== undefined ? { minor } : {}),
    ...(patch !== undefined ? { patch } : {}),
    pre,
  };
}

const ver = (major: number, minor = 0, patch = 0, pre: (string | number)[] = []): Version => ({
  major,
  minor,
  patch,
  pre,
});
const LOWEST_PRE = [0];

/** The comparators one range term (`^1.2`, `>=1`, `1.x`, `1.2.3`) stands for. */
function expand(term: string): Comparator[] {
  const m = /^(\^|~|>=|<=|>|<|=)?\s*(.+)$/.exec(term);
  if (!m) throw new TypeError(`bad range term "${term}"`);
  const op = m[1] ?? "";
  const p = parsePartial(m[2]!);
  if (p.major === undefined)
    return op === "<" || op === ">" ? [{ op: "<", v: ver(0, 0, 0, LOWEST_PRE) }] : [];
  const M = p.major;
  const lo = ver(M, p.minor ?? 0, p.patch ?? 0, p.pre);
  switch (op) {
    case "^": {
      let hi: Version;
      if (M > 0 || p.minor === undefined) hi = ver(M + 1, 0, 0, LOWEST_PRE);
      else if (p.minor > 0 || p.patch === undefined) hi = ver(0, p.minor + 1, 0, LOWEST_PRE);
      else hi = ver(0, 0, p.patch + 1, LOWEST_PRE);
      return [
        { op: ">=", v: lo },
        { op: "<", v: hi },
      ];
    }
    case "~": {
      const hi = p.minor === undefined ? ver(M + 1, 0, 0, LOWEST_PRE) : ver(M, p.minor + 1, 0, LOWEST_PRE);
      return [
        { op: ">=", v: lo },
        { op: "<", v: hi },
      ];
    }
    case ">":
      if (p.minor === undefined) return [{ op: ">=", v: ver(M + 1, 0, 0) }];
      if (p.patch === undefined) return [{ op: ">=", v: ver(M, p.minor + 1, 0) }];
      return [{ op: ">", v: lo }];
    case "<=":
      if (p.minor === undefined) return [{ op: "<", v: ver(M + 1, 0, 0, LOWEST_PRE) }];
      if (p.patch === undefined) return [{ op: "<", v: ver(M, p.minor + 1, 0, LOWEST_PRE) }];
      return [{ op: "<=", v: lo }];
    case ">=":
      return [{ op: ">=", v: lo }];
    case "<":
      return [{ op: "<", v: p.patch === undefined && !p.pre.length ? { ...lo, pre: LOWEST_PRE } : lo }];
    default:
      // "=" or bare: exact when complete, an x-range otherwise
      if (p.minor === undefined)
        return [
          { op: ">=", v: lo },
          { op: "<", v: ver(M + 1, 0, 0, LOWEST_PRE) },
        ];
      if (p.patch === undefined)
        return [
          { op: ">=", v: lo },
          { op: "<", v: ver(M, p.minor + 1, 0, LOWEST_PRE) },
        ];
      return [{ op: "=", v: lo }];
  }
}

function test(c: Comparator, v: Version): boolean {
  const r = compareVersions(v, c.v);
  switch (c.op) {
    case "<":
      return r < 0;
    case "<=":
      return r <= 0;
    case ">":
      return r > 0;
    case ">=":
      return r >= 0;
    case "=":
      return r === 0;
  }
}

export type Range = Comparator[][];

/** Parses a range; throws TypeError with a message naming the bad part. */
export function parseRange(range: string): Range {
  return range.split("||").map((alt) => {
    const s = alt.trim();
    if (s === "" || s === "*" || /^[xX]$/.test(s)) return [];
    const hyphen = /^(\S+)\s+-\s+(\S+)$/.exec(s);
    if (hyphen) return [...expand(`>=${hyphen[1]}`), ...expand(`<=${hyphen[2]}`)];
    // "> = 1.2" style spacing: glue operators to their version
    const terms = s.replace(/(\^|~|>=|<=|>|<|=)\s+/g, "$1").split(/\s+/);
    return terms.flatMap(expand);
  });
}

export function satisfies(v: Version, range: Range): boolean {
  return range.some((set) => {
    if (!set.every((c) => test(c, v))) return false;
    if (!v.pre.length) return true;
    // A pre-release only matches a set that names a pre-release of the same version.
    return set.some(
      (c) =>
        c.v.pre.length > 0 &&
        c.v.pre !== LOWEST_PRE &&
        c.v.major === v.major &&
        c.v.minor === v.minor &&
        c.v.patch === v.patch,
    );
  });
}

const whole = (patterns: readonly string[] | undefined) =>
  (patterns ?? []).map((p) => new RegExp(`^(?:${p})$`));

export interface TagFilter {
  include?: string[] | undefined;
  exclude?: string[] | undefined;
  semver?: string | undefined;
  latest?: number | undefined;
}

/** The tags that pass the filter, in a stable order (highest version first when versions are involved). */
export function selectTags(tags: readonly string[], f: TagFilter = {}): string[] {
  const inc = whole(f.include);
  const exc = whole(f.exclude);
  let out = tags.filter(
    (t) => (inc.length === 0 || inc.some((r) => r.test(t))) && !exc.some((r) => r.test(t)),
  );
  if (f.semver !== undefined || f.latest !== undefined) {
    const range = f.semver !== undefined ? parseRange(f.semver) : undefined;
    const versioned = out
      .map((t) => ({ t, v: parseVersion(t) }))
      .filter((x): x is { t: string; v: Version } => x.v !== undefined && (!range || satisfies(x.v, range)))
      .sort((a, b) => compareVersions(b.v, a.v) || (a.t < b.t ? -1 : 1));
    out = (f.latest !== undefined ? versioned.slice(0, f.latest) : versioned).map((x) => x.t);
  } else {
    out = [...out].sort();
  }
  return out;
}

/** Whether `name` matches the include/exclude lists (whole-name regular expressions). */
export function nameSelected(name: string, include?: string[], exclude?: string[]): boolean {
  const inc = whole(include);
  const exc = whole(exclude);
  return (inc.length === 0 || inc.some((r) => r.test(name))) && !exc.some((r) => r.test(name));
}

export function matchesAny(name: string, patterns?: string[]): boolean {
  return whole(patterns).some((r) => r.test(name));
}
