/**
 * Layer compression: detection by magic bytes (authoritative: docker-archive layers are often
 * mislabelled) with the media type as a hint, and streaming decompressors.
 */
import type { Transform } from "node:stream";
import * as zlib from "node:zlib";
import { MediaType } from "../registry/media-types.ts";
import { ArchiveError } from "./errors.ts";

export type Compression = "none" | "gzip" | "zstd" | "bzip2" | "xz";

/** Detects the compression of a stream from its first bytes (at least 6 for xz). */
export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd)
    return "zstd";
  if (head.length >= 3 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return "bzip2";
  if (
    head.length >= 6 &&
    head[0] === 0xfd &&
    head[1] === 0x37 &&
    head[2] === 0x7a &&
    head[3] === 0x58 &&
    head[4] === 0x5a
  )
    return "xz";
  return "none";
}

/** The compression a layer media type announces (`+gzip`, `.gzip`, `+zstd`), or "none". */
export function compressionOfMediaType(mediaType: string | undefined): Compression {
  if (!mediaType) return "none";
  if (/[+.]gzip$/.test(mediaType)) return "gzip";
  if (/[+.]zstd$/.test(mediaType)) return "zstd";
  return "none";
}

type ZstdFactory = (opts?: { chunkSize?: number }) => Transform;

/** zlib.createZstdDecompress when this Node has it (22.15+ / 23.8+). */
export function zstdDecompressor(): ZstdFactory | undefined {
  const f = (zlib as unknown as { createZstdDecompress?: ZstdFactory }).createZstdDecompress;
  return typeof f === "function" ? () => f.call(zlib, { chunkSize: 64 * 1024 }) : undefined;
}

/** A decompressing transform for `kind`, or undefined for "none". */
export function decompressor(kind: Compression, what: string): Transform | undefined {
  switch (kind) {
    case "none":
      return undefined;
    case "gzip":
      return zlib.createGunzip({ chunkSize: 64 * 1024 });
    case "zstd": {
      const z = zstdDecompressor();
      if (!z)
        throw new ArchiveError(
          `${what}: zstd-compressed, but this Node (${process.version}) has no zstd support`,
        );
      return z();
    }
    default:
      throw new ArchiveError(
        `${what}: ${kind}-compressed layers are not supported (gzip, zstd or uncompressed)`,
      );
  }
}

/** The layer media types for a compression, Docker and OCI flavours. */
export function layerMediaType(kind: Compression, flavour: "docker" | "oci"): string {
  if (flavour === "docker") {
    if (kind === "gzip") return MediaType.DockerLayerGzip;
    if (kind === "none") return MediaType.DockerLayer;
  }
  if (kind === "gzip") return MediaType.OciLayerGzip;
  if (kind === "zstd") return MediaType.OciLayerZstd;
  if (kind === "none") return MediaType.OciLayer;
  throw new ArchiveError(`no ${flavour} layer media type for ${kind} compression`);
}
