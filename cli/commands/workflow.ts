/**
 * The serverless workflow, run on this machine: the same Step Functions definitions as on AWS
 * (shared/workflow/*.asl.json) executed by aws-local-stepfunctions, each Task bound to its step in
 * process, staging in a local directory (default: a temporary one) or an S3 bucket.
 *
 *   ferry workflow copy <src> <dst> [--staging DIR | --staging s3://bucket [--s3-endpoint URL]]
 *                                   [--step-bytes N] [--part-size N] [--direct-max N] [--tag T] ...
 *   ferry workflow sync <config.json>     a bulk migration (also: ferry sync <config.json>)
 *                                   [--dry-run] [--failures FILE] [--create-repos]
 *   ferry copy --workflow <src> <dst>     copy.ts delegates to runWorkflowCopy (addWorkflowOptions)
 *
 * Start-up: this file is its verb's chunk of the CLI bundle; the runner, the AWS SDK and
 * aws-local-stepfunctions are imported when a workflow actually runs, into chunks of their own (code
 * splitting: no other command loads them). An installed ferry runs workflows from its bundle.
 */
import { randomBytes } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { now } from "../../shared/clock.ts";
import { FerryError, printable } from "../../shared/registry/errors.ts";
import { parseReference } from "../../shared/registry/reference.ts";
import { addConnectionFlags, type ConnectionFlags, parseSize } from "../client-options.ts";
import { writeText } from "../output.ts";
import { usage } from "../usage.ts";

export interface WorkflowFlags extends ConnectionFlags {
  staging?: string;
  s3Endpoint?: string;
  stepBytes?: string;
  partSize?: string;
  directMax?: string;
  tag?: string[];
  platform?: string[];
  concurrency?: string;
  json?: boolean;
  quiet?: boolean;
  keepStaging?: boolean;
  /** sync: enumerate and decide every image, run nothing (shared/transfer/dry-run.ts). */
  dryRun?: boolean;
  /** sync: where to write the images that failed, in the `ferry copy --from-file` format. */
  failures?: string;
  /** sync: create missing ECR destination repositories. */
  createRepos?: boolean;
}

/** The options `ferry copy --workflow` needs on top of copy's own (call from copy.ts). */
export function addWorkflowOptions(cmd: Command): Command {
  return addStagingOptions(
    cmd.option(
      "--workflow",
      "run the serverless workflow (Step Functions definition) locally instead of the engine",
    ),
  );
}

/** Staging and step sizes, for every verb that runs a workflow (`workflow copy`, `sync` always do). */
function addStagingOptions(cmd: Command): Command {
  return cmd
    .option(
      "--staging <dir|s3://bucket>",
      "workflow staging: a directory (default: a temporary one) or an S3 bucket",
    )
    .option("--s3-endpoint <url>", "an S3-compatible endpoint for --staging s3://… (MinIO, s3rver)")
    .option("--step-bytes <size>", "workflow: bytes one stage/upload step moves at most (default 2GiB)")
    .option("--part-size <size>", "workflow: staging multipart part size (default max(5MiB, size/10000))")
    .option("--direct-max <size>", "workflow: blobs up to this size skip staging (default 32MiB)")
    .option("--keep-staging", "workflow: keep the temporary staging directory");
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function registerWorkflow(program: Command): void {
  const wf = program
    .command("workflow")
    .description(
      "run the serverless workflow locally: the Step Functions definitions, staging on disk or S3",
    );
  const copy = wf
    .command("copy")
    .description("copy an image with the copy-image workflow: manifest fetch, staged blob copy, manifest PUT")
    .argument("<src>", "source reference (docker://host/repo:tag or a bare reference)")
    .argument("<dst>", "destination reference");
  addConnectionFlags(addStagingOptions(copy), "src-dest", "chunks")
    .option(
      "--tag <tag>",
      "destination tag (repeatable; default: the destination's, else the source's)",
      collect,
      [],
    )
    .option("--platform <os/arch[/variant]>", "copy only this platform (repeatable)", collect, [])
    .option("--concurrency <n>", "blobs copied at once")
    .option("--json", "print the result as JSON")
    .option("-q, --quiet", "no progress lines")
    .action((src: string, dst: string, flags: WorkflowFlags) => runWorkflowCopy(src, dst, flags));

  const syncAction = (config: string, flags: WorkflowFlags) => runWorkflowSync(config, flags);
  for (const cmd of [wf.command("sync"), program.command("sync")]) {
    cmd
      .description("a bulk migration with the bulk-migrate workflow, from a JSON config (see README)")
      .argument("<config.json>", "source, destination, repository and tag filters, options");
    addConnectionFlags(addStagingOptions(cmd), "src-dest", "chunks")
      .option(
        "--dry-run",
        "run nothing: list every image and tag that would be copied, skipped or refused, and the bytes that would move",
      )
      .option(
        "--failures <file>",
        "write the images that failed to FILE, in the --from-file format (re-run: ferry copy --from-file FILE)",
      )
      .option(
        "--create-repos",
        "create missing ECR destination repositories (AWS credentials and region as the AWS CLI finds them)",
      )
      .option("--json", "print the summary as JSON")
      .option("-q, --quiet", "no progress lines")
      .action(syncAction);
  }
}

function size(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  try {
    const n = parseSize(v);
    if (!(n > 0)) throw new Error("must be positive");
    return n;
  } catch {
    throw new FerryError(
      "USAGE",
      `${flag} ${JSON.stringify(v)}: expected a size such as 256KiB, 64MiB, 2GiB`,
    );
  }
}

function copyOptions(flags: WorkflowFlags) {
  const concurrency = flags.concurrency === undefined ? undefined : Number(flags.concurrency);
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 40))
    throw new FerryError("USAGE", "--concurrency must be an integer from 1 to 40");
  const o = {
    stepBytes: size("--step-bytes", flags.stepBytes),
    partBytes: size("--part-size", flags.partSize),
    chunkBytes: size("--chunk-size", flags.chunkSize),
    directMaxBytes: size("--direct-max", flags.directMax),
    concurrency,
  };
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** `ferry workflow copy` / `ferry copy --workflow`: usage is checked here, the run in the sources. */
export async function runWorkflowCopy(src: string, dst: string, flags: WorkflowFlags): Promise<void> {
  if (flags.s3Endpoint && !flags.staging?.startsWith("s3://"))
    throw new FerryError("USAGE", "--s3-endpoint needs --staging s3://bucket");
  // `ferry copy --workflow` has copy's flags; those only the engine honours are refused, not ignored
  const engine = flags as { clobber?: boolean; referrers?: boolean; compress?: string; force?: boolean };
  const unsupported = [
    engine.clobber === false && "--no-clobber",
    engine.referrers && "--referrers",
    engine.compress && "--compress",
    engine.force && "--force",
  ].filter(Boolean);
  if (unsupported.length)
    throw new FerryError(
      "USAGE",
      `${unsupported.join(", ")}: not supported by the workflow (drop --workflow)`,
    );
  copyOptions(flags);
  usage(() => [src, dst].map((r) => parseReference(stripTransport(r), null)));
  await execWorkflowCopy(src, dst, flags);
}

/** `ferry sync <config.json>`. */
export async function runWorkflowSync(config: string, flags: WorkflowFlags): Promise<void> {
  if (/\.ya?ml$/i.test(config))
    throw new FerryError("USAGE", `${config}: ferry sync reads JSON configs (write the same keys as JSON)`);
  copyOptions(flags);
  await execWorkflowSync(config, flags);
}

// ---- the run (its modules loaded on first use) ----------------------------------------------------------

/** Runs copy-image locally. Throws with the execution's cause when it fails. */
export async function execWorkflowCopy(src: string, dst: string, flags: WorkflowFlags): Promise<void> {
  const [{ runCopyWorkflow }, { makeClient }, { CopyRequestSchema, validate }] = await Promise.all([
    import("../../shared/workflow/local-runner.ts"),
    import("../client-options.ts"),
    import("../../shared/workflow/schemas.ts"),
  ]);
  const s = stripTransport(src);
  const d = stripTransport(dst);
  const request = {
    source: s,
    destination: d,
    ...(flags.tag?.length ? { tags: flags.tag } : {}),
    ...(flags.platform?.length ? { platforms: flags.platform } : {}),
    options: copyOptions(flags),
  };
  // what Resolve would refuse (tags, platforms), refused here as the usage error it is
  usage(() => validate(CopyRequestSchema, request, "copy request"));
  const client = makeClient(flags, {
    src: parseReference(s, null).registry,
    dest: parseReference(d, null).registry,
  });
  await withStaging(flags, async (staging) => {
    const t0 = now();
    const r = await runCopyWorkflow(request, {
      deps: { staging, client },
      ...(flags.quiet || flags.json ? {} : { onEvent: progressPrinter() }),
    });
    finish(r, flags, (out) => {
      const o = out as {
        digest: string;
        destination: string;
        tags: string[];
        upToDate: boolean;
        blobs: Record<string, number>;
        bytesSent: number;
      };
      const secs = ((now() - t0) / 1000).toFixed(2);
      return o.upToDate
        ? `${o.destination}: already up to date (${o.digest})`
        : `${o.destination}${o.tags.length ? `:${o.tags.join(",")}` : ""} ← ${s}\n  digest ${o.digest}\n  ${o.blobs.total} blob(s): ${o.blobs.copied} copied, ${o.blobs.mounted} mounted, ${o.blobs.skipped} skipped (already present); ${o.bytesSent} bytes sent in ${secs}s (workflow ${r.executionName})`;
    });
  }).finally(() => client.close());
}

/** Runs bulk-migrate locally from a JSON config. */
export async function execWorkflowSync(config: string, flags: WorkflowFlags): Promise<void> {
  let request: Record<string, unknown>;
  try {
    request = JSON.parse(await readFile(config, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new FerryError("USAGE", `cannot read the sync config ${config}: ${(e as Error).message}`);
  }
  // checked as Enumerate checks it (unknown keys and bad values named), before anything runs
  const { BulkRequestSchema, validate } = await import("../../shared/workflow/schemas.ts");
  usage(() => validate(BulkRequestSchema, request, `sync config ${config}`));
  const options = copyOptions(flags);
  if (Object.keys(options).length)
    request.options = { ...(request.options as object | undefined), ...options };
  const [{ runBulkWorkflow }, { makeClient }] = await Promise.all([
    import("../../shared/workflow/local-runner.ts"),
    import("../client-options.ts"),
  ]);
  const host = (v: unknown) => (typeof v === "string" ? v.split("/")[0] : undefined);
  const client = makeClient(flags, {
    ...(host(request.source) ? { src: host(request.source)! } : {}),
    ...(host(request.destination) ? { dest: host(request.destination)! } : {}),
  });
  try {
    const { destinationRepositories, writeTextFile } = await import("../bulk.ts");
    const dest = host(request.destination);
    if (flags.createRepos && !dest) throw new FerryError("USAGE", `${config} names no destination`);
    const repositories =
      flags.createRepos && dest ? await destinationRepositories(client, [dest.toLowerCase()]) : undefined;
    if (flags.dryRun) {
      await syncDryRun(config, request, flags, client, repositories);
      return;
    }
    await withStaging(flags, async (staging) => {
      const executionName = `local-bulk-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
      const r = await runBulkWorkflow(request, {
        executionName,
        deps: { staging, client, ...(repositories ? { repositories } : {}) },
        ...(flags.quiet || flags.json ? {} : { onEvent: progressPrinter() }),
      });
      if (flags.failures)
        await copyFailureList(staging, executionName, config, flags.failures, writeTextFile);
      finish(r, flags, (out) => {
        const o = out as {
          images: number;
          succeeded: number;
          failedImages: number;
          skipped: number;
          failures: { source?: string; cause: string }[];
        };
        return [
          `${o.images} image(s): ${o.succeeded} copied, ${o.failedImages} failed, ${o.skipped} immutable tag(s) left alone (workflow ${r.executionName})`,
          ...o.failures.map((f) => `  failed: ${f.source ?? "?"}: ${f.cause}`),
          ...(flags.failures ? [`failure list: ${flags.failures}`] : []),
        ].join("\n");
      });
    });
  } finally {
    await client.close();
  }
}

/**
 * `ferry sync --failures FILE`: the list Summarize wrote to staging (`bulk/<id>/failures.txt`), copied
 * as it is — one implementation of the format (shared/transfer/copy-list.ts). A migration that ended
 * before Summarize (its configuration refused, the catalog unreadable) has no list: FILE is left alone.
 */
async function copyFailureList(
  staging: import("../../shared/staging/types.ts").StagingStore,
  executionName: string,
  config: string,
  file: string,
  write: (file: string, text: string) => Promise<void>,
): Promise<void> {
  const [{ bulkPrefix, failuresKey, summaryKey }, { formatFailureList }] = await Promise.all([
    import("../../shared/workflow/keys.ts"),
    import("../../shared/transfer/copy-list.ts"),
  ]);
  const prefix = bulkPrefix(executionName);
  const summary = await staging.getObject(summaryKey(prefix));
  if (!summary) {
    process.stderr.write(
      `ferry: no failure list written to ${file}: the migration ended before its summary\n`,
    );
    return;
  }
  const list = await staging.getObject(failuresKey(prefix));
  const images = (JSON.parse(summary.toString("utf8")) as { images?: number }).images ?? 0;
  await write(
    file,
    list
      ? list.toString("utf8")
      : formatFailureList([], [`ferry sync ${config}: 0 of ${images} image(s) failed`]),
  );
}

/**
 * `ferry sync --dry-run`: the migration's images as Enumerate lists them (the same code, nothing written
 * to staging), each decided as a copy would decide it (shared/transfer/dry-run.ts).
 */
async function syncDryRun(
  config: string,
  request: Record<string, unknown>,
  flags: WorkflowFlags,
  client: import("../../shared/registry/client.ts").RegistryClient,
  repositories: import("../../shared/transfer/repositories.ts").DestinationRepositories | undefined,
): Promise<void> {
  const [{ enumerateImages }, schemas, { ALLOW_ANY }, { dryRun }, refs, endpoints, bulk] = await Promise.all([
    import("../../shared/workflow/steps/enumerate.ts"),
    import("../../shared/workflow/schemas.ts"),
    import("../../shared/workflow/policy.ts"),
    import("../../shared/transfer/dry-run.ts"),
    import("../../shared/registry/reference.ts"),
    import("../../shared/transfer/registry-endpoints.ts"),
    import("../bulk.ts"),
  ]);
  let bulkRequest: import("../../shared/workflow/schemas.ts").BulkRequest;
  try {
    bulkRequest = schemas.validate(schemas.BulkRequestSchema, request, `sync config ${config}`);
  } catch (e) {
    throw new FerryError("USAGE", (e as Error).message);
  }
  const { items, record } = await enumerateImages(bulkRequest, { client, policy: ALLOW_ANY });
  type Item = import("../../shared/transfer/dry-run.ts").DryRunItem;
  const tagOf = (ref: string) => refs.parseReference(ref, null).tag;
  const decide: Item[] = items.map((i) => {
    const dst = refs.parseReference(i.destination, null);
    return {
      source: new endpoints.RegistrySource(client, refs.parseReference(i.source, null)),
      sink: new endpoints.RegistrySink(client, dst, repositories ? { repositories } : {}),
      sourceText: i.source,
      destinationText: i.destination,
      tags: dst.tag ? [dst.tag] : [],
    };
  });
  const decided: Item[] = [
    ...record.skipped.map((s) => ({
      sourceText: s.source,
      destinationText: s.destination,
      tags: [tagOf(s.destination) ?? ""].filter(Boolean),
      decided: { action: "skipped" as const, reason: s.reason },
    })),
    ...(record.refused ?? []).map((r) => ({
      sourceText: r.source,
      destinationText: r.destination,
      tags: [],
      decided: { action: "refused" as const, reason: r.reason },
    })),
  ];
  const images = await dryRun([...decide, ...decided], repositories ? { repositories } : {});
  if (flags.failures) {
    const failed = bulk.dryRunFailures(images);
    await bulk.writeFailureList(flags.failures, failed, [
      `ferry sync ${config} --dry-run: ${failed.length} of ${images.length} image(s) would not be copied`,
    ]);
  }
  bulk.reportDryRun(images, flags);
}

function stripTransport(s: string): string {
  const scheme = /^(oci|docker-archive|rootfs|dir|oci-archive|containers-storage|docker-daemon):/.exec(s);
  if (scheme)
    throw new FerryError(
      "USAGE",
      `the workflow copies between registries; "${s}" is a ${scheme[1]}: location`,
    );
  return s.startsWith("docker://") ? s.slice(9) : s;
}

async function withStaging(
  flags: WorkflowFlags,
  fn: (staging: import("../../shared/staging/types.ts").StagingStore) => Promise<void>,
): Promise<void> {
  const { openStaging } = await import("../../shared/staging/index.ts");
  let temp: string | undefined;
  let location = flags.staging;
  if (!location) {
    const { mkdtemp } = await import("node:fs/promises");
    temp = await mkdtemp(join(tmpdir(), "ferry-staging-"));
    location = temp;
  }
  const staging = await openStaging(location, flags.s3Endpoint ? { endpoint: flags.s3Endpoint } : {});
  try {
    await fn(staging);
  } finally {
    if (temp && !flags.keepStaging) await rm(temp, { recursive: true, force: true });
    else if (temp) process.stderr.write(`ferry: staging kept in ${temp}\n`);
  }
}

function finish(
  r: { status: string; output?: unknown; error?: string; cause?: string },
  flags: WorkflowFlags,
  human: (out: unknown) => string,
): void {
  if (r.status !== "SUCCEEDED") {
    if (flags.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    throw new FerryError("WORKFLOW_FAILED", `${r.error}: ${r.cause}`);
  }
  if (flags.json) process.stdout.write(`${JSON.stringify(r.output, null, 2)}\n`);
  else if (!flags.quiet) writeText(`${human(r.output)}\n`);
}

/** One line per finished step on stderr. */
function progressPrinter() {
  const short = (d: unknown) =>
    String(d ?? "")
      .replace(/^sha256:/, "")
      .slice(0, 12);
  return (e: { type: string; state?: { name: string; output?: unknown } }) => {
    if (e.type !== "StateExited" || !e.state) return;
    const o = e.state.output as Record<string, Record<string, unknown> | undefined> & Record<string, unknown>;
    const blob = o?.blob as { digest?: string; size?: number } | undefined;
    let line: string | undefined;
    switch (e.state.name) {
      case "Resolve": {
        const c = o.counts as Record<string, number> | undefined;
        line = o.upToDate
          ? "resolved: already up to date"
          : `resolved: ${c?.blobs} blob(s), ${c?.skipped} present, ${c?.direct} direct, ${c?.mount} to mount, ${c?.staged} to stage`;
        break;
      }
      case "StageBlob":
        line = `staged   ${short(blob?.digest)}  ${o.stage?.offset}/${blob?.size}`;
        break;
      case "UploadBlob":
        line = `uploaded ${short(blob?.digest)}  ${o.upload?.offset}/${blob?.size}`;
        break;
      case "CopyBlobDirect":
      case "MountBlob":
        line = `${String(o.upload?.action ?? "to stage").padEnd(8)} ${short(blob?.digest)}  ${blob?.size}`;
        break;
      case "PutManifests":
        line = "manifests pushed";
        break;
      case "Enumerate":
        line = `enumerated: ${o.count} image(s) in ${o.repositories} repositories, ${o.skipped} immutable tag(s) skipped`;
        break;
    }
    if (line) process.stderr.write(`${printable(line)}\n`);
  };
}
