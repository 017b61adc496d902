/**
 * Transport-prefixed locations, as skopeo spells them:
 *   docker://host/repo:tag  (or a bare reference)   a registry
 *   oci:<dir>[:tag]                                 an OCI image layout
 *   docker-archive:<file>[:name:tag]                a `docker save` tar
 *   rootfs:<dir>                                    a new or empty directory to unpack into (pull only)
 */
import { InvalidReferenceError } from "../shared/registry/errors.ts";
import { parseReference, type Reference } from "../shared/registry/reference.ts";

export type Location =
  | { kind: "registry"; ref: Reference; text: string }
  | { kind: "oci"; dir: string; tag?: string; text: string }
  | { kind: "docker-archive"; file: string; name?: string; text: string }
  | { kind: "rootfs"; dir: string; text: string };

export function parseLocation(text: string, defaultTag: string | null = "latest"): Location {
  if (text.startsWith("docker://"))
    return { kind: "registry", ref: parseReference(text.slice(9), defaultTag), text };
  if (text.startsWith("oci:")) {
    const rest = text.slice(4);
    const i = rest.lastIndexOf(":");
    // a colon followed by a tag, not a Windows drive or a path segment
    if (i > 0 && !rest.slice(i + 1).includes("/"))
      return { kind: "oci", dir: rest.slice(0, i), tag: rest.slice(i + 1), text };
    if (!rest) throw new InvalidReferenceError(`"${text}": oci: needs a directory`);
    return { kind: "oci", dir: rest, text };
  }
  if (text.startsWith("docker-archive:")) {
    const rest = text.slice(15);
    const i = rest.indexOf(":");
    if (!rest || i === 0) throw new InvalidReferenceError(`"${text}": docker-archive: needs a file`);
    return i > 0
      ? { kind: "docker-archive", file: rest.slice(0, i), name: rest.slice(i + 1), text }
      : { kind: "docker-archive", file: rest, text };
  }
  if (text.startsWith("rootfs:")) {
    if (text.length === 7) throw new InvalidReferenceError(`"${text}": rootfs: needs a directory`);
    return { kind: "rootfs", dir: text.slice(7), text };
  }
  const scheme = /^(dir|containers-storage|docker-daemon|oci-archive|ostree|sif|tarball):/.exec(text);
  if (scheme) {
    throw new InvalidReferenceError(
      `ferry does not read or write "${scheme[1]}:" (in "${text}"); use docker://, oci:, docker-archive: or rootfs:)`,
    );
  }
  return { kind: "registry", ref: parseReference(text, defaultTag), text };
}
