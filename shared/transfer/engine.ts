/**
 * The transfer engine: copies images between any ImageSource and ImageSink.
 *
 *   plan (manifests + unique blobs) → blobs concurrently (each digest once per run, per destination)
 *   → manifests children-first → root with its tags → referrers.
 *
 * A manifest is put only after every blob it references was confirmed present or copied and verified.
 * One engine is meant to serve a whole run (`copy --from-file`): blobs shared by several images are
 * handled once (single-flight per destination and digest), and the concurrency limit is global.
 */
import type { Readable } from "node:stream";
import pLimit, { type LimitFunction } from "p-limit";
import { now } from "../clock.ts";
import { sha256, VerifyingStream } from "../registry/digest.ts";
import { FerryError } from "../registry/errors.ts";
import type { Descriptor, Platform, RawManifest } from "../registry/manifest.ts";
import { MediaType } from "../registry/media-types.ts";
import { putManifests } from "./manifests.ts";
import {
  clobberedTag,
  type PlannedManifest,
  planTransfer,
  type TransferPlan,
  upToDateDigest,
} from "./plan.ts";
import { copyReferrers } from "./referrers.ts";
import { type BlobReport, type ImageReport, type ManifestReport, sumTotals } from "./report.ts";
import type { ImageSink, ImageSource } from "./types.ts";

export type ProgressEvent =
  | { type: "plan"; source: string; blobs: number; bytes: number }
  | { type: "blob-start"; digest: string; size: number }
  | { type: "blob-bytes"; digest: string; bytes: number }
  | { type: "blob-done"; digest: string; action: BlobReport["action"] }
  | { type: "manifest"; digest: string; tag?: string };

export interface EngineOptions {
  /**
   * Large blobs moved at once across the whole run. Default 6: saturates a registry without thrashing it.
   * Small blobs (under 1 MiB: configs, thin layers) are bound by round trips, not bandwidth, and get a
   * separate limit four times as high.
   */
  concurrency?: number;
  onProgress?: (e: ProgressEvent) => void;
}

export interface CopyOptions {
  /** Keep only these platforms of an index. */
  platforms?: Platform[];
  /** Destination tags. Default: the source's tag (none when the source is pinned by digest only). */
  tags?: string[];
  /** Refuse to move a tag that already points to a different digest. */
  noClobber?: boolean;
  /** Also copy artifacts that refer to the image (signatures, SBOMs, attestations). */
  referrers?: boolean;
  /** Compress uncompressed layers with gzip on the way (config diff_ids stay the uncompressed digests). */
  compress?: "gzip";
  /** Skip the up-to-date shortcut and re-check every blob. */
  force?: boolean;
}

/** Below this size a blob's copy is dominated by round trips (see EngineOptions.concurrency). */
const SMALL_BLOB = 1024 * 1024;

export class TransferEngine {
  private readonly limit: LimitFunction;
  private readonly limitSmall: LimitFunction;
  private readonly inflight = new Map<string, Promise<{ report: BlobReport; sink: ImageSink }>>();
  private readonly onProgress: (e: ProgressEvent) => void;

  constructor(opts: EngineOptions = {}) {
    this.limit = pLimit(opts.concurrency ?? 6);
    this.limitSmall = pLimit(4 * (opts.concurrency ?? 6));
    this.onProgress = opts.onProgress ?? (() => {});
  }

  /** Copies one image. Throws on the first failure, after the other in-flight blobs settle. */
  async copy(source: ImageSource, sink: ImageSink, opts: CopyOptions = {}): Promise<ImageReport> {
    const started = now();
    const tags = opts.tags ?? (source.tag ? [source.tag] : []);

    sink.prepare?.();
    const upToDate = await upToDateDigest(source, sink, tags, opts);
    if (upToDate) {
      const report = this.report(source, sink, upToDate, [], [], [], [], started, true);
      if (opts.referrers)
        report.referrers = await copyReferrers(this.copy.bind(this), source, sink, [upToDate]);
      return report;
    }

    const plan = await planTransfer(source, {
      ...(opts.platforms ? { platforms: opts.platforms } : {}),
      singleImage: sink.acceptsIndex === false,
    });
    this.onProgress({ type: "plan", source: source.name, blobs: plan.blobs.length, bytes: plan.totalBytes });
    if (opts.noClobber) await this.checkClobber(sink, tags, plan.root.raw.digest);

    let manifests = plan.manifests;
    let blobs: BlobReport[];
    if (opts.compress) ({ manifests, blobs } = await this.copyCompressed(source, sink, plan));
    else blobs = await this.copyBlobs(source, sink, plan.blobs);

    // Every blob is present: manifests, children first, then the root under each tag.
    const root = manifests[manifests.length - 1]!;
    const reports = await putManifests(sink, manifests, tags, (digest, tag) =>
      this.onProgress({ type: "manifest", digest, ...(tag ? { tag } : {}) }),
    );
    const report = this.report(source, sink, root.raw.digest, reports, blobs, plan.notes, [], started, false);
    if (opts.referrers)
      report.referrers = await copyReferrers(
        this.copy.bind(this),
        source,
        sink,
        manifests.map((m) => m.raw.digest),
      );
    return report;
  }

  private async checkClobber(sink: ImageSink, tags: string[], digest: string): Promise<void> {
    const clobbered = await clobberedTag(sink, tags, digest);
    if (clobbered) {
      throw new FerryError(
        "TAG_EXISTS",
        `${sink.name}:${clobbered.tag} already points to ${clobbered.existing} (not ${digest}); refusing to overwrite (--no-clobber)`,
      );
    }
  }

  /** Copies blobs concurrently; waits for all to settle, then throws the first failure if any. */
  private async copyBlobs(source: ImageSource, sink: ImageSink, blobs: Descriptor[]): Promise<BlobReport[]> {
    const results = await Promise.allSettled(blobs.map((d) => this.copyBlobOnce(source, sink, d)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    return results.map((r) => (r as PromiseFulfilledResult<BlobReport>).value);
  }

  /**
   * One blob, one move per run. Single-flight per destination *store* and digest: for registries the
   * store is the registry (`blobScope`), so the first destination repository that needs a blob gets its
   * bytes — read from the source once, uploaded once — and every other repository of that registry gets
   * it by a cross-repository mount from there (a copy when the registry refuses the mount, as ECR does
   * across accounts). A failed move is forgotten, so a later image may try again.
   */
  private copyBlobOnce(source: ImageSource, sink: ImageSink, desc: Descriptor): Promise<BlobReport> {
    const key = `${sink.blobScope ?? sink.name}\n${desc.digest}`;
    const existing = this.inflight.get(key);
    if (existing) {
      return existing.then(async (first) => {
        if (first.sink === sink || first.sink.name === sink.name)
          return { ...first.report, shared: true, bytesSent: 0 };
        return this.limitSmall(async () => {
          const t0 = now();
          if (sink.mountBlob && (await sink.mountBlob(desc, first.sink)))
            return this.blobReport(desc, "mounted", 0, t0);
          return this.copyBlob(source, sink, desc); // the mount was refused: the bytes move again
        });
      });
    }
    const limit = desc.size >= 0 && desc.size < SMALL_BLOB ? this.limitSmall : this.limit;
    const p = limit(() => this.copyBlob(source, sink, desc));
    const entry = p.then((report) => ({ report, sink }));
    this.inflight.set(key, entry);
    entry.catch(() => this.inflight.delete(key)); // failures may be retried by a later image
    return p;
  }

  private blobReport(
    desc: Descriptor,
    action: BlobReport["action"],
    bytesSent: number,
    t0: number,
  ): BlobReport {
    this.onProgress({ type: "blob-done", digest: desc.digest, action });
    return {
      digest: desc.digest,
      mediaType: desc.mediaType,
      size: desc.size,
      action,
      bytesSent,
      seconds: (now() - t0) / 1000,
    };
  }

  private async copyBlob(source: ImageSource, sink: ImageSink, desc: Descriptor): Promise<BlobReport> {
    const t0 = now();
    const opts = {
      source: source.name,
      progress: (bytes: number) => this.onProgress({ type: "blob-bytes", digest: desc.digest, bytes }),
    };
    const open = (offset: number) => source.openBlob(desc, offset);
    if (sink.putBlobEager && desc.size >= 0 && desc.size < SMALL_BLOB) {
      // small blob: presence check, session and source request overlap (round trips dominate)
      this.onProgress({ type: "blob-start", digest: desc.digest, size: desc.size });
      const r = await sink.putBlobEager(desc, open, opts);
      return this.blobReport(desc, r.action === "uploaded" ? "copied" : r.action, r.bytesSent, t0);
    }
    if (await sink.hasBlob(desc)) return this.blobReport(desc, "skipped", 0, t0);
    this.onProgress({ type: "blob-start", digest: desc.digest, size: desc.size });
    const result = await sink.putBlob(desc, open, opts);
    return this.blobReport(
      desc,
      result.action === "uploaded" ? "copied" : result.action,
      result.bytesSent,
      t0,
    );
  }

  /**
   * `--compress gzip`: uncompressed layers are gzipped while streaming to the sink (their digest is
   * known only at the end), then the image manifest is rewritten with the new layer descriptors.
   * The config (and its diff_ids, the uncompressed digests) is unchanged.
   */
  private async copyCompressed(source: ImageSource, sink: ImageSink, plan: TransferPlan) {
    if (plan.root.manifest.kind !== "manifest") {
      throw new FerryError(
        "UNSUPPORTED",
        `--compress applies to single images; ${plan.source} is an index: add --platform`,
      );
    }
    if (!sink.putBlobStream) throw new FerryError("UNSUPPORTED", `${sink.name} cannot take --compress`);
    const manifest = plan.root.manifest;
    const compressible = (d: Descriptor) =>
      d.mediaType === MediaType.DockerLayer || d.mediaType === MediaType.OciLayer;
    const others = plan.blobs.filter((d) => !compressible(d));
    const reports = await this.copyBlobs(source, sink, others);
    const replaced = new Map<string, Descriptor>();
    await Promise.all(
      manifest.layers.filter(compressible).map((d) =>
        this.limit(async () => {
          const t0 = now();
          const raw = await source.openBlob(d, 0);
          const verify = new VerifyingStream({
            digest: d.digest,
            size: d.size,
            what: `layer ${d.digest} of ${plan.source}`,
          });
          const gzip = (await import("node:zlib")).createGzip({ level: 6 });
          raw.on("error", (e) => verify.destroy(e));
          verify.on("error", (e) => gzip.destroy(e));
          const type =
            d.mediaType === MediaType.DockerLayer ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip;
          const out = await sink.putBlobStream!(type, raw.pipe(verify).pipe(gzip) as Readable, (bytes) =>
            this.onProgress({ type: "blob-bytes", digest: d.digest, bytes }),
          );
          replaced.set(d.digest, out);
          reports.push({
            digest: out.digest,
            mediaType: type,
            size: out.size,
            action: "copied",
            bytesSent: out.size,
            seconds: (now() - t0) / 1000,
          });
        }),
      ),
    );
    const json = JSON.parse(Buffer.from(plan.root.raw.bytes).toString("utf8")) as { layers: Descriptor[] };
    json.layers = json.layers.map((l) => {
      const r = replaced.get(l.digest);
      return r ? { ...l, mediaType: r.mediaType, digest: r.digest, size: r.size } : l;
    });
    const bytes = Buffer.from(JSON.stringify(json, null, 2));
    const raw: RawManifest = { bytes, mediaType: plan.root.raw.mediaType, digest: sha256(bytes) };
    const root: PlannedManifest = { raw, manifest: { ...manifest, layers: json.layers } };
    plan.notes.push(
      `compressed ${replaced.size} layer(s) with gzip: manifest digest ${plan.root.raw.digest} → ${raw.digest}`,
    );
    return { manifests: [root], blobs: reports };
  }

  private report(
    source: ImageSource,
    sink: ImageSink,
    digest: string,
    manifests: ManifestReport[],
    blobs: BlobReport[],
    notes: string[],
    referrers: ImageReport[],
    started: number,
    upToDate: boolean,
  ): ImageReport {
    const seconds = (now() - started) / 1000;
    return {
      source: source.name,
      destination: sink.name,
      digest,
      upToDate,
      manifests,
      blobs,
      referrers,
      notes,
      totals: sumTotals(blobs, seconds),
    };
  }
}
