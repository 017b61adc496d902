/** `ferry copy <src> <dst>` and `ferry copy --from-file <list>`: the main job. */

import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import pLimit from "p-limit";
import { now } from "../../shared/clock.ts";
import type { RegistryClient } from "../../shared/registry/client.ts";
import { FerryError } from "../../shared/registry/errors.ts";
import type { RateBudgetSummary } from "../../shared/registry/http/rate-budget.ts";
import { type Platform, parsePlatform } from "../../shared/registry/manifest.ts";
import type { FailedCopy } from "../../shared/transfer/copy-list.ts";
import { parseCopyList } from "../../shared/transfer/copy-list.ts";
import { type DryRunItem, dryRun } from "../../shared/transfer/dry-run.ts";
import { TransferEngine } from "../../shared/transfer/engine.ts";
import type { RegistrySink } from "../../shared/transfer/registry-endpoints.ts";
import { formatReport, type ImageReport, runTotals } from "../../shared/transfer/report.ts";
import type { DestinationRepositories } from "../../shared/transfer/repositories.ts";
import {
  destinationRepositories,
  dryRunFailures,
  hintMissingRepository,
  reportDryRun,
  writeFailureList,
} from "../bulk.ts";
import { addConnectionFlags, type ConnectionFlags, makeClient } from "../client-options.ts";
import { type Location, parseLocation } from "../endpoints.ts";
import { locationTags, openSink, openSource } from "../open.ts";
import { writeText } from "../output.ts";
import { createProgress } from "../progress.ts";
import { usage } from "../usage.ts";
import { addWorkflowOptions, runWorkflowCopy, type WorkflowFlags } from "./workflow.ts";

export interface TransferFlags extends ConnectionFlags {
  platform?: string[];
  tag?: string[];
  clobber?: boolean;
  referrers?: boolean;
  compress?: string;
  concurrency?: string;
  json?: boolean;
  quiet?: boolean;
  force?: boolean;
  fromFile?: string;
  /** copy only: decide every image and write nothing (cli/bulk.ts, shared/transfer/dry-run.ts). */
  dryRun?: boolean;
  /** copy --from-file only: where to write the images that failed, as a re-run list. */
  failures?: string;
  /** copy only: create missing ECR destination repositories. */
  createRepos?: boolean;
}

/** The flags of copy, pull (`src`: it reads a registry, writes files) and push (`dest`). */
export function addTransferFlags(cmd: Command, which: "src-dest" | "src" | "dest" = "src-dest"): Command {
  addConnectionFlags(cmd, which, which === "src" ? undefined : "chunks");
  return cmd
    .option(
      "--platform <os/arch[/variant]>",
      "copy only this platform of a multi-platform image (repeatable); the index is rewritten and its digest changes",
      collect,
      [],
    )
    .option("--tag <tag>", "also tag the destination with this tag (repeatable)", collect, [])
    .option("--no-clobber", "refuse to move a destination tag that points to a different image")
    .option("--referrers", "also copy signatures, SBOMs and attestations attached to the image")
    .option("--compress <gzip>", "gzip uncompressed layers on the way (docker-archive pushes)")
    .option("--concurrency <n>", "large blobs moved at once (small ones: 4×)", "6")
    .option("--force", "re-check every blob even when the destination tag already has the digest")
    .option("--json", "print the report as JSON")
    .option("-q, --quiet", "no progress bar and no report table");
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function registerCopy(program: Command): void {
  const cmd = program
    .command("copy")
    .description(
      "copy an image between registries and files: ferry copy <src> <dst>, or a list with --from-file",
    )
    .argument(
      "[src]",
      "source: docker://host/repo:tag (or a bare reference), oci:<dir>[:tag], oci-archive:<file>[:tag], docker-archive:<file>",
    )
    .argument(
      "[dst]",
      "destination: a reference, oci:<dir>[:tag], oci-archive:<file>[:tag], docker-archive:<file>[:name:tag]",
    )
    .option("--from-file <list>", "copy every `SRC DST` pair of this file (one per line) in one process")
    .option(
      "--dry-run",
      "write nothing: list what would be copied, skipped or refused and the bytes that would move (HEADs only)",
    )
    .option(
      "--failures <file>",
      "with --from-file: write the images that failed to FILE, in the --from-file format (re-run it)",
    )
    .option(
      "--create-repos",
      "create missing ECR destination repositories (AWS credentials and region as the AWS CLI finds them)",
    );
  addWorkflowOptions(addTransferFlags(cmd)).action(
    async (
      src: string | undefined,
      dst: string | undefined,
      flags: TransferFlags & WorkflowFlags & { workflow?: boolean },
    ) => {
      if (flags.failures && !flags.fromFile)
        throw new FerryError(
          "USAGE",
          "--failures lists the failed lines of a --from-file run: add --from-file",
        );
      if (flags.workflow) {
        if (!src || !dst || flags.fromFile) {
          throw new FerryError("USAGE", "copy --workflow needs <src> and <dst> (for lists: ferry sync)");
        }
        if (flags.dryRun || flags.createRepos)
          throw new FerryError(
            "USAGE",
            `copy --workflow takes no ${flags.dryRun ? "--dry-run" : "--create-repos"} (copy without --workflow does)`,
          );
        await runWorkflowCopy(src, dst, flags);
        return;
      }
      if (flags.fromFile) {
        if (src || dst) throw new FerryError("USAGE", "give either <src> <dst> or --from-file, not both");
        await copyList(flags.fromFile, flags);
        return;
      }
      if (!src || !dst) throw new FerryError("USAGE", "copy needs <src> and <dst> (or --from-file <list>)");
      await transfer([[parseLocation(src), parseLocation(dst, null)]], flags);
    },
  );
}

async function copyList(file: string, flags: TransferFlags): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new FerryError("USAGE", `cannot read --from-file ${file}: ${(e as Error).message}`);
  }
  const pairs: [Location, Location][] = parseCopyList(text, file).map((l) => {
    try {
      return [parseLocation(l.source), parseLocation(l.destination, null)];
    } catch (e) {
      throw new FerryError("USAGE", `${file}:${l.line}: ${(e as Error).message}`);
    }
  });
  if (pairs.length === 0) throw new FerryError("USAGE", `${file} lists no images`);
  await transfer(pairs, flags);
}

/** Runs transfers in one process: one client (connections, tokens) and one engine (blob de-duplication). */
export async function transfer(pairs: [Location, Location][], flags: TransferFlags): Promise<ImageReport[]> {
  const platforms: Platform[] = usage(() => (flags.platform ?? []).map(parsePlatform));
  if (flags.compress && flags.compress !== "gzip")
    throw new FerryError("USAGE", `--compress supports gzip, not "${flags.compress}"`);
  const concurrency = Number(flags.concurrency ?? 6);
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new FerryError("USAGE", "--concurrency must be a positive integer");
  if (flags.dryRun && (flags.compress || flags.referrers))
    throw new FerryError(
      "USAGE",
      `--dry-run does not predict ${flags.compress ? "--compress (layer sizes are known only once compressed)" : "--referrers"}: leave it out of the dry run`,
    );
  const [firstSrc, firstDst] = pairs[0]!;
  const client = makeClient(flags, {
    ...(firstSrc.kind === "registry" ? { src: firstSrc.ref.registry } : {}),
    ...(firstDst.kind === "registry" ? { dest: firstDst.ref.registry } : {}),
  });
  try {
    const repositories = flags.createRepos
      ? await destinationRepositories(
          client,
          pairs.flatMap(([, d]) => (d.kind === "registry" ? [d.ref.registry] : [])),
        )
      : undefined;
    if (flags.dryRun) {
      await dryRunList(pairs, flags, client, platforms, repositories);
      return [];
    }
    return await copyPairs(pairs, flags, client, platforms, concurrency, repositories);
  } finally {
    await client.close();
  }
}

/** `--dry-run`: every pair decided (shared/transfer/dry-run.ts), nothing written anywhere. */
async function dryRunList(
  pairs: [Location, Location][],
  flags: TransferFlags,
  client: RegistryClient,
  platforms: Platform[],
  repositories: DestinationRepositories | undefined,
): Promise<void> {
  const file = pairs.find(([, dst]) => dst.kind !== "registry")?.[1];
  if (file)
    throw new FerryError(
      "USAGE",
      `--dry-run decides copies to registries; "${file.text}" is a ${file.kind}: location (it would be written whole)`,
    );
  const items: DryRunItem[] = [];
  try {
    for (const [src, dst] of pairs) {
      const tags = [...(locationTags(dst, src) ?? []), ...(flags.tag ?? [])];
      const texts = { sourceText: src.text, destinationText: dst.text, tags };
      try {
        items.push({
          ...texts,
          source: await openSource(src, client),
          sink: (await openSink(dst, client, src)) as RegistrySink,
          ...(platforms.length ? { platforms } : {}),
          ...(flags.clobber === false ? { noClobber: true } : {}),
          ...(flags.force ? { force: true } : {}),
        });
      } catch (e) {
        // an unreadable source file is that image's failure, as in the real run
        items.push({ ...texts, decided: { action: "failed", reason: (e as Error).message } });
      }
    }
    const images = await dryRun(items, repositories ? { repositories } : {});
    if (flags.failures) {
      const failed = dryRunFailures(images);
      await writeFailureList(flags.failures, failed, [
        `ferry copy --from-file ${flags.fromFile} --dry-run: ${failed.length} of ${images.length} image(s) would not be copied`,
      ]);
    }
    reportDryRun(images, flags);
  } finally {
    await Promise.all(items.map((i) => ("source" in i ? i.source.close?.() : undefined)));
  }
}

async function copyPairs(
  pairs: [Location, Location][],
  flags: TransferFlags,
  client: RegistryClient,
  platforms: Platform[],
  concurrency: number,
  repositories: DestinationRepositories | undefined,
): Promise<ImageReport[]> {
  const progress = await createProgress(!flags.quiet && !flags.json);
  const engine = new TransferEngine({ concurrency, onProgress: (e) => progress.onEvent(e) });
  const t0 = now();
  // Images resolve and plan concurrently; their blobs share the engine's limits.
  const imageLimit = pLimit(Math.max(4, Math.min(32, concurrency * 4)));
  // In list order, whatever order they fail in: a failure list reads like the list it came from.
  const failed: (FailedCopy | undefined)[] = [];
  try {
    const results = await Promise.all(
      pairs.map(([src, dst], i) =>
        imageLimit(async () => {
          let source: Awaited<ReturnType<typeof openSource>> | undefined;
          let sink: Awaited<ReturnType<typeof openSink>> | undefined;
          try {
            source = await openSource(src, client);
            sink = await openSink(dst, client, src, repositories ? { repositories } : {});
            const tags = [...(locationTags(dst, src) ?? []), ...(flags.tag ?? [])];
            const report = await engine.copy(source, sink, {
              ...(platforms.length ? { platforms } : {}),
              tags,
              ...(flags.clobber === false ? { noClobber: true } : {}),
              ...(flags.referrers ? { referrers: true } : {}),
              ...(flags.compress ? { compress: "gzip" as const } : {}),
              ...(flags.force ? { force: true } : {}),
            });
            await sink.close?.();
            return report;
          } catch (e) {
            // a file sink (docker-archive) removes its partial output
            await (sink as { abort?: (reason?: Error) => Promise<void> } | undefined)?.abort?.(e as Error);
            if (dst.kind === "registry" && !repositories) hintMissingRepository(e, client, dst.ref.registry);
            if (pairs.length === 1 && !flags.fromFile) throw e;
            failed[i] = { source: src.text, destination: dst.text, error: (e as Error).message };
            return undefined;
          } finally {
            await source?.close?.();
          }
        }),
      ),
    );
    const failures = failed.filter((f): f is FailedCopy => f !== undefined);
    progress.stop();
    const reports = results.filter((r): r is ImageReport => r !== undefined);
    const seconds = (now() - t0) / 1000;
    const rateLimits = client.options.rateBudget?.summary() ?? [];
    if (flags.json)
      process.stdout.write(
        `${JSON.stringify(flags.fromFile ? { images: reports, failures, totals: runTotals(reports, seconds), seconds, ...(rateLimits.length ? { rateLimits } : {}) } : reports[0], null, 2)}\n`,
      );
    else if (!flags.quiet)
      writeText(`${formatReport(reports, seconds)}\n${rateLimits.map(formatRateLimit).join("")}`);
    if (flags.failures)
      await writeFailureList(flags.failures, failures, [
        `ferry copy --from-file ${flags.fromFile}: ${failures.length} of ${pairs.length} image(s) failed`,
        "re-run exactly these with: ferry copy --from-file <this file>",
      ]);
    if (failures.length) {
      throw new FerryError(
        "PARTIAL_FAILURE",
        `${failures.length} of ${pairs.length} image(s) failed:\n  ${failures
          .map((f) => `${f.source} → ${f.destination}: ${f.error}`)
          .join("\n  ")}`,
      );
    }
    return reports;
  } finally {
    progress.stop();
  }
}

/** One line per registry whose rate limit the run met: what it used and what is left. */
function formatRateLimit(r: RateBudgetSummary): string {
  const per = r.windowSeconds
    ? ` per ${r.windowSeconds % 3600 === 0 ? `${r.windowSeconds / 3600} h` : `${r.windowSeconds} s`}`
    : "";
  return `rate limit of ${r.registry}: ${r.used} pull(s) used, ${r.remaining}${r.limit !== undefined ? ` of ${r.limit}` : ""} left${per}\n`;
}
