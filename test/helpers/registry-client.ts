import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { inject } from "vitest";
import { StaticCredentials } from "../../shared/registry/auth/credentials.ts";
import { RegistryClient } from "../../shared/registry/client.ts";
import { sha256 } from "../../shared/registry/digest.ts";
import type { Descriptor } from "../../shared/registry/manifest.ts";
import type { ClientOptions } from "../../shared/registry/options.ts";
import { type SampleImage, writeSample } from "../../shared/sample/image.ts";
import { RegistrySink } from "../../shared/transfer/registry-endpoints.ts";
import type { RegistryInfo } from "./context.ts";

/** A client with the credentials of a harness registry (fast retries for tests). */
export function clientFor(reg: RegistryInfo, opts: ClientOptions = {}): RegistryClient {
  const credentials = new StaticCredentials();
  if (reg.username && reg.password)
    credentials.set(reg.host, { username: reg.username, password: reg.password });
  return new RegistryClient({ credentials, retryBaseMs: 20, retryMaxMs: 500, ...opts });
}

/**
 * Pushes sample images (and their index, if given) to `repository` of a harness registry under `tag`,
 * with a client of its own; returns the reference `host/repository:tag`.
 */
export async function pushSample(
  reg: RegistryInfo,
  repository: string,
  images: SampleImage[],
  index: SampleImage["manifest"] | undefined,
  tag = "v1",
): Promise<string> {
  const c = clientFor(reg);
  try {
    await writeSample(new RegistrySink(c, { registry: reg.host, repository }), images, index, tag);
  } finally {
    await c.close();
  }
  return `${reg.host}/${repository}:${tag}`;
}

export function registries() {
  return inject("registries");
}

let counter = 0;
/** A repository name unique to this test run and worker. */
export function uniqueRepo(prefix = "t"): string {
  counter++;
  return `${prefix}/${process.pid}-${Date.now().toString(36)}-${counter}`;
}

/** Random bytes with their descriptor. */
export function randomBlob(
  size: number,
  mediaType = "application/octet-stream",
): { bytes: Buffer; desc: Descriptor } {
  const bytes = randomBytes(size);
  return { bytes, desc: { mediaType, digest: sha256(bytes), size } };
}

/** An opener over an in-memory buffer, as `pushBlob` expects. */
export function bufferOpener(bytes: Buffer, chunk = 64 * 1024) {
  return async (offset: number) => {
    const parts: Buffer[] = [];
    for (let i = offset; i < bytes.length; i += chunk)
      parts.push(bytes.subarray(i, Math.min(i + chunk, bytes.length)));
    return Readable.from(parts);
  };
}

export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
