/**
 * What bulk runs (`ferry copy --from-file`, `ferry sync`) share on the command line: the dry-run report,
 * the failure list (`--failures FILE`), and ECR repository creation (`--create-repos`).
 */
import { randomBytes } from "node:crypto";
import { rename, rm, writeFile } from "node:fs/promises";
import type { RegistryClient } from "../shared/registry/client.ts";
import { FerryError, RegistryError } from "../shared/registry/errors.ts";
import { registryKindOf } from "../shared/registry/options.ts";
import { type FailedCopy, formatFailureList } from "../shared/transfer/copy-list.ts";
import { type DryRunImage, dryRunTotals, formatDryRun } from "../shared/transfer/dry-run.ts";
import type { DestinationRepositories } from "../shared/transfer/repositories.ts";
import { writeText } from "./output.ts";

/** Whether `registry` follows ECR's rules: its name says so, or `--registry-kind HOST=ecr` does. */
export function isEcrRegistry(client: RegistryClient, registry: string): boolean {
  return (client.options.registryKinds?.[registry.toLowerCase()] ?? registryKindOf(registry)) === "ecr";
}

/**
 * `--create-repos`: ECR repository creation for the run's ECR destinations, with the default settings
 * (MUTABLE tags, scan on push, AES256). The AWS SDK loads only here, only with the flag; it finds
 * credentials, region and endpoint as the AWS CLI does (environment, profiles, SSO; AWS_ENDPOINT_URL_ECR).
 * A usage error when no destination is an ECR registry.
 */
export async function destinationRepositories(
  client: RegistryClient,
  destinations: readonly string[],
): Promise<DestinationRepositories> {
  const ecr = destinations.filter((r) => isEcrRegistry(client, r));
  if (ecr.length === 0)
    throw new FerryError(
      "USAGE",
      "--create-repos creates ECR repositories: no destination is an ECR registry (<account>.dkr.ecr.<region>.amazonaws.com, or a host given --registry-kind HOST=ecr)",
    );
  const [{ EcrRepositories }, { checkRepositorySettings }] = await Promise.all([
    import("../shared/aws/ecr-repositories.ts"),
    import("../shared/workflow/repository-settings.ts"),
  ]);
  return new EcrRepositories({
    settings: checkRepositorySettings({}, "--create-repos"),
    declaredEcr: (registry) => isEcrRegistry(client, registry),
  });
}

/** A registry's refusal of a push to a repository that does not exist (ECR without --create-repos). */
export function hintMissingRepository(err: unknown, client: RegistryClient, registry: string): void {
  if (
    err instanceof RegistryError &&
    err.errors.some((e) => e.code === "NAME_UNKNOWN") &&
    /^(POST|PUT|PATCH)$/.test(err.method) &&
    isEcrRegistry(client, registry)
  )
    err.message +=
      " (ECR refuses pushes to a repository that does not exist: create it, or add --create-repos)";
}

/**
 * Writes a failure list (`--failures FILE`) in the `--from-file` format: whole or not at all (a
 * temporary file renamed over FILE). Written on every run that got as far as its images, also when none
 * failed (then it holds only its header), so that FILE always describes the last run.
 */
export async function writeFailureList(
  file: string,
  failures: readonly FailedCopy[],
  header: readonly string[],
): Promise<void> {
  await writeTextFile(file, formatFailureList(failures, header));
}

export async function writeTextFile(file: string, text: string): Promise<void> {
  const temp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(temp, text, { mode: 0o644 });
    await rename(temp, file);
  } catch (e) {
    await rm(temp, { force: true });
    throw new FerryError("OUTPUT", `cannot write ${file}: ${(e as Error).message}`);
  }
}

/**
 * Prints a dry run (the table, or JSON with `--json`) and fails (exit 1) when an image would be refused or
 * could not be decided: a gate for the real run.
 */
export function reportDryRun(
  images: readonly DryRunImage[],
  flags: { json?: boolean; quiet?: boolean },
): void {
  const totals = dryRunTotals(images);
  if (flags.json) process.stdout.write(`${JSON.stringify({ dryRun: true, images, totals }, null, 2)}\n`);
  else if (!flags.quiet) writeText(`${formatDryRun(images)}\n`);
  const bad = images.filter((i) => i.action === "refused" || i.action === "failed");
  if (bad.length)
    throw new FerryError(
      "PARTIAL_FAILURE",
      `dry run: ${bad.length} of ${images.length} image(s) would not be copied:\n  ${bad
        .map((i) => `${i.source} → ${i.destination}: ${i.action}: ${i.reason ?? ""}`)
        .join("\n  ")}`,
    );
}

/** The images of a dry run that would not be copied, as failure-list entries. */
export function dryRunFailures(images: readonly DryRunImage[]): FailedCopy[] {
  return images
    .filter((i) => i.action === "refused" || i.action === "failed")
    .map((i) => ({ source: i.source, destination: i.destination, error: `${i.action}: ${i.reason ?? ""}` }));
}
