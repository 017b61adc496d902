/**
 * The serverless workflow, run on this machine: the same Step Functions definitions as on AWS
 * (shared/workflow/*.asl.json) executed by aws-local-stepfunctions, each Task bound to its step in
 * process, staging in a local directory (default: a temporary one) or an S3 bucket.
 *
 *   ferry workflow copy <src> <dst> [--staging DIR | --staging s3://bucket [--s3-endpoint URL]]
 *                                   [--step-bytes N] [--part-size N] [--direct-max N] [--tag T] ...
 *   ferry workflow sync <config.json>     a bulk migration (also: ferry sync <config.json>)
 *   ferry copy --workflow <src> <dst>     copy.ts delegates to runWorkflowCopy (addWorkflowOptions)
 *
 * Start-up: this file is part of the CLI bundle, so it only parses options; the runner, the AWS SDK and
 * aws-local-stepfunctions are imported from the sources when a workflow actually runs (a non-literal
 * import keeps them out of dist/ferry.mjs, which every other command loads).
 */
import { existsSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Command } from "commander";
import { FerryError, printable } from "../../shared/registry/errors.ts";
import { parseReference } from "../../shared/registry/reference.ts";
import { addConnectionFlags, type ConnectionFlags, parseSize } from "../client-options.ts";
import { writeText } from "../output.ts";
import { usage } from "../usage.ts";

type Runner = typeof import("../../shared/workflow/local-runner.ts");
type Staging = typeof import("../../shared/staging/index.ts");
type ClientOptions = typeof import("../client-options.ts");
type Self = typeof import("./workflow.ts");
type Schemas = typeof import("../../shared/workflow/schemas.ts");

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
  const impl = await load<Self>("cli/commands/workflow.ts");
  await impl.execWorkflowCopy(src, dst, flags);
}

/** `ferry sync <config.json>`. */
export async function runWorkflowSync(config: string, flags: WorkflowFlags): Promise<void> {
  if (/\.ya?ml$/i.test(config))
    throw new FerryError("USAGE", `${config}: ferry sync reads JSON configs (write the same keys as JSON)`);
  copyOptions(flags);
  const impl = await load<Self>("cli/commands/workflow.ts");
  await impl.execWorkflowSync(config, flags);
}

// ---- the run (loaded from the sources) ----------------------------------------------------------

/** Runs copy-image locally. Throws with the execution's cause when it fails. */
export async function execWorkflowCopy(src: string, dst: string, flags: WorkflowFlags): Promise<void> {
  const [{ runCopyWorkflow }, { makeClient }, { CopyRequestSchema, validate }] = await Promise.all([
    load<Runner>("shared/workflow/local-runner.ts"),
    load<ClientOptions>("cli/client-options.ts"),
    load<Schemas>("shared/workflow/schemas.ts"),
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
    const t0 = performance.now();
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
      const secs = ((performance.now() - t0) / 1000).toFixed(2);
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
  const { BulkRequestSchema, validate } = await load<Schemas>("shared/workflow/schemas.ts");
  usage(() => validate(BulkRequestSchema, request, `sync config ${config}`));
  const options = copyOptions(flags);
  if (Object.keys(options).length)
    request.options = { ...(request.options as object | undefined), ...options };
  const [{ runBulkWorkflow }, { makeClient }] = await Promise.all([
    load<Runner>("shared/workflow/local-runner.ts"),
    load<ClientOptions>("cli/client-options.ts"),
  ]);
  const host = (v: unknown) => (typeof v === "string" ? v.split("/")[0] : undefined);
  const client = makeClient(flags, {
    ...(host(request.source) ? { src: host(request.source)! } : {}),
    ...(host(request.destination) ? { dest: host(request.destination)! } : {}),
  });
  await withStaging(flags, async (staging) => {
    const r = await runBulkWorkflow(request, {
      deps: { staging, client },
      ...(flags.quiet || flags.json ? {} : { onEvent: progressPrinter() }),
    });
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
      ].join("\n");
    });
  }).finally(() => client.close());
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
  const { openStaging } = await load<Staging>("shared/staging/index.ts");
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

/**
 * Imports a module of this checkout by its path from the repository root, with a specifier esbuild
 * cannot follow (so the bundle stays small), from the sources whether this runs bundled or not.
 */
export async function load<T>(rel: string): Promise<T> {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const root of [join(here, "..", ".."), join(here, "..")]) {
    const file = join(root, rel);
    if (existsSync(file) && existsSync(join(root, "shared", "workflow"))) {
      const spec = pathToFileURL(file).href;
      return (await import(spec)) as T;
    }
  }
  throw new FerryError(
    "UNSUPPORTED",
    `the workflow sources (${rel}) are not next to this ferry; run it from a checkout`,
  );
}
