/**
 * Image references, parsed and normalised the way Docker does it:
 * `ubuntu` is `docker.io/library/ubuntu:latest`, whose API host is `registry-1.docker.io`.
 * Grammar: distribution/reference (reference.go): name [":" tag] ["@" digest].
 */
import { type Digest, parseDigest } from "./digest.ts";
import { InvalidReferenceError } from "./errors.ts";

export const DOCKER_HUB = "docker.io";
export const DOCKER_HUB_API = "registry-1.docker.io";
const NAME_TOTAL_MAX = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/** A repository on a registry: `registry` is the host as users write it (`docker.io`, `localhost:5000`). */
export interface Repository {
  readonly registry: string;
  readonly repository: string;
}

/** A parsed reference. At least one of `tag` and `digest` is set (`latest` is filled in when neither is given). */
export interface Reference extends Repository {
  readonly tag?: string;
  readonly digest?: Digest;
}

/**
 * Parses an image reference. Throws InvalidReferenceError with a message that says what is wrong.
 * @param defaultTag tag filled in when the reference has neither tag nor digest; pass `null` to leave both empty.
 */
export function parseReference(input: string, defaultTag: string | null = "latest"): Reference {
  if (typeof input !== "string" || input.length === 0)
    throw new InvalidReferenceError("empty image reference");
  const shown = input.length > 120 ? `${input.slice(0, 120)}…` : input;
  if (/\s/.test(input)) throw new InvalidReferenceError(`invalid reference "${shown}": contains white space`);
  if (input.includes("://")) {
    throw new InvalidReferenceError(
      `invalid reference "${shown}": give host/repository[:tag][@digest], not a URL`,
    );
  }

  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    try {
      digest = parseDigest(rest.slice(at + 1));
    } catch (e) {
      throw new InvalidReferenceError(`invalid reference "${shown}": ${(e as Error).message}`);
    }
    rest = rest.slice(0, at);
  }

  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      throw new InvalidReferenceError(
        `invalid reference "${shown}": tag "${tag}" must be 1–128 characters of letters, digits, '_', '.', '-', not starting with '.' or '-'`,
      );
    }
  }

  const repo = parseRepository(rest, shown);
  if (!tag && !digest && defaultTag) tag = defaultTag;
  return { ...repo, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** Parses `host/name` or `name` (no tag or digest) into a normalised repository. */
export function parseRepository(input: string, shown = input): Repository {
  if (!input) throw new InvalidReferenceError(`invalid reference "${shown}": missing repository name`);
  let registry = DOCKER_HUB;
  let path = input;
  const slash = input.indexOf("/");
  if (slash >= 0) {
    const first = input.slice(0, slash);
    if (
      first.includes(".") ||
      first.includes(":") ||
      first === "localhost" ||
      first !== first.toLowerCase()
    ) {
      registry = first;
      path = input.slice(slash + 1);
    }
  }
  validateRegistryHost(registry, shown);
  if (registry === "index.docker.io" || registry === DOCKER_HUB_API) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !path.includes("/")) path = `library/${path}`;
  for (const component of path.split("/")) {
    if (!PATH_COMPONENT.test(component)) {
      const hint = component !== component.toLowerCase() ? " (repository names must be lowercase)" : "";
      throw new InvalidReferenceError(
        `invalid reference "${shown}": repository component "${component}" is not valid${hint}`,
      );
    }
  }
  if (registry.length + 1 + path.length > NAME_TOTAL_MAX) {
    throw new InvalidReferenceError(
      `invalid reference "${shown}": name longer than ${NAME_TOTAL_MAX} characters`,
    );
  }
  return { registry, repository: path };
}

function validateRegistryHost(host: string, shown: string): void {
  let name = host;
  let port: string | undefined;
  const ipv6 = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(host);
  if (ipv6) {
    port = ipv6[2];
  } else {
    const c = host.lastIndexOf(":");
    if (c >= 0) {
      name = host.slice(0, c);
      port = host.slice(c + 1);
      if (!/^\d+$/.test(port))
        throw new InvalidReferenceError(`invalid reference "${shown}": bad port "${port}"`);
    }
    if (!name.split(".").every((part) => DOMAIN_COMPONENT.test(part))) {
      throw new InvalidReferenceError(`invalid reference "${shown}": bad registry host "${host}"`);
    }
  }
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    throw new InvalidReferenceError(`invalid reference "${shown}": port ${port} out of range`);
  }
}

/** The host to send API requests to: Docker Hub's API lives on `registry-1.docker.io`. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}

/** True for hosts on this machine: they get plain HTTP by default (as Docker and skopeo do for localhost). */
export function isLoopbackHost(registry: string): boolean {
  const host = registry.startsWith("[")
    ? registry.slice(1, registry.indexOf("]"))
    : registry.replace(/:\d+$/, "");
  return (
    host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host) || host.endsWith(".localhost")
  );
}

/** `registry/repository[:tag][@digest]`, in the normalised form (docker.io names keep their `library/`). */
export function formatReference(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ""}${ref.digest ? `@${ref.digest}` : ""}`;
}

export function formatRepository(repo: Repository): string {
  return `${repo.registry}/${repo.repository}`;
}

/** The tag or digest to ask the registry for: the digest wins when both are given (it pins the content). */
export function referenceTarget(ref: Reference): string {
  const target = ref.digest ?? ref.tag;
  if (!target)
    throw new InvalidReferenceError(`reference ${formatReference(ref)} has neither tag nor digest`);
  return target;
}

export function withTarget(repo: Repository, target: { tag?: string; digest?: Digest }): Reference {
  return { registry: repo.registry, repository: repo.repository, ...target };
}
