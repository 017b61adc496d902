/**
 * RegistryClient: the OCI Distribution API over one shared Transport (connections, tokens, retries).
 * Manifests are returned as exact bytes; blobs as streams. Upload algorithms live in uploads.ts.
 */
import { pipeline, type Readable } from "node:stream";
import { repositoryScope } from "./auth/challenge.ts";
import { BlobStream } from "./blob-stream.ts";
import { type Digest, digestAlgorithm, digestOf, parseDigest, sha256, VerifyingStream } from "./digest.ts";
import {
  DigestMismatchError,
  FerryError,
  InvalidManifestError,
  RegistryError,
  SizeMismatchError,
} from "./errors.ts";
import { discard, drain, type HttpRequest, type HttpResponse, Transport } from "./http/transport.ts";
import {
  type Descriptor,
  isSchema1,
  MAX_MANIFEST_BYTES,
  parseDescriptor,
  type RawManifest,
  schema1Payload,
} from "./manifest.ts";
import { MANIFEST_ACCEPT, MediaType, normaliseMediaType, SCHEMA1_TYPES } from "./media-types.ts";
import { type ClientOptions, type ResolvedOptions, resolveOptions } from "./options.ts";
import {
  apiHost,
  formatReference,
  formatRepository,
  type Reference,
  type Repository,
  referenceTarget,
} from "./reference.ts";
import { mergeReferrer, parseIndex, type Referrer, referrerOf, referrersTag } from "./referrers.ts";

/** What a manifest HEAD tells. */
export interface ManifestInfo {
  digest: Digest;
  mediaType: string;
  size: number;
}

export class RegistryClient {
  readonly options: ResolvedOptions;
  readonly transport: Transport;
  /** Actions declared per repository, so one token serves HEAD and PUT alike (see `declarePush`). */
  private readonly intents = new Map<string, Set<string>>();
  /** Referrers tag updates in progress, per repository and tag (see `updateReferrersTag`). */
  private readonly tagUpdates = new Map<string, Promise<void>>();

  constructor(options: ClientOptions = {}) {
    this.options = resolveOptions(options);
    this.transport = new Transport(this.options);
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  /** Declares that this client will push to `repo`: every request for it then asks for `pull,push`. */
  declarePush(repo: Repository): void {
    this.intents.set(formatRepository(repo), new Set(["pull", "push"]));
  }

  /** Token scopes for a request on `repo` needing `actions`, widened by declared intents. */
  scopes(repo: Repository, actions: ("pull" | "push" | "delete")[], extra: Repository[] = []): string[] {
    const set = new Set<string>([...actions, ...(this.intents.get(formatRepository(repo)) ?? [])]);
    const ordered = (["pull", "push", "delete"] as const).filter((a) => set.has(a));
    return [
      repositoryScope(repo.repository, ordered),
      ...extra.map((r) => repositoryScope(r.repository, ["pull"])),
    ];
  }

  /** Absolute URL under `/v2/<name>/`. */
  url(repo: Repository, path: string): URL {
    return new URL(`${this.base(repo.registry)}/v2/${repo.repository}/${path}`);
  }

  base(registry: string): string {
    return this.transport.baseUrl(registry, apiHost(registry));
  }

  /**
   * Learns a registry's auth challenge once (`GET /v2/`), before requests whose bodies can only be sent
   * once (uploads): they must not meet a 401.
   */
  ensureChallenge(registry: string): Promise<void> {
    return this.transport.ensureChallenge(registry, this.base(registry));
  }

  /** Sends a request (see Transport.request). */
  request(req: HttpRequest): Promise<HttpResponse> {
    return this.transport.request(req);
  }

  /** `GET /v2/`: checks the registry answers and the credentials work (fetches a token if challenged). */
  async ping(registry: string): Promise<void> {
    const res = await this.request({
      op: "ping",
      method: "GET",
      registry,
      url: new URL("/v2/", this.base(registry)),
      expect: [200],
      context: `ping ${registry}`,
    });
    await drain(res.body);
  }

  /** `HEAD` a manifest: its digest, type and size, or undefined when the registry does not have it. */
  async headManifest(
    ref: Reference,
    opts: { accept?: readonly string[] } = {},
  ): Promise<ManifestInfo | undefined> {
    const res = await this.request({
      op: "manifest.head",
      method: "HEAD",
      registry: ref.registry,
      url: this.url(ref, `manifests/${referenceTarget(ref)}`),
      headers: { accept: (opts.accept ?? MANIFEST_ACCEPT).join(", ") },
      scopes: this.scopes(ref, ["pull"]),
      expect: [200, 404],
      context: `check manifest ${formatReference(ref)}`,
    });
    await drain(res.body);
    if (res.status === 404) return undefined;
    const digest = headerValue(res.headers["docker-content-digest"]) ?? ref.digest;
    if (!digest) return undefined;
    return {
      digest: parseDigest(digest),
      mediaType: normaliseMediaType(headerValue(res.headers["content-type"])),
      size: Number(headerValue(res.headers["content-length"]) ?? -1),
    };
  }

  /**
   * `GET` a manifest as exact bytes. The digest is computed from the bytes (for Docker schema 1, from
   * its canonical payload: see `schema1Payload`); when the reference has a digest, a mismatch is an
   * error. Bodies over 4 MiB are refused.
   */
  async getManifest(ref: Reference, opts: { accept?: readonly string[] } = {}): Promise<RawManifest> {
    const what = `manifest ${formatReference(ref)}`;
    const res = await this.request({
      op: "manifest.get",
      method: "GET",
      registry: ref.registry,
      url: this.url(ref, `manifests/${referenceTarget(ref)}`),
      headers: { accept: (opts.accept ?? MANIFEST_ACCEPT).join(", ") },
      scopes: this.scopes(ref, ["pull"]),
      expect: [200],
      context: `pull ${what}`,
    });
    const declared = Number(headerValue(res.headers["content-length"]) ?? -1);
    if (declared > MAX_MANIFEST_BYTES) {
      discard(res.body);
      throw new InvalidManifestError(
        `${what}: ${declared} bytes is over the ${MAX_MANIFEST_BYTES}-byte manifest limit`,
      );
    }
    const bytes = await readLimited(res.body, MAX_MANIFEST_BYTES, what);
    let mediaType = normaliseMediaType(headerValue(res.headers["content-type"])) || sniffMediaType(bytes);
    const reported = headerValue(res.headers["docker-content-digest"]);
    const algo = (ref.digest ?? reported ?? "").startsWith("sha512:") ? "sha512:" : "sha256:";
    const schema1 = isSchema1(mediaType, bytes);
    if (schema1 && !SCHEMA1_TYPES.has(mediaType)) mediaType = sniffMediaType(bytes);
    // schema 1: the registry re-signs the bytes on every GET; its digest is over the payload alone
    const digest = digestOf(schema1 ? schema1Payload(bytes, mediaType, what) : bytes, algo);
    if (ref.digest && digest !== ref.digest) throw new DigestMismatchError(what, ref.digest, digest);
    if (schema1 && reported && digestAlgorithm(reported) === digestAlgorithm(digest) && reported !== digest) {
      throw new DigestMismatchError(`${what} (schema 1 payload, Docker-Content-Digest)`, reported, digest);
    }
    return { bytes, mediaType, digest };
  }

  /**
   * `PUT` a manifest under a tag or its digest. The caller guarantees every referenced blob and child
   * manifest is already present. Returns the digest the registry reports (or ours).
   *
   * A manifest with a `subject` (a signature, an SBOM) must be findable from its subject. A registry with
   * the referrers API says it indexed the subject with an `OCI-Subject` header; without that header the
   * spec makes it the pusher's job to list the manifest in the `<alg>-<hex>` referrers tag, which is
   * done here, after the manifest itself is in (see `updateReferrersTag`).
   *
   * Since every blob is in, `MANIFEST_BLOB_UNKNOWN` is the registry's passing state, and the PUT is sent
   * again (twice at most): distribution before 3.0 rewrites a blob's link file in place whenever the blob
   * is pushed or mounted into the repository again, and a manifest PUT that reads the link meanwhile finds
   * it empty (`DIGEST_INVALID; MANIFEST_BLOB_UNKNOWN`; distribution/distribution#4478, fixed by #4624) —
   * as when two transfers into one repository share a blob.
   */
  async putManifest(repo: Repository, target: string, manifest: RawManifest): Promise<Digest> {
    const res = await this.request({
      op: "manifest.put",
      method: "PUT",
      registry: repo.registry,
      url: this.url(repo, `manifests/${target}`),
      headers: { "content-type": manifest.mediaType },
      body: manifest.bytes,
      scopes: this.scopes(repo, ["pull", "push"]),
      expect: [200, 201, 202, 204],
      passingRefusal: (err) => err.status === 400 && err.hasCode("MANIFEST_BLOB_UNKNOWN"),
      context: `push manifest ${manifest.digest} to ${formatRepository(repo)}${target === manifest.digest ? "" : `:${target}`}`,
    });
    await drain(res.body);
    const reported = headerValue(res.headers["docker-content-digest"]);
    if (
      reported &&
      reported !== manifest.digest &&
      reported.startsWith("sha256:") &&
      manifest.digest.startsWith("sha256:")
    ) {
      throw new DigestMismatchError(
        `manifest pushed to ${formatRepository(repo)}`,
        manifest.digest,
        reported,
      );
    }
    const referrer = referrerOf(manifest);
    if (referrer && !headerValue(res.headers["oci-subject"])) await this.updateReferrersTag(repo, referrer);
    return manifest.digest;
  }

  /**
   * Adds a referrer to its subject's referrers tag (spec: "Pushing Manifests with Subject"): read the
   * index under the tag (none yet: start empty), add the referrer's descriptor unless it is listed
   * already, push the index back. Entries other clients put there are kept. Updates of one tag are
   * serialised within this client, so concurrent pushes of referrers of one image do not drop each
   * other's entries; across processes the spec accepts the race (a registry with the referrers API
   * has none).
   */
  private async updateReferrersTag(repo: Repository, referrer: Referrer): Promise<void> {
    const tag = referrersTag(referrer.subject);
    const key = `${formatRepository(repo)}:${tag}`;
    const previous = this.tagUpdates.get(key) ?? Promise.resolve();
    const next = previous
      .catch(() => {})
      .then(async () => {
        const existing = await this.readReferrersTag({ ...repo, tag });
        const merged = mergeReferrer(
          existing,
          referrer.descriptor,
          `referrers tag ${formatRepository(repo)}:${tag}`,
        );
        if (!merged) return;
        await this.putManifest(repo, tag, {
          bytes: merged,
          mediaType: MediaType.OciIndex,
          digest: sha256(merged),
        });
      });
    this.tagUpdates.set(key, next);
    try {
      await next;
    } finally {
      if (this.tagUpdates.get(key) === next) this.tagUpdates.delete(key);
    }
  }

  /** The manifest under a referrers tag, or undefined when the tag does not exist. */
  private async readReferrersTag(ref: Reference): Promise<RawManifest | undefined> {
    try {
      return await this.getManifest(ref);
    } catch (e) {
      if (e instanceof RegistryError && e.status === 404) return undefined;
      throw e;
    }
  }

  async deleteManifest(ref: Reference): Promise<void> {
    const res = await this.request({
      op: "manifest.delete",
      method: "DELETE",
      registry: ref.registry,
      url: this.url(ref, `manifests/${referenceTarget(ref)}`),
      scopes: this.scopes(ref, ["pull", "push", "delete"]),
      expect: [200, 202, 204],
      context: `delete ${formatReference(ref)}`,
    });
    await drain(res.body);
  }

  /** `HEAD` a blob: its size, or undefined when absent. */
  async headBlob(repo: Repository, digest: Digest): Promise<number | undefined> {
    const res = await this.request({
      op: "blob.head",
      method: "HEAD",
      registry: repo.registry,
      url: this.url(repo, `blobs/${digest}`),
      scopes: this.scopes(repo, ["pull"]),
      expect: [200, 404],
      context: `check blob ${digest} in ${formatRepository(repo)}`,
    });
    await drain(res.body);
    if (res.status === 404) return undefined;
    return Number(headerValue(res.headers["content-length"]) ?? -1);
  }

  async deleteBlob(repo: Repository, digest: Digest): Promise<void> {
    const res = await this.request({
      op: "blob.delete",
      method: "DELETE",
      registry: repo.registry,
      url: this.url(repo, `blobs/${digest}`),
      scopes: this.scopes(repo, ["pull", "push", "delete"]),
      expect: [200, 202, 204],
      context: `delete blob ${digest} from ${formatRepository(repo)}`,
    });
    await drain(res.body);
  }

  /**
   * A blob's bytes from `offset`, as a stream that resumes with `Range` after a dropped connection
   * (up to the client's retry count) and fails — never ends early — when the bytes stop short of
   * `desc.size`. Not digest-verified: use `getBlob` for that, or hash in the consumer.
   * With `length`, only `[offset, offset + length)` is asked for (a bounded `Range`), so a consumer that
   * reads one step of a large blob does not make the registry send more.
   */
  async openBlob(repo: Repository, desc: Descriptor, offset = 0, length?: number): Promise<Readable> {
    const end =
      length === undefined
        ? desc.size
        : Math.min(offset + length, desc.size < 0 ? Number.POSITIVE_INFINITY : desc.size);
    const first = await this.blobRequest(repo, desc, offset, end);
    return new BlobStream(
      first,
      offset,
      end,
      (pos) => this.blobRequest(repo, desc, pos, end),
      this.options.retries,
      `blob ${desc.digest} from ${formatRepository(repo)}`,
    );
  }

  /**
   * A blob's bytes verified on the fly: the stream errors at the end on a size or digest mismatch.
   * `what` names the blob in those errors. Destroying the returned stream releases the response.
   */
  async getBlob(repo: Repository, desc: Descriptor, what?: string): Promise<Readable> {
    const src = await this.openBlob(repo, desc);
    const verify = new VerifyingStream({
      digest: desc.digest,
      size: desc.size,
      what: what ?? `blob ${desc.digest} from ${formatRepository(repo)}`,
    });
    // pipeline, not pipe: a consumer that gives up destroys `verify`, and that must reach the response
    // too — a body left paused mid-way keeps its request open, and close() would wait for it forever
    pipeline(src, verify, () => {});
    return verify;
  }

  /** Reads a small blob (a config) whole, verified. */
  async readBlob(repo: Repository, desc: Descriptor, max = MAX_MANIFEST_BYTES * 4): Promise<Buffer> {
    if (desc.size > max)
      throw new FerryError("BLOB_TOO_LARGE", `blob ${desc.digest} is ${desc.size} bytes, over ${max}`);
    const stream = await this.getBlob(repo, desc);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  private async blobRequest(
    repo: Repository,
    desc: Descriptor,
    offset: number,
    end: number,
  ): Promise<{ res: HttpResponse; skip: number }> {
    const bounded = end >= 0 && Number.isFinite(end) && end !== desc.size;
    const range = offset > 0 || bounded ? `bytes=${offset}-${bounded ? end - 1 : ""}` : undefined;
    const res = await this.request({
      op: "blob.get",
      method: "GET",
      registry: repo.registry,
      url: this.url(repo, `blobs/${desc.digest}`),
      headers: range ? { range } : {},
      scopes: this.scopes(repo, ["pull"]),
      expect: range ? [200, 206] : [200],
      context: `pull blob ${desc.digest} from ${formatRepository(repo)}`,
    });
    const length = Number(headerValue(res.headers["content-length"]) ?? -1);
    let skip = 0;
    if (res.status === 206) {
      const start = /bytes (\d+)-/.exec(headerValue(res.headers["content-range"]) ?? "")?.[1];
      if (start !== undefined && Number(start) !== offset) {
        discard(res.body);
        throw new RegistryError({
          status: 206,
          method: "GET",
          url: res.url.toString(),
          context: `resume blob ${desc.digest}: range starts at ${start}, asked ${offset}`,
        });
      }
    } else if (offset > 0) {
      skip = offset; // the server ignored Range: discard what we already have
    }
    // 206: exactly the range asked for; 200: the whole blob (skipped up to offset, cut at end)
    const expected = res.status === 206 ? (bounded ? end - offset : desc.size - offset) : desc.size;
    if (expected >= 0 && length >= 0 && length !== expected) {
      discard(res.body);
      throw new SizeMismatchError(
        `blob ${desc.digest} from ${formatRepository(repo)} (Content-Length)`,
        expected,
        length,
      );
    }
    return { res, skip };
  }

  /** All tags of a repository, following `Link` pagination. */
  async *tags(repo: Repository, pageSize = 1000): AsyncGenerator<string> {
    let url: URL | undefined = this.url(repo, `tags/list?n=${pageSize}`);
    while (url) {
      const res: HttpResponse = await this.request({
        op: "tags.list",
        method: "GET",
        registry: repo.registry,
        url,
        scopes: this.scopes(repo, ["pull"]),
        expect: [200],
        context: `list tags of ${formatRepository(repo)}`,
      });
      const json = (await readJson(res, `tag list of ${formatRepository(repo)}`)) as { tags?: unknown };
      for (const t of Array.isArray(json.tags) ? json.tags : []) if (typeof t === "string") yield t;
      url = nextLink(res);
    }
  }

  /** Every repository of a registry (`/v2/_catalog`), following `Link` pagination. */
  async *catalog(registry: string, pageSize = 1000): AsyncGenerator<string> {
    let url: URL | undefined = new URL(`/v2/_catalog?n=${pageSize}`, this.base(registry));
    while (url) {
      const res: HttpResponse = await this.request({
        op: "catalog",
        method: "GET",
        registry,
        url,
        scopes: ["registry:catalog:*"],
        expect: [200],
        context: `list repositories of ${registry}`,
      });
      const json = (await readJson(res, `catalog of ${registry}`)) as { repositories?: unknown };
      for (const r of Array.isArray(json.repositories) ? json.repositories : [])
        if (typeof r === "string") yield r;
      url = nextLink(res);
    }
  }

  /**
   * Manifests that name `digest` as their subject: the referrers API (following `Link` pages), or on
   * 404 the referrers tag schema (`<alg>-<hex>`: an OCI index that pushers keep, as ferry's
   * `putManifest`, cosign and oras do). A tag that holds anything but an OCI index means no referrers,
   * as the spec says.
   */
  async referrers(
    repo: Repository,
    digest: Digest,
    opts: { artifactType?: string } = {},
  ): Promise<Descriptor[]> {
    const query = opts.artifactType ? `?artifactType=${encodeURIComponent(opts.artifactType)}` : "";
    const what = `referrers of ${digest} in ${formatRepository(repo)}`;
    let list: Descriptor[] = [];
    let url: URL | undefined = this.url(repo, `referrers/${digest}${query}`);
    while (url) {
      const res: HttpResponse = await this.request({
        op: "referrers",
        method: "GET",
        registry: repo.registry,
        url,
        headers: { accept: MediaType.OciIndex },
        scopes: this.scopes(repo, ["pull"]),
        expect: [200, 404],
        context: `list ${what}`,
      });
      if (res.status === 404) {
        await drain(res.body);
        if (list.length === 0) list = await this.referrersFromTag(repo, digest);
        break;
      }
      const json = (await readJson(res, what)) as { manifests?: unknown };
      if (Array.isArray(json.manifests))
        list.push(...json.manifests.map((d, i) => parseDescriptor(d, `${what}: manifests[${i}]`)));
      url = nextLink(res);
    }
    return opts.artifactType ? list.filter((d) => d.artifactType === opts.artifactType) : list;
  }

  private async referrersFromTag(repo: Repository, digest: Digest): Promise<Descriptor[]> {
    const tag = referrersTag(digest);
    const raw = await this.readReferrersTag({ ...repo, tag });
    const index = raw && parseIndex(raw);
    if (!index) return [];
    return index.manifests.map((d, i) =>
      parseDescriptor(d, `referrers tag ${formatRepository(repo)}:${tag}: manifests[${i}]`),
    );
  }
}

export function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function nextLink(res: HttpResponse): URL | undefined {
  const link = headerValue(res.headers.link);
  const m = link && /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
  return m ? new URL(m[1]!, res.url) : undefined;
}

async function readJson(res: HttpResponse, what: string): Promise<Record<string, unknown>> {
  const bytes = await readLimited(res.body, MAX_MANIFEST_BYTES, what);
  try {
    const v = JSON.parse(bytes.toString("utf8")) as unknown;
    if (typeof v !== "object" || v === null) throw new Error("not an object");
    return v as Record<string, unknown>;
  } catch (e) {
    throw new FerryError(
      "INVALID_RESPONSE",
      `${what}: registry returned malformed JSON (${(e as Error).message})`,
    );
  }
}

/** Reads a body into memory, refusing more than `max` bytes. */
export async function readLimited(
  body: AsyncIterable<unknown> & { destroy(): void },
  max: number,
  what: string,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const c of body) {
    const b = c as Buffer;
    total += b.length;
    if (total > max) {
      body.destroy();
      throw new InvalidManifestError(`${what}: more than ${max} bytes`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** Media type from the JSON when the registry sent no usable Content-Type. */
function sniffMediaType(bytes: Uint8Array): string {
  try {
    const j = JSON.parse(Buffer.from(bytes).toString("utf8")) as {
      mediaType?: string;
      schemaVersion?: number;
      manifests?: unknown;
      signatures?: unknown;
    };
    if (typeof j.mediaType === "string") return j.mediaType;
    if (j.schemaVersion === 1) return j.signatures ? MediaType.DockerSchema1Signed : MediaType.DockerSchema1;
    return Array.isArray(j.manifests) ? MediaType.OciIndex : MediaType.OciManifest;
  } catch {
    return "";
  }
}

export { DigestMismatchError };
