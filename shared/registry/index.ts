/**
 * shared/registry — an OCI Distribution client on undici. No AWS, middy or staging imports here.
 *
 * ```ts
 * const client = new RegistryClient({ credentials: new DockerConfigCredentials() });
 * const ref = parseReference("localhost:5000/app:1.0");
 * const manifest = await client.getManifest(ref);          // exact bytes + digest
 * const blob = await client.getBlob(ref, desc);            // stream, verified on the fly
 * await pushBlob(client, dst, desc, (off) => client.openBlob(ref, desc, off));
 * ```
 */
export * from "./auth/challenge.ts";
export * from "./auth/credentials.ts";
export { type ManifestInfo, RegistryClient, readLimited } from "./client.ts";
export * from "./digest.ts";
export * from "./errors.ts";
export {
  type HttpRequest,
  type HttpResponse,
  isNetworkError,
  retryAfterMs,
  Transport,
} from "./http/transport.ts";
export * from "./manifest.ts";
export * from "./media-types.ts";
export * from "./options.ts";
export * from "./reference.ts";
export * from "./referrers.ts";
export * from "./uploads.ts";
