/**
 * Transport-prefixed locations, as skopeo spells them:
 *   docker://host/repo:tag  (or a bare reference)   a registry
 *   oci:<dir>[:tag]                                 an OCI image layout
 *   oci-archive:<file>[:tag]                        an OCI image layout in a tar
 *   docker-archive:<file>[:name:tag]                a `docker save` tar
 *   rootfs:<dir>                                    a new or empty directory to unpack into (pull only)
 * Locations are what the user typed: whatever is wrong with one is a usage error (exit 2).
 */
import { InvalidReferenceError } from "../shared/registry/errors.ts";
import { parseReference, type Reference } from "../shared/registry/reference.ts";
import { usage } from "./usage.ts";

export type Location =
  | { kind: "registry"; ref: Reference; text: string }
  | { kind: "oci"; dir: string; tag?: string; text: string }
  | { kind: "oci-archive"; file: string; tag?: string; text: string }
  | { kind: "docker-archive"; file: string; name?: string; text: string }
  | { kind: "rootfs"; dir: string; text: string };

export function parseLocation(text: string, defaultTag: string | null = "latest"): Location {
  return usage(() => parse(text, defaultTag));
}

function parse(text: string, defaultTag: string | null): Location {
  if (text.startsWith("docker://"))
    return { kind: "registry", ref: parseReference(text.slice(9), defaultTag), text };
  for (const kind of ["oci", "oci-archive"] as const) {
    if (!text.startsWith(`${kind}:`)) continue;
    const rest = text.slice(kind.length + 1);
    const what = kind === "oci" ? "a directory" : "a file";
    if (!rest || rest.startsWith(":")) throw new InvalidReferenceError(`"${text}": ${kind}: needs ${what}`);
    const i = rest.lastIndexOf(":");
    // a colon followed by a tag, not a Windows drive or a path segment
    const tag = i > 0 && !rest.slice(i + 1).includes("/") ? rest.slice(i + 1) : undefined;
    const path = tag === undefined ? rest : rest.slice(0, i);
    if (tag === "") throw new InvalidReferenceError(`"${text}": empty tag after "${path}:"`);
    return kind === "oci"
      ? { kind, dir: path, ...(tag ? { tag } : {}), text }
      : { kind, file: path, ...(tag ? { tag } : {}), text };
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
  const scheme = /^(dir|containers-storage|docker-daemon|ostree|sif|tarball):/.exec(text);
  if (scheme) {
    throw new InvalidReferenceError(
      `ferry does not read or write "${scheme[1]}:" (in "${text}"); use docker://, oci:, oci-archive:, docker-archive: or rootfs:`,
    );
  }
  return { kind: "registry", ref: parseReference(text, defaultTag), text };
}
