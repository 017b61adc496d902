/** Media types ferry understands, and the Accept header that asks for all of them. */

export const MediaType = {
  OciManifest: "application/vnd.oci.image.manifest.v1+json",
  OciIndex: "application/vnd.oci.image.index.v1+json",
  OciConfig: "application/vnd.oci.image.config.v1+json",
  OciLayer: "application/vnd.oci.image.layer.v1.tar",
  OciLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  OciLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  OciEmpty: "application/vnd.oci.empty.v1+json",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  DockerConfig: "application/vnd.docker.container.image.v1+json",
  DockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  DockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  DockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  DockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  DockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

export const INDEX_TYPES: ReadonlySet<string> = new Set([MediaType.OciIndex, MediaType.DockerManifestList]);
export const IMAGE_MANIFEST_TYPES: ReadonlySet<string> = new Set([
  MediaType.OciManifest,
  MediaType.DockerManifest,
]);
export const SCHEMA1_TYPES: ReadonlySet<string> = new Set([
  MediaType.DockerSchema1,
  MediaType.DockerSchema1Signed,
]);

/** Every manifest type ferry reads, preferred first. Schema 1 is listed last: legacy registries only. */
export const MANIFEST_ACCEPT: readonly string[] = [
  MediaType.OciIndex,
  MediaType.DockerManifestList,
  MediaType.OciManifest,
  MediaType.DockerManifest,
  MediaType.DockerSchema1Signed,
  MediaType.DockerSchema1,
];

export function isIndexType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

export function isManifestType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType) || IMAGE_MANIFEST_TYPES.has(mediaType) || SCHEMA1_TYPES.has(mediaType);
}

/** Strips parameters (`; charset=utf-8`) and case from a Content-Type header. */
export function normaliseMediaType(contentType: string | undefined): string {
  return (contentType ?? "").split(";")[0]!.trim().toLowerCase();
}
