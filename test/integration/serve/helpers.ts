/** Test helpers for `ferry serve`: a registry in a temp root and a raw-path HTTP client. */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { Pool } from "undici";
import { type RegistryOptions, type RunningRegistry, startRegistry } from "../../../serve/index.ts";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  // biome-ignore lint/suspicious/noExplicitAny: tests index into error and listing bodies freely
  json: () => any;
}

export interface TestRegistry {
  registry: RunningRegistry;
  root: string;
  /** Sends a request with the path exactly as given (no URL normalisation). */
  api(
    method: string,
    path: string,
    opts?: { headers?: Record<string, string>; body?: Buffer | string | AsyncIterable<Buffer> },
  ): Promise<Reply>;
  /** Monolithic upload; returns the digest. */
  pushBlob(name: string, data: Buffer | string): Promise<string>;
  /** PUT a manifest; returns the reply. */
  pushManifest(name: string, ref: string, manifest: unknown, mediaType?: string): Promise<Reply>;
  stop(): Promise<void>;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
export function bytes(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function header(reply: Reply, name: string): string | undefined {
  return reply.headers[name.toLowerCase()];
}

/** A request function over one undici dispatcher (see {@link TestRegistry.api}). */
export type Api = TestRegistry["api"];

/**
 * An HTTP client of `url` of its own: `connections` sockets (default 1), bound to `localAddress`
 * when given (Linux routes all of 127/8 to the loopback, so 127.0.0.2 is a second client address).
 */
export function apiClient(
  url: string,
  opts: { localAddress?: string; connections?: number } = {},
): { api: Api; close: () => Promise<void> } {
  const dispatcher = new Pool(url, {
    connections: opts.connections ?? 1,
    ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
  });
  const api: Api = async (method, path, o = {}) => {
    const res = await dispatcher.request({
      method: method as "GET",
      path,
      headers: o.headers ?? {},
      body:
        o.body === undefined
          ? null
          : typeof o.body === "string" || Buffer.isBuffer(o.body)
            ? o.body
            : Readable.from(o.body),
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers))
      headers[k] = Array.isArray(v) ? v.join(", ") : (v ?? "");
    return { status: res.statusCode, headers, body, json: () => JSON.parse(body.toString("utf8")) };
  };
  return { api, close: () => dispatcher.close() };
}

export async function startTestRegistry(opts: Partial<RegistryOptions> = {}): Promise<TestRegistry> {
  const root = opts.root ?? (await mkdtemp(join(tmpdir(), "ferry-serve-")));
  const registry = await startRegistry({ port: 0, ...opts, root });
  const client = apiClient(registry.url);
  const api = client.api;

  return {
    registry,
    root,
    api,
    async pushBlob(name, data) {
      const digest = sha256(data);
      const r = await api("POST", `/v2/${name}/blobs/uploads/?digest=${digest}`, {
        body: typeof data === "string" ? Buffer.from(data) : data,
        headers: { "content-type": "application/octet-stream" },
      });
      if (r.status !== 201) throw new Error(`pushBlob: ${r.status} ${r.body.toString()}`);
      return digest;
    },
    async pushManifest(name, ref, manifest, mediaType = OCI_MANIFEST) {
      const body = Buffer.isBuffer(manifest) ? manifest : Buffer.from(JSON.stringify(manifest));
      return api("PUT", `/v2/${name}/manifests/${ref}`, { body, headers: { "content-type": mediaType } });
    },
    async stop() {
      await client.close();
      await registry.close();
      if (!opts.root) await rm(root, { recursive: true, force: true });
    },
  };
}

/** Pushes a config and one layer and returns a manifest referencing them (not pushed). */
export async function makeImage(
  reg: TestRegistry,
  name: string,
  seed = 1,
  extra: Record<string, unknown> = {},
): Promise<{ manifest: Record<string, unknown>; bytes: Buffer; digest: string }> {
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", seed }));
  const layer = bytes(1000 + seed, seed);
  const configDigest = await reg.pushBlob(name, config);
  const layerDigest = await reg.pushBlob(name, layer);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
    layers: [{ mediaType: OCI_LAYER_GZIP, digest: layerDigest, size: layer.length }],
    ...extra,
  };
  const raw = Buffer.from(JSON.stringify(manifest, null, 2));
  return { manifest, bytes: raw, digest: sha256(raw) };
}
