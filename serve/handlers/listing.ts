/**
 * Listings: `GET /v2/<name>/tags/list`, `GET /v2/_catalog` (both paginated with `n`/`last` and a
 * `Link: <...>; rel="next"` header) and `GET /v2/<name>/referrers/<digest>`.
 */
import { RegistryError } from "../errors.ts";
import { type Context, methodNotAllowed, sendJson } from "../http.ts";
import { OCI_INDEX } from "../manifest.ts";
import { requireDigest } from "../names.ts";

/** Largest page served, whatever `n` asks for (the Link header leads to the rest). */
export const MAX_PAGE = 1000;

function requireGet(ctx: Context): void {
  if (ctx.req.method !== "GET" && ctx.req.method !== "HEAD") throw methodNotAllowed(["GET", "HEAD"]);
}

/**
 * Applies `last` (entries strictly after it) and `n` (at most n entries) to a sorted list, and
 * builds the Link header to the next page when entries remain.
 */
export function paginate(
  items: string[],
  query: URLSearchParams,
  path: string,
): { page: string[]; link: string | undefined } {
  const nParam = query.get("n");
  let n: number | undefined;
  if (nParam !== null && nParam !== "") {
    if (!/^\d+$/.test(nParam))
      throw new RegistryError("PAGINATION_NUMBER_INVALID", { detail: { n: nParam } });
    n = Math.min(Number(nParam), MAX_PAGE);
  }
  const last = query.get("last");
  const rest = last ? items.filter((item) => item > last) : items;
  if (n === undefined) {
    if (rest.length <= MAX_PAGE) return { page: rest, link: undefined };
    n = MAX_PAGE;
  }
  const page = rest.slice(0, n);
  const more = n > 0 && rest.length > n;
  const link = more
    ? `<${path}?last=${encodeURIComponent(page[page.length - 1]!).replace(/%2F/g, "/")}&n=${n}>; rel="next"`
    : undefined;
  return { page, link };
}

/** `GET /v2/<name>/tags/list` */
export async function handleTags(ctx: Context, name: string): Promise<void> {
  requireGet(ctx);
  const tags = await ctx.storage.repos.listTags(name);
  if (!tags) throw new RegistryError("NAME_UNKNOWN", { detail: { name } });
  const { page, link } = paginate(tags, ctx.query, `/v2/${name}/tags/list`);
  sendJson(ctx, 200, { name, tags: page }, link ? { Link: link } : {});
}

/** `GET /v2/_catalog` */
export async function handleCatalog(ctx: Context): Promise<void> {
  requireGet(ctx);
  const repos = await ctx.storage.repos.listRepositories();
  const { page, link } = paginate(repos, ctx.query, "/v2/_catalog");
  sendJson(ctx, 200, { repositories: page }, link ? { Link: link } : {});
}

/** `GET /v2/<name>/referrers/<digest>[?artifactType=]` — always 200, an empty index when none. */
export async function handleReferrers(ctx: Context, name: string, ref: string): Promise<void> {
  requireGet(ctx);
  const subject = requireDigest(ref);
  let manifests = await ctx.storage.repos.listReferrers(name, subject);
  const artifactType = ctx.query.get("artifactType");
  const headers: Record<string, string> = {};
  if (artifactType) {
    manifests = manifests.filter((m) => m.artifactType === artifactType);
    headers["OCI-Filters-Applied"] = "artifactType";
  }
  sendJson(
    ctx,
    200,
    { schemaVersion: 2, mediaType: OCI_INDEX, manifests },
    { ...headers, "Content-Type": OCI_INDEX },
  );
}
