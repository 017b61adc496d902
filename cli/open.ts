/** Locations → ImageSource / ImageSink. */
import type { RegistryClient } from "../shared/registry/client.ts";
import { FerryError } from "../shared/registry/errors.ts";
import { formatRepository } from "../shared/registry/reference.ts";
import { RegistrySink, RegistrySource } from "../shared/transfer/registry-endpoints.ts";
import type { DestinationRepositories } from "../shared/transfer/repositories.ts";
import type { ImageSink, ImageSource } from "../shared/transfer/types.ts";
import type { Location } from "./endpoints.ts";

export async function openSource(loc: Location, client: RegistryClient): Promise<ImageSource> {
  switch (loc.kind) {
    case "registry":
      return new RegistrySource(client, loc.ref);
    // The archive code (tar, gzip) loads only for archive locations: registry copies start sooner.
    case "oci":
      return (await import("../shared/archive/oci-layout.ts")).openOciLayout(loc.dir, loc.tag);
    case "docker-archive":
      return (await import("../shared/archive/docker-archive.ts")).openDockerArchive(
        loc.file,
        loc.name ? { image: loc.name } : {},
      );
    case "oci-archive":
      return (await import("../shared/archive/docker-archive.ts")).openDockerArchive(loc.file, {
        transport: "oci-archive",
        ...(loc.tag ? { image: loc.tag } : {}),
      });
    case "rootfs":
      throw new FerryError("USAGE", `rootfs: is a destination only (ferry pull <ref> rootfs:<dir>)`);
  }
}

/**
 * The sink for `loc`. Registry sinks mount from the source's repository when both are on one registry,
 * and with `repositories` create their repository before the first write when it is missing (ECR).
 */
export async function openSink(
  loc: Location,
  client: RegistryClient,
  from?: Location,
  opts: { repositories?: DestinationRepositories } = {},
): Promise<ImageSink> {
  switch (loc.kind) {
    case "registry": {
      const mountFrom = from?.kind === "registry" ? [from.ref] : [];
      return new RegistrySink(client, loc.ref, { mountFrom, ...opts });
    }
    case "oci":
      return (await import("../shared/archive/oci-layout.ts")).createOciLayoutSink(loc.dir);
    case "oci-archive":
      return (await import("../shared/archive/oci-archive.ts")).createOciArchiveSink(loc.file);
    case "docker-archive": {
      let name = loc.name;
      if (!name && from?.kind === "registry")
        name = `${formatRepository(from.ref).replace(/^docker\.io\/(library\/)?/, "")}:${from.ref.tag ?? "latest"}`;
      return (await import("../shared/archive/docker-archive-sink.ts")).createDockerArchiveSink(loc.file, {
        repoTags: name ? [name] : [],
      });
    }
    case "rootfs":
      throw new FerryError("USAGE", "rootfs: destinations are written by `ferry pull`");
  }
}

/** The destination tags implied by a location (registry tag, OCI layout tag). */
export function locationTags(loc: Location, from: Location): string[] | undefined {
  if (loc.kind === "registry") {
    if (loc.ref.tag) return [loc.ref.tag];
    return [];
  }
  if (loc.kind === "oci" || loc.kind === "oci-archive") {
    if (loc.tag) return [loc.tag];
    if (from.kind === "registry" && from.ref.tag) return [from.ref.tag];
    return [];
  }
  return undefined;
}
