/** `ferry copy <src> <dst>` and `ferry copy --from-file <list>`: the main job. */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import pLimit from "p-limit";
import { FerryError } from "../../shared/registry/errors.ts";
import { type Platform, parsePlatform } from "../../shared/registry/manifest.ts";
import { TransferEngine } from "../../shared/transfer/engine.ts";
import { formatReport, type ImageReport, runTotals } from "../../shared/transfer/report.ts";
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
    .option("--from-file <list>", "copy every `SRC DST` pair of this file (one per line) in one process");
  addWorkflowOptions(addTransferFlags(cmd)).action(
    async (
      src: string | undefined,
      dst: string | undefined,
      flags: TransferFlags & WorkflowFlags & { workflow?: boolean },
    ) => {
      if (flags.workflow) {
        if (!src || !dst || flags.fromFile) {
          throw new FerryError("USAGE", "copy --workflow needs <src> and <dst> (for lists: ferry sync)");
        }
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
  const pairs: [Location, Location][] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) return;
    const parts = line.split(/\s+/);
    if (parts.length !== 2)
      throw new FerryError("USAGE", `${file}:${i + 1}: expected "SRC DST", got "${line.slice(0, 200)}"`);
    try {
      pairs.push([parseLocation(parts[0]!), parseLocation(parts[1]!, null)]);
    } catch (e) {
      throw new FerryError("USAGE", `${file}:${i + 1}: ${(e as Error).message}`);
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
  const [firstSrc, firstDst] = pairs[0]!;
  const client = makeClient(flags, {
    ...(firstSrc.kind === "registry" ? { src: firstSrc.ref.registry } : {}),
    ...(firstDst.kind === "registry" ? { dest: firstDst.ref.registry } : {}),
  });
  const progress = await createProgress(!flags.quiet && !flags.json);
  const engine = new TransferEngine({ concurrency, onProgress: (e) => progress.onEvent(e) });
  const t0 = performance.now();
  // Images resolve and plan concurrently; their blobs share the engine's limits.
  const imageLimit = pLimit(Math.max(4, Math.min(32, concurrency * 4)));
  const failures: string[] = [];
  try {
    const results = await Promise.all(
      pairs.map(([src, dst]) =>
        imageLimit(async () => {
          const source = await openSource(src, client);
          const sink = await openSink(dst, client, src);
          try {
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
            await (sink as { abort?: (reason?: Error) => Promise<void> }).abort?.(e as Error);
            if (pairs.length === 1) throw e;
            failures.push(`${src.text} → ${dst.text}: ${(e as Error).message}`);
            return undefined;
          } finally {
            await source.close?.();
          }
        }),
      ),
    );
    progress.stop();
    const reports = results.filter((r): r is ImageReport => r !== undefined);
    const seconds = (performance.now() - t0) / 1000;
    if (flags.json)
      process.stdout.write(
        `${JSON.stringify(pairs.length === 1 ? reports[0] : { images: reports, failures, totals: runTotals(reports, seconds), seconds }, null, 2)}\n`,
      );
    else if (!flags.quiet) writeText(`${formatReport(reports, seconds)}\n`);
    if (failures.length) {
      throw new FerryError(
        "PARTIAL_FAILURE",
        `${failures.length} of ${pairs.length} image(s) failed:\n  ${failures.join("\n  ")}`,
      );
    }
    return reports;
  } finally {
    progress.stop();
    await client.close();
  }
}
