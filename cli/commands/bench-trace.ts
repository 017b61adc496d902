/**
 * `ferry bench trace convert <log>... -o trace.json`, `ferry bench trace synth -o trace.json` and
 * `ferry bench compare a.json b.json`: the tools around a trace replay (load/trace-*.ts, compare.ts).
 * Output files are written whole or not at all (a temporary file renamed into place).
 */
import { rename, rm, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { parseByteSize, parseDuration, parseInteger, parseNumber } from "../../load/config.ts";
import { FerryError } from "../../shared/registry/errors.ts";

async function writeWhole(file: string, text: string, what: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, text);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new FerryError("USAGE", `cannot write ${what} ${file}: ${(e as Error).message}`);
  }
}

/** A number option (validated by config.ts's rules; the synthesiser checks ranges, naming the option). */
function num(value: string | undefined, option: string, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  return integer ? parseInteger(value, option, 0) : parseNumber(value, option, Number.NEGATIVE_INFINITY);
}

export function registerBenchTools(bench: Command): void {
  const trace = bench
    .command("trace")
    .description("make registry traces for -s replay: convert a registry's logs, or synthesise one");
  trace
    .command("convert")
    .description(
      "turn CNCF distribution logs (log.formatter: json, or access-log lines) into a trace (IBM format)",
    )
    .argument("<log...>", "registry log files")
    .requiredOption("-o, --output <file>", "the trace to write")
    .option("--keep-names", "keep repository names, references and client addresses (default: keyed hashes)")
    .action(async (logs: string[], flags: { output: string; keepNames?: boolean }) => {
      const { convertLogs, traceText } = await import("../../load/trace-convert.ts");
      const { records, summary: s } = await convertLogs(logs, { keepNames: flags.keepNames === true });
      await writeWhole(flags.output, traceText(records), "trace");
      const methods = Object.entries(s.byMethod)
        .sort((a, b) => b[1] - a[1])
        .map(([m, n]) => `${m} ${n}`)
        .join(", ");
      process.stdout.write(
        `${flags.output}: ${s.records} records (${methods || "none"}) from ${s.requests} logged requests in ${s.files} file(s)\n` +
          `pushes: ${s.pushes} (${s.folded} POST/PATCH requests folded into them)` +
          (s.unknownSize
            ? `; ${s.unknownSize} of a size the logs do not tell (written 0: the replay skips them)`
            : "") +
          `\n${s.anonymised ? "names, references and clients replaced by keyed hashes (--keep-names keeps them)" : "names kept"}` +
          (s.otherLines ? `; ${s.otherLines} other log lines ignored` : "") +
          "\n",
      );
    });
  trace
    .command("synth")
    .description("generate a production-shaped trace (docs/load-testing.md: the defaults and their source)")
    .requiredOption("-o, --output <file>", "the trace to write")
    .option("--requests <n>", "records (default 1000)")
    .option("--span <time>", "the trace's length (default 10m)")
    .option("--clients <n>", "trace clients (default 40)")
    .option("--images <n>", "distinct images pulled (default 100)")
    .option("--layers <n>", "mean layers per image (default 5)")
    .option("--zipf <s>", "popularity exponent: image of rank r drawn with weight 1/r^s (default 1)")
    .option("--base-share <0..1>", "share of layers that are base layers shared between images (default 0.3)")
    .option("--layer-median <size>", "median layer size (default 512KiB)")
    .option("--layer-sigma <σ>", "log-normal shape of layer sizes (default 1.5)")
    .option("--put-share <0..1>", "share of records that are PUTs (default 0.05)")
    .option("--diurnal <0..1>", "relative amplitude of the day-like rate cycle (default 0.5)")
    .option("--cycles <n>", "day-like cycles over the span (default 1)")
    .option("--seed <text>", "the same seed gives the same trace (default ferry)")
    .option("--start <iso>", "the first record's time (default 2026-01-05T00:00:00.000Z)")
    .action(async (f: Record<string, string | undefined>) => {
      const { SYNTH_DEFAULTS, synthTrace } = await import("../../load/trace-synth.ts");
      const { traceText } = await import("../../load/trace-convert.ts");
      const d = SYNTH_DEFAULTS;
      const records = synthTrace({
        requests: num(f.requests, "--requests", d.requests, true),
        spanSeconds: f.span !== undefined ? parseDuration(f.span, "--span") / 1000 : d.spanSeconds,
        clients: num(f.clients, "--clients", d.clients, true),
        images: num(f.images, "--images", d.images, true),
        layers: num(f.layers, "--layers", d.layers),
        zipf: num(f.zipf, "--zipf", d.zipf),
        baseShare: num(f.baseShare, "--base-share", d.baseShare),
        layerMedian:
          f.layerMedian !== undefined ? parseByteSize(f.layerMedian, "--layer-median") : d.layerMedian,
        layerSigma: num(f.layerSigma, "--layer-sigma", d.layerSigma),
        putShare: num(f.putShare, "--put-share", d.putShare),
        diurnal: num(f.diurnal, "--diurnal", d.diurnal),
        cycles: num(f.cycles, "--cycles", d.cycles),
        seed: f.seed ?? d.seed,
        start: f.start ?? d.start,
      });
      await writeWhole(f.output!, traceText(records), "trace");
      const puts = records.filter((r) => r["http.request.method"] === "PUT").length;
      process.stdout.write(
        `${f.output}: ${records.length} records (${records.length - puts} GET, ${puts} PUT)\n`,
      );
    });
  bench
    .command("compare")
    .description(
      "two runs side by side (reports of ferry bench --json): differences and whether beyond noise",
    )
    .argument("<a>", "the first run's JSON report")
    .argument("<b>", "the second run's JSON report")
    .option("--html <file>", "also write a self-contained HTML page")
    .option("--json", "print the comparison as JSON")
    .action(async (a: string, b: string, flags: { html?: string; json?: boolean }) => {
      const { compareReports, formatComparison, readReport } = await import("../../load/compare.ts");
      const [ra, rb] = await Promise.all([readReport(a), readReport(b)]);
      const c = compareReports(a, ra, b, rb);
      if (flags.html) {
        const { renderComparisonHtml } = await import("../../load/compare-html.ts");
        await writeWhole(flags.html, renderComparisonHtml(c, ra, rb), "--html");
      }
      process.stdout.write(flags.json ? `${JSON.stringify(c, null, 2)}\n` : formatComparison(c));
    });
}
