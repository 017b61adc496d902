/**
 * Destination repositories that must exist before the first write. Most registries create a repository
 * on its first push; Amazon ECR refuses the push (`404 NAME_UNKNOWN` on the first blob `POST`) until
 * `CreateRepository` ran. Creating one is an AWS control-plane call, so the implementation lives with
 * ferry's AWS code (shared/aws/ecr-repositories.ts); a copy only calls this interface:
 *   - the engine (`ferry copy`): through RegistrySink, before the sink's first write (blob, mount or
 *     manifest) — an image that is already up to date never asks;
 *   - the workflow (promotion, bulk migration, `ferry sync`): in Resolve, after the up-to-date check and
 *     before any blob step;
 *   - a dry run: `check` only, which changes nothing.
 *
 * Why ask before the first write rather than react to the first `NAME_UNKNOWN`: ECR answers a `HEAD` in
 * a missing repository with a bodiless 404, the same as for a missing blob, so the first unambiguous
 * answer is the first `POST` — which may come from any of several upload paths running at once (small
 * blobs eagerly, mounts, streamed and chunked uploads, the workflow's direct, mount and staged steps in
 * separate Lambdas), each of which would need the same recovery. One question per repository and run,
 * asked only for images that are about to be written, leaves every upload path as it is.
 */
import type { Repository } from "../registry/reference.ts";

/** `unmanaged`: not a registry whose repositories this creates (any registry but ECR). */
export type RepositoryCheck = "exists" | "missing" | "unmanaged";
export type RepositoryEnsured = "exists" | "created" | "unmanaged";

export interface DestinationRepositories {
  /** Whether `repo` exists, changing nothing (dry runs). */
  check(repo: Repository): Promise<RepositoryCheck>;
  /** Creates `repo` unless it exists. Idempotent: a repository created meanwhile by another run is fine. */
  ensure(repo: Repository): Promise<RepositoryEnsured>;
}
