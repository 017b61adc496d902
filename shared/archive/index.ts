/**
 * Images in files: OCI image layouts, docker-archive tars (`docker save` / `docker load`), and root
 * filesystem extraction from layers. Everything streams: layers are never held in memory.
 */
export { type Compression, compressionOfMediaType, detectCompression } from "./compression.ts";
export {
  type DockerArchiveManifestEntry,
  type DockerArchiveSource,
  type OpenDockerArchiveOptions,
  openDockerArchive,
} from "./docker-archive.ts";
export {
  createDockerArchiveSink,
  type DockerArchiveSink,
  type DockerArchiveSinkOptions,
} from "./docker-archive-sink.ts";
export {
  ArchiveError,
  BlobNotFoundError,
  DestinationNotEmptyError,
  ExtractLimitError,
  ImageNotFoundError,
  UnsafePathError,
  UnsupportedManifestError,
} from "./errors.ts";
export { createOciArchiveSink, type OciArchiveSink } from "./oci-archive.ts";
export {
  CONTAINERD_NAME_ANNOTATION,
  createOciLayoutSink,
  type OciLayoutSink,
  type OciLayoutSource,
  openOciLayout,
  REF_NAME_ANNOTATION,
} from "./oci-layout.ts";
export {
  DEFAULT_MAX_EXTRACT_BYTES,
  type ExtractOptions,
  type ExtractSummary,
  extractLayers,
  type LayerInput,
  type WorkCounters,
} from "./rootfs.ts";
export { indexTar, openTarEntry, resolveTarEntry, type TarEntryInfo, type TarIndex } from "./tar-index.ts";
