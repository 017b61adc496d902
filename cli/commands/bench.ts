/**
 * `ferry bench <registry>[/<repo>]`: load-test a registry with clean, measurable load, or replay a trace
 * of real traffic (`-s replay --trace FILE`); `ferry bench trace convert|synth` make traces;
 * `ferry bench compare a.json b.json` puts two runs side by side (bench-trace.ts).
 */
import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { type BenchFlags, DEFAULTS, parseBenchConfig, SCENARIOS } from "../../load/config.ts";
import { FerryError } from "../../shared/registry/errors.ts";
import { connectionOptions } from "../../shared/registry/options.ts";
import { addConnectionFlags, type ConnectionFlags, debugObserver, makeClient } from "../client-options.ts";
import { registerBenchTools } from "./bench-trace.ts";

interface CliFlags extends BenchFlags, ConnectionFlags {
  json?: boolean;
  html?: string;
  quiet?: boolean;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function registerBench(program: Command): void {
  // `ferry bench compare a b --html x`: commander hands a command the options after its subcommand's name
  // unless every command above stops parsing at its subcommand (positional options), the root included;
  // the root's own options (--version, --help) come before the verb anyway.
  program.enablePositionalOptions();
  const cmd = program
    .command("bench")
    .description(
      "load-test a registry over the OCI Distribution API: pull, push, mixed, manifest, catalog, tags scenarios, or replay a trace of real traffic",
    )
    // `ferry bench trace …` / `ferry bench compare …` take their own options, not the load test's
    .enablePositionalOptions()
    .argument("[target]", "the registry to load: host[:port] or host[:port]/repository (required)")
    .option("-s, --scenario <name>", `${SCENARIOS.join(" | ")} (default ${DEFAULTS.scenario})`)
    .option(
      "--image <ref>",
      "image to pull / manifest to hit (repeatable); default: push a seed image first",
      collect,
      [],
    )
    .option("-d, --duration <time>", `how long the load runs, e.g. 30s, 2m (default ${DEFAULTS.duration})`)
    .option("-n, --iterations <n>", "stop after this many iterations in total")
    .option(
      "-c, --vus <n>",
      `closed model: virtual users running iterations back to back (default ${DEFAULTS.vus})`,
    )
    .option("--think <time>", "closed model: pause between a VU's iterations")
    .option("--ramp-up <time>", "closed model: start the VUs evenly over this time")
    .option("-r, --rate <n>", "open model: iterations started per second (latency from the intended start)")
    .option("--max-vus <n>", `open model: iterations in flight at most (default ${DEFAULTS.maxVus})`)
    .option("--mix <weights>", `mixed scenario weights, e.g. pull=9,push=1 (default ${DEFAULTS.mix})`)
    .option("--manifest-op <op>", "manifest scenario: head | get | both (default both, alternating)")
    .option("--layers <n>", `push: layers per image (default ${DEFAULTS.layers})`)
    .option(
      "--layer-size <size>",
      `push: layer size or range, e.g. 1MiB or 256KiB-4MiB (default ${DEFAULTS.layerSize})`,
    )
    .option("--compressibility <0..1>", "push: share of zeros in each layer (default 0: random bytes)")
    .option(
      "--reuse <0..1>",
      "push: share of layers reused from a pool across iterations (dedupe/mount; default 0)",
    )
    .option("--repos <n>", "push: spread images over N repositories <repo>-0…N-1 (reused layers then mount)")
    .option("--push-concurrency <n>", "push: blobs uploaded at once per image (default 5)")
    .option("--pull-concurrency <n>", "pull: blobs downloaded at once per image (default 3)")
    .option(
      "--platform <os/arch>",
      "pull: the platform to pull from an index (default linux/amd64, else the first)",
    )
    .option("--no-verify", "pull: do not digest-verify blobs (measures raw transfer)")
    .option("--no-readback", "push: do not read every pushed image back by digest at the end")
    .option("--cleanup", "delete what the run pushed (manifests by digest, then their blobs)")
    .option("--page-size <n>", `catalog/tags: entries per page (default ${DEFAULTS.pageSize})`)
    .option(
      "--retries <n>",
      "client retries of 5xx/429/dropped connections (default 0: count failures, do not hide them)",
    )
    .option(
      "--timeout <time>",
      `longest wait for response headers or body data (default ${DEFAULTS.timeout})`,
    )
    .option(
      "--grace <time>",
      `after the duration, time in-flight iterations get to finish (default ${DEFAULTS.grace})`,
    )
    .option(
      "--client-per-vu",
      "closed model: one client per VU (own token cache), like N independent docker clients",
    )
    .option("--workers <n>", "split the load over N workers whose metrics are merged (default 1)")
    .option("--via-workflow", "fan the workers out through the Step Functions definition (run locally)")
    .option(
      "--state-machine <arn>",
      "fan the workers out on AWS: the stack's BenchFanoutStateMachineArn (Lambda workers; AWS credentials from the SDK chain)",
    )
    .option("--s3-endpoint <url>", "with --state-machine: an S3-compatible endpoint for the results")
    .option("--trace <file>", "replay: a trace file (IBM format; repeatable, merged by time)", collect, [])
    .option("--speed <x>", "replay: the recorded pace times X (default 1; 2 = twice as fast)")
    .option("--max-rate", "replay: no schedule, each trace client's requests back to back")
    .option("--limit-seconds <time>", "replay: only the trace's first N seconds")
    .option("--limit-requests <n>", "replay: only the trace's first N usable records")
    .option("--clients-by <how>", "replay: remoteaddr (one connection pool per trace client) | round-robin")
    .option(
      "--state <dir>",
      "replay: keep the trace-URI → digest mapping of seeded objects here (no re-push)",
    )
    .option(
      "--staging-bucket <name>",
      "replay with --state-machine: the stack's StagingBucketName (the workers' parts of the trace go there)",
    )
    .option("--run-id <id>", "names this run's tags and content (default: random)")
    .option("--json", "print the report as JSON")
    .option("--html <file>", "also write a self-contained HTML report with charts")
    .option("-q, --quiet", "no live view");
  registerBenchTools(cmd);
  addConnectionFlags(cmd, "single", "rules").action(async (target: string | undefined, flags: CliFlags) => {
    const config = parseBenchConfig(target, flags);
    // The load engine (histograms, HTML report) loads only when a bench runs: other commands start faster.
    const [{ renderHtml }, { createLiveView }, { formatReport }, { runBench }, { formatReplay }] =
      await Promise.all([
        import("../../load/html.ts"),
        import("../../load/live.ts"),
        import("../../load/report.ts"),
        import("../../load/run.ts"),
        import("../../load/replay-report.ts"),
      ]);
    // Connection options (credentials, TLS, CA) come from the same flags as every ferry command.
    const template = makeClient(
      { ...flags, debug: false, chunkSize: undefined },
      { single: config.registry },
    );
    // Credentials, TLS, proxy and network settings, exactly as the template client resolved them.
    const connection = connectionOptions(template.options);
    await template.close();
    const live = createLiveView(
      !flags.quiet && !flags.json,
      `${config.scenario} → ${config.registry}`,
      () => config.durationMs,
    );
    const stderr = (line: string) => {
      if (!flags.quiet && !flags.json) process.stderr.write(`ferry bench: ${line}\n`);
    };
    let report: Awaited<ReturnType<typeof import("../../load/run.ts").runBench>>;
    try {
      report = await runBench(config, {
        clientOptions: { ...connection, ...(flags.debug ? { observer: debugObserver } : {}) },
        onMetrics: (m) => live.add(m),
        log: stderr,
        ...(flags.stateMachine
          ? {
              aws: {
                stateMachineArn: flags.stateMachine,
                ...(flags.s3Endpoint ? { s3Endpoint: flags.s3Endpoint } : {}),
              },
            }
          : {}),
      });
    } finally {
      live.stop();
    }
    if (flags.html) {
      try {
        await writeFile(flags.html, renderHtml(report));
      } catch (e) {
        throw new FerryError("USAGE", `cannot write --html ${flags.html}: ${(e as Error).message}`);
      }
      stderr(`HTML report written to ${flags.html}`);
    }
    process.stdout.write(
      flags.json
        ? `${JSON.stringify(report, null, 2)}\n`
        : formatReport(report) + (report.replay ? formatReplay(report.replay) : ""),
    );
    const verifyFailed = report.verification.verifyFailures + (report.verification.readback?.failures ?? 0);
    if (verifyFailed > 0)
      throw new FerryError(
        "BENCH_VERIFY",
        `bench: ${verifyFailed} digest verification or read-back failure(s)`,
      );
    if (report.iterations.total > 0 && report.iterations.ok === 0) {
      const first = Object.entries(report.errors.samples)[0];
      throw new FerryError(
        "BENCH_FAILED",
        `bench: all ${report.iterations.total} iterations failed${first ? ` (${first[0]}: ${first[1]})` : ""}`,
      );
    }
  });
}
