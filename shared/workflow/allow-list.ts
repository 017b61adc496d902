/**
 * Allow-list patterns: which registries and repositories a deployment may copy from (`allowedSources`)
 * and to (`allowedDestinations`). No imports: the CDK app validates patterns at synth time with this very
 * module, and the functions match references against them at run time (policy.ts).
 *
 * A pattern is `host[/repository]`:
 * - `host` is a registry as image references name it (`ghcr.io`, `docker.io` for Docker Hub,
 *   `registry.example.com:5000`), compared case-insensitively. A host without a port matches only that
 *   host without a port. In the host, `*` matches within one DNS label (never a `.` or `:`): so
 *   `*.dkr.ecr.us-east-1.amazonaws.com` matches every account's ECR registry in that region, and cannot
 *   match `x.dkr.ecr.us-east-1.evil.example` nor an attacker's S3 website host under amazonaws.com;
 *   a `*` may not stand in the last two labels (`*.com`, `ghcr.*` and `*` alone are refused: an allow-list
 *   names domains). `registry.internal:*` matches every port.
 * - `repository` is a prefix on path-segment boundaries: `ghcr.io/team` matches `ghcr.io/team` and
 *   everything under `ghcr.io/team/`, not `ghcr.io/teamster`. In the repository, `*` matches any run of
 *   characters, `/` included, as in IAM and in ferry's ECR repository settings: `ghcr.io/team/*` is
 *   everything under `team/`, `ghcr.io/team-*` every repository starting with `team-`. No repository: every
 *   repository of the host.
 * Docker Hub's official images are `docker.io/library/<name>` (references normalise `ubuntu` to that).
 */

export interface RepositoryPattern {
  /** The pattern as written. */
  readonly text: string;
  /** The whole host (with port) it matches, lower case. */
  readonly host: RegExp;
  /** The repository part as written, or "" for every repository. */
  readonly path: string;
  readonly pathRegex: RegExp | undefined;
  /** The repository part before its first `*` (the whole part when it has none). */
  readonly literal: string;
  readonly wildcard: boolean;
}

const LABEL = /^[a-z0-9*](?:[a-z0-9*-]*[a-z0-9*])?$/;
const SEGMENT = /^[a-z0-9*][a-z0-9._*-]*$/;
const IPV6 = /^\[[0-9a-f:.]+\]$/;
const literal = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&");

/** Parses one pattern; throws an Error saying what is wrong (callers add the setting's name). */
export function parsePattern(text: string): RepositoryPattern {
  if (typeof text !== "string" || text.trim() === "") throw new Error("a pattern must be a non-empty string");
  const shown = JSON.stringify(text);
  if (/\s/.test(text)) throw new Error(`${shown} contains white space`);
  if (text.includes("://")) throw new Error(`${shown}: give host[/repository], not a URL`);
  if (text.includes("@")) throw new Error(`${shown}: a pattern names repositories, not digests`);
  const trimmed = text.replace(/\/+$/, "");
  const slash = trimmed.indexOf("/");
  const hostText = (slash < 0 ? trimmed : trimmed.slice(0, slash)).toLowerCase();
  const path = slash < 0 ? "" : trimmed.slice(slash + 1);

  let hostPart = hostText;
  let port: string | undefined;
  const v6 = /^(\[[^\]]*\])(?::([^:]*))?$/.exec(hostText);
  if (v6) {
    hostPart = v6[1]!;
    port = v6[2];
    if (!IPV6.test(hostPart)) throw new Error(`${shown}: bad IPv6 registry address ${hostPart}`);
  } else {
    const colon = hostText.indexOf(":");
    if (colon >= 0) {
      hostPart = hostText.slice(0, colon);
      port = hostText.slice(colon + 1);
    }
    if (!hostPart.split(".").every((label) => LABEL.test(label)))
      throw new Error(`${shown}: bad registry host "${hostPart}" (letters, digits, "-", "." and "*" only)`);
    // A wildcard must stay below a fixed domain: `*.example.com`, never `*.com` or `*`.
    const labels = hostPart.split(".");
    if (
      labels.some((l) => l.includes("*")) &&
      (labels.length < 3 || labels.slice(-2).join(".").includes("*"))
    )
      throw new Error(
        `${shown}: "*" may stand only below a fixed domain (as in *.example.com), not in the last two labels`,
      );
  }
  if (port !== undefined && !/^(?:\d{1,5}|\*)$/.test(port))
    throw new Error(`${shown}: bad port "${port}" (digits, or "*" for any)`);
  // Docker Hub as references write it (shared/registry/reference.ts normalises these hosts to docker.io).
  if (hostPart === "index.docker.io" || hostPart === "registry-1.docker.io")
    throw new Error(`${shown}: write Docker Hub as docker.io, as image references name it`);
  if (path !== "") {
    if (path.includes(":")) throw new Error(`${shown}: a pattern names repositories, not tags`);
    for (const segment of path.split("/")) {
      if (!SEGMENT.test(segment))
        throw new Error(
          `${shown}: repository part "${segment}" is not valid (lower-case letters, digits, ".", "_", "-", "*")`,
        );
    }
  }

  const hostSource = v6 ? literal(hostPart) : hostPart.split("*").map(literal).join("[^.:/]*");
  const portSource = port === undefined ? "" : port === "*" ? ":\\d+" : `:${port}`;
  const star = path.indexOf("*");
  return Object.freeze({
    text,
    host: new RegExp(`^${hostSource}${portSource}$`),
    path,
    pathRegex: path === "" ? undefined : new RegExp(`^${path.split("*").map(literal).join(".*")}(?:/.*)?$`),
    literal: star < 0 ? path : path.slice(0, star),
    wildcard: star >= 0,
  });
}

/** Whether `pattern` allows the repository `registry/repository` (both as references normalise them). */
export function patternMatches(pattern: RepositoryPattern, registry: string, repository: string): boolean {
  if (!pattern.host.test(registry.toLowerCase())) return false;
  return pattern.pathRegex === undefined || pattern.pathRegex.test(repository);
}

/**
 * Whether `pattern` may allow some repository under the location `registry[/prefix]` (a bulk migration's
 * source or destination, a promotion destination): the repository `prefix` itself or one under `prefix/`.
 * Never false when some repository under the location matches; it may be true when none does (a wildcard
 * pattern is judged by its part before the first `*`), so each repository is then checked exactly.
 */
export function patternMayMatchUnder(pattern: RepositoryPattern, registry: string, prefix: string): boolean {
  if (!pattern.host.test(registry.toLowerCase())) return false;
  const p = prefix.replace(/^\/+|\/+$/g, "");
  if (pattern.path === "" || p === "") return true;
  if (!pattern.wildcard) {
    // Matches `path` and `path/…`: some repository under p is one of those.
    return p === pattern.path || p.startsWith(`${pattern.path}/`) || pattern.path.startsWith(`${p}/`);
  }
  // A match starts with `literal`; a repository under p starts with `p/` or is p.
  return `${p}/`.startsWith(pattern.literal) || pattern.literal.startsWith(`${p}/`);
}
