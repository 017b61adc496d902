/** A registry repository as an ImageSource and as an ImageSink. */
import type { Readable } from "node:stream";
import type { RegistryClient } from "../registry/client.ts";
import type { Digest } from "../registry/digest.ts";
import { InvalidReferenceError } from "../registry/errors.ts";
import type { Descriptor, RawManifest } from "../registry/manifest.ts";
import { formatReference, formatRepository, type Reference, type Repository } from "../registry/reference.ts";
import { pushBlob, pushBlobStream, tryMount } from "../registry/uploads.ts";
import type { DestinationRepositories } from "./repositories.ts";
import type { BlobPutOptions, BlobPutResult, ImageSink, ImageSource } from "./types.ts";

export class RegistrySource implements ImageSource {
  readonly name: string;
  readonly client: RegistryClient;
  readonly ref: Reference;
  constructor(client: RegistryClient, ref: Reference) {
    if (!ref.tag && !ref.digest)
      throw new InvalidReferenceError(`source ${formatRepository(ref)} needs a tag or digest`);
    this.client = client;
    this.ref = ref;
    this.name = formatReference(ref);
  }
  private resolved?: Promise<RawManifest>;

  get pinnedDigest(): Digest | undefined {
    return this.ref.digest;
  }

  get tag(): string | undefined {
    return this.ref.tag;
  }

  /** The root manifest, fetched once per source (the up-to-date check and the plan share it). */
  resolve(): Promise<RawManifest> {
    if (!this.resolved) {
      this.resolved = this.client.getManifest(this.ref);
      this.resolved.catch(() => {
        this.resolved = undefined;
      });
    }
    return this.resolved;
  }

  /**
   * The digest the reference points to, for up-to-date checks. Docker Hub counts manifest GETs against
   * its pull limit but not HEADs, so there it is one HEAD; elsewhere the GET the plan needs anyway
   * (saving a round trip when the image has to be copied).
   */
  async headDigest(): Promise<Digest | undefined> {
    if (this.ref.digest) return this.ref.digest;
    if (this.ref.registry !== "docker.io") return (await this.resolve()).digest;
    return (await this.client.headManifest(this.ref))?.digest;
  }
  getManifest(desc: Pick<Descriptor, "digest" | "mediaType">): Promise<RawManifest> {
    return this.client.getManifest({
      registry: this.ref.registry,
      repository: this.ref.repository,
      digest: desc.digest,
    });
  }
  openBlob(desc: Descriptor, offset = 0): Promise<Readable> {
    return this.client.openBlob(this.ref, desc, offset);
  }
}

export class RegistrySink implements ImageSink {
  readonly name: string;
  readonly client: RegistryClient;
  readonly repo: Repository;
  readonly acceptsIndex = true;
  /** Repositories on the same registry to mount blobs from. */
  private readonly mountFrom: Repository[];
  /** Creates the repository before the first write when it is missing (repositories.ts). */
  private readonly repositories: DestinationRepositories | undefined;
  private ensured: Promise<void> | undefined;

  constructor(
    client: RegistryClient,
    repo: Repository,
    opts: { mountFrom?: Repository[]; repositories?: DestinationRepositories } = {},
  ) {
    this.client = client;
    this.repo = { registry: repo.registry, repository: repo.repository };
    this.name = formatRepository(repo);
    this.mountFrom = (opts.mountFrom ?? []).filter(
      (r) => r.registry === repo.registry && r.repository !== repo.repository,
    );
    this.repositories = opts.repositories;
    client.declarePush(this.repo);
  }

  /** Before every write: the repository exists (asked once per sink; a failure is asked again). */
  private ready(): Promise<void> {
    if (!this.repositories) return Promise.resolve();
    if (!this.ensured) {
      this.ensured = this.repositories.ensure(this.repo).then(() => {});
      this.ensured.catch(() => {
        this.ensured = undefined;
      });
    }
    return this.ensured;
  }

  /** Learns the destination's auth challenge early (in parallel with planning): one round trip less later. */
  prepare(): void {
    this.client.ensureChallenge(this.repo.registry).catch(() => {});
  }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    const size = await this.client.headBlob(this.repo, desc.digest);
    return size !== undefined && (size === desc.size || size < 0 || desc.size < 0);
  }

  /** Blobs are shared by the registry's repositories (cross-repository mounts). */
  get blobScope(): string {
    return this.repo.registry;
  }

  async putBlob(
    desc: Descriptor,
    open: (offset: number) => Promise<Readable>,
    opts: BlobPutOptions = {},
  ): Promise<BlobPutResult> {
    await this.ready();
    return pushBlob(this.client, this.repo, desc, open, {
      skipExistsCheck: true,
      mountFrom: this.mountFrom,
      ...opts,
    });
  }

  async putBlobEager(
    desc: Descriptor,
    open: (offset: number) => Promise<Readable>,
    opts: BlobPutOptions = {},
  ): Promise<BlobPutResult> {
    await this.ready();
    return pushBlob(this.client, this.repo, desc, open, {
      eager: true,
      mountFrom: this.mountFrom,
      ...opts,
    });
  }

  async mountBlob(desc: Descriptor, from: ImageSink): Promise<boolean> {
    if (!(from instanceof RegistrySink)) return false;
    await this.ready();
    return tryMount(this.client, this.repo, desc.digest, [from.repo]);
  }

  async putBlobStream(
    mediaType: string,
    stream: Readable,
    progress?: (n: number) => void,
  ): Promise<Descriptor> {
    await this.ready();
    return pushBlobStream(this.client, this.repo, mediaType, stream, progress);
  }

  async putManifest(manifest: RawManifest, tag?: string): Promise<void> {
    await this.ready();
    await this.client.putManifest(this.repo, tag ?? manifest.digest, manifest);
  }

  async tagDigest(tag: string): Promise<Digest | undefined> {
    return (await this.client.headManifest({ ...this.repo, tag }))?.digest;
  }
}
