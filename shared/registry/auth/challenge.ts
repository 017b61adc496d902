/**
 * `WWW-Authenticate` parsing (RFC 7235 auth-params), as registries send it:
 * `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull",error="insufficient_scope"`.
 */

export interface Challenge {
  /** Lower-case scheme: `bearer` or `basic` (others are kept but unsupported). */
  scheme: string;
  params: Record<string, string>;
}

/** Parses every challenge in a header value. Unknown or malformed parts are skipped, never thrown on. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (!header) return [];
  const values = Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const value of values) {
    let i = 0;
    const s = value;
    let current: Challenge | undefined;
    while (i < s.length) {
      while (i < s.length && (s[i] === " " || s[i] === ",")) i++;
      const tokenStart = i;
      while (i < s.length && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(s[i]!)) i++;
      const token = s.slice(tokenStart, i);
      if (!token) {
        i++;
        continue;
      }
      let j = i;
      while (j < s.length && s[j] === " ") j++;
      if (s[j] === "=" && current) {
        // auth-param: token = ( token / quoted-string )
        j++;
        while (j < s.length && s[j] === " ") j++;
        let val = "";
        if (s[j] === '"') {
          j++;
          while (j < s.length && s[j] !== '"') {
            if (s[j] === "\\" && j + 1 < s.length) j++;
            val += s[j];
            j++;
          }
          j++;
        } else {
          const vs = j;
          while (j < s.length && s[j] !== "," && s[j] !== " ") j++;
          val = s.slice(vs, j);
        }
        current.params[token.toLowerCase()] = val;
        i = j;
      } else {
        current = { scheme: token.toLowerCase(), params: {} };
        out.push(current);
      }
    }
  }
  return out;
}

/** The challenge ferry acts on: Bearer preferred over Basic. */
export function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === "bearer") ?? challenges.find((c) => c.scheme === "basic");
}

/** Scope strings: `repository:<name>:pull,push`. */
export function repositoryScope(
  repository: string,
  actions: readonly ("pull" | "push" | "delete" | "*")[],
): string {
  return `repository:${repository}:${actions.join(",")}`;
}

/** Merges scope strings so that each resource appears once with the union of its actions, sorted. */
export function mergeScopes(scopes: Iterable<string>): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const scope of scopes) {
    for (const one of scope.split(" ")) {
      const idx = one.lastIndexOf(":");
      if (idx <= 0) continue;
      const resource = one.slice(0, idx);
      const set = byResource.get(resource) ?? new Set<string>();
      for (const a of one.slice(idx + 1).split(",")) if (a) set.add(a);
      byResource.set(resource, set);
    }
  }
  return [...byResource.entries()].map(([r, actions]) => `${r}:${[...actions].sort().join(",")}`).sort();
}
