/**
 * `ferry bench` configuration: parsed and validated once from command-line flags into a plain JSON
 * object (it travels to workers, in process or through the Step Functions fan-out). Every bad option
 * is a FerryError with code USAGE and a message naming the option.
 */
import { randomBytes } from "node:crypto";
import { FerryError } from "../shared/registry/errors.ts";
import { parsePlatform } from "../shared/registry/manifest.ts";
import { formatReference, parseReference, parseRepository } from "../shared/registry/reference.ts";

/** The User-Agent of the load's requests (followed by run=<id> worker=<n>): the registry's logs tell them apart. */
export const BENCH_USER_AGENT = "ferry-bench/0.1";

export const SCENARIOS = ["pull", "push", "mixed", "manifest", "catalog", "tags", "replay"] as const;
export type Scenario = (typeof SCENARIOS)[number];
/** What one iteration does: every scenario but `mixed` (picks one of these) and `replay` (replay.ts). */
export type IterationKind = Exclude<Scenario, "mixed" | "replay">;
export const ITERATION_KINDS: readonly IterationKind[] = ["pull", "push", "manifest", "catalog", "tags"];

export type LoadModel =
  | { kind: "closed"; vus: number; thinkMs: number; rampUpMs: number }
  | { kind: "open"; rate: number; maxVus: number }
  /** A trace replay: records at their recorded offsets divided by `speed`, or back to back (`maxRate`). */
  | { kind: "replay"; speed: number; maxRate: boolean };

/** How a replay assigns trace records to connection pools (and pools to workers). */
export type ClientsBy = "remoteaddr" | "round-robin";

export interface ReplayOptions {
  /** Trace files (IBM format: load/trace.ts). */
  traces: string[];
  limitSeconds?: number;
  limitRequests?: number;
  clientsBy: ClientsBy;
  /** Where the trace-URI → digest mapping of seeded objects is kept between runs. */
  stateDir?: string;
  /** With --state-machine: the stack's staging bucket, where the workers' parts of the trace go. */
  stagingBucket?: string;
}

export interface PushShape {
  /** Layers per pushed image. */
  layers: number;
  /** Layer sizes, bytes: each layer's size is drawn (deterministically) from [min, max]. */
  layerSizeMin: number;
  layerSizeMax: number;
  /** Share of each layer's bytes that is zeros (0: incompressible random bytes, 1: all zeros). */
  compressibility: number;
  /** Share of each image's layers taken from a pool shared by every iteration (dedupe / mount). */
  reuse: number;
  /** Repositories pushed to in turn (`<repo>`, or `<repo>-0` … `<repo>-N-1`): with reuse, exercises mounts. */
  repos: number;
  /** Forces chunked uploads of this size (bytes). */
  chunkSize?: number;
  /** Blobs pushed at once within one image (docker pushes 5 at once). */
  concurrency: number;
}

export interface BenchConfig {
  /** Registry host[:port]. */
  registry: string;
  /** Repository pushed to, seeded, or listed (default ferry-bench). */
  repository: string;
  scenario: Scenario;
  /** Images pulled by `pull` / hit by `manifest` (normalised references). Empty: push a seed image first. */
  images: string[];
  durationMs: number;
  /** Stop after this many iterations in total (across workers). */
  iterations?: number;
  model: LoadModel;
  /** Weights for `mixed`. */
  mix: { kind: IterationKind; weight: number }[];
  manifestOp: "head" | "get" | "both";
  push: PushShape;
  /** `os/arch[/variant]` pulled from an index (default linux/amd64, else the first). */
  platform?: string;
  /** Blobs pulled at once within one image (docker pulls 3 at once). */
  pullConcurrency: number;
  /** Digest-verify every pulled blob (default true; --no-verify measures raw transfer). */
  verify: boolean;
  /** Read every pushed image back by digest at the end (default true). */
  readback: boolean;
  /** Delete what the run pushed. */
  cleanup: boolean;
  pageSize: number;
  /** Client retries of temporary failures (default 0: a load test counts failures, it does not hide them). */
  retries: number;
  /** Longest wait for response headers, and longest silence in a body, ms. */
  timeoutMs: number;
  /** After the duration, how long in-flight iterations may finish before they are aborted, ms. */
  graceMs: number;
  /** One client (own connections and tokens) per virtual user, like N independent docker clients. */
  clientPerVu: boolean;
  /** Workers the load is split across (VUs, rate and iteration count are totals). */
  workers: number;
  /** Fan the workers out through the Step Functions definition (aws-local-stepfunctions). */
  viaWorkflow: boolean;
  /** Names this run's tags and synthetic content. */
  runId: string;
  /** The replay scenario's trace and how it is replayed. */
  replay?: ReplayOptions;
}

/** Raw flag values as commander hands them over (strings, booleans, repeated values as arrays). */
export interface BenchFlags {
  scenario?: string;
  image?: string[];
  duration?: string;
  iterations?: string;
  vus?: string;
  think?: string;
  rampUp?: string;
  rate?: string;
  maxVus?: string;
  mix?: string;
  manifestOp?: string;
  layers?: string;
  layerSize?: string;
  compressibility?: string;
  reuse?: string;
  repos?: string;
  chunkSize?: string;
  pushConcurrency?: string;
  pullConcurrency?: string;
  platform?: string;
  verify?: boolean;
  readback?: boolean;
  cleanup?: boolean;
  pageSize?: string;
  retries?: string;
  timeout?: string;
  grace?: string;
  clientPerVu?: boolean;
  workers?: string;
  viaWorkflow?: boolean;
  /** Fan out on AWS through this state machine (the CLI carries it to runBench; implies viaWorkflow). */
  stateMachine?: string;
  s3Endpoint?: string;
  runId?: string;
  /** replay: trace files (repeatable). */
  trace?: string[];
  speed?: string;
  maxRate?: boolean;
  limitSeconds?: string;
  limitRequests?: string;
  clientsBy?: string;
  state?: string;
  stagingBucket?: string;
}

export const DEFAULTS = {
  scenario: "pull" as Scenario,
  repository: "ferry-bench",
  duration: "10s",
  vus: 4,
  maxVus: 256,
  mix: "pull=9,push=1",
  manifestOp: "both" as const,
  layers: 3,
  layerSize: "1MiB",
  pageSize: 100,
  timeout: "30s",
  grace: "5s",
  /** A replay's last requests may be long downloads: they get this long after the last intended start. */
  replayGrace: "60s",
  speed: 1,
  clientsBy: "remoteaddr" as ClientsBy,
};

export function usage(message: string): FerryError {
  return new FerryError("USAGE", message);
}

/** `500ms`, `10s`, `2m`, `1h`, `1.5s`; a bare number is seconds. */
export function parseDuration(value: string, option: string, allowZero = false): number {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(value);
  if (!m) throw usage(`${option}: invalid duration "${value}" (e.g. 500ms, 10s, 2m)`);
  const n = Number(m[1]);
  const unit = (m[2] ?? "s").toLowerCase();
  const ms = n * (unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000);
  if (ms < 0 || (!allowZero && ms === 0))
    throw usage(`${option} must be ${allowZero ? "zero or more" : "more than zero"} (got "${value}")`);
  return Math.round(ms);
}

/** `8MiB`, `512KiB`, `1.5MB` (binary units), `1048576`. */
export function parseByteSize(value: string, option: string): number {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$/i.exec(value);
  if (!m) throw usage(`${option}: invalid size "${value}" (e.g. 1MiB, 512KiB, 1048576)`);
  const unit = (m[2] ?? "b").toLowerCase()[0]!;
  const mult = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
  const n = Math.round(Number(m[1]) * mult);
  if (n < 0) throw usage(`${option} must not be negative (got "${value}")`);
  return n;
}

export function parseInteger(value: string, option: string, min: number): number {
  if (!/^\s*-?\d+\s*$/.test(value)) throw usage(`${option}: expected a whole number, got "${value}"`);
  const n = Number(value);
  if (n < min) throw usage(`${option} must be at least ${min} (got ${n})`);
  return n;
}

export function parseNumber(
  value: string,
  option: string,
  min: number,
  max = Number.POSITIVE_INFINITY,
): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) throw usage(`${option}: expected a number, got "${value}"`);
  if (n < min || n > max) {
    const range = max === Number.POSITIVE_INFINITY ? `at least ${min}` : `between ${min} and ${max}`;
    throw usage(`${option} must be ${range} (got ${value})`);
  }
  return n;
}

/** `pull=9,push=1` (or `pull:9,push:1`). */
export function parseMix(value: string): { kind: IterationKind; weight: number }[] {
  const out: { kind: IterationKind; weight: number }[] = [];
  for (const part of value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([a-z]+)\s*[=:]\s*(\S+)$/.exec(part);
    if (!m) throw usage(`--mix: expected name=weight pairs such as pull=9,push=1 (got "${part}")`);
    const kind = m[1] as IterationKind;
    if (!ITERATION_KINDS.includes(kind))
      throw usage(`--mix: unknown scenario "${m[1]}" (one of ${ITERATION_KINDS.join(", ")})`);
    const weight = parseNumber(m[2]!, `--mix weight of ${kind}`, 0);
    if (out.some((x) => x.kind === kind)) throw usage(`--mix: ${kind} given twice`);
    if (weight > 0) out.push({ kind, weight });
  }
  if (out.length === 0) throw usage(`--mix needs at least one positive weight (e.g. pull=9,push=1)`);
  return out;
}

/** Splits `<registry>[/<repo>]`. */
export function parseTarget(target: string | undefined): { registry: string; repository?: string } {
  const t = (target ?? "").trim().replace(/^docker:\/\//, "");
  if (!t)
    throw usage("bench needs a target: ferry bench <registry>[/<repo>] (e.g. ferry bench localhost:5000)");
  if (/^[a-z]+:\/\//i.test(t)) throw usage(`bench target "${t}": give host[:port][/repo], not a URL`);
  if (/[@]/.test(t) || /\/[^/]*:[^/]*$/.test(t))
    throw usage(`bench target "${t}": give a registry or a repository, not an image (use --image for that)`);
  const slash = t.indexOf("/");
  if (slash < 0) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?)(?::(\d{1,5}))?$/.exec(t);
    if (!m || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535)))
      throw usage(`bench target "${t}" is not a registry host[:port]`);
    return { registry: t === "index.docker.io" || t === "registry-1.docker.io" ? "docker.io" : t };
  }
  const host = t.slice(0, slash);
  if (!(host.includes(".") || host.includes(":") || host === "localhost" || host.startsWith("[")))
    throw usage(`bench target "${t}" must start with a registry host (e.g. localhost:5000/${t})`);
  try {
    const repo = parseRepository(t);
    return { registry: repo.registry, repository: repo.repository };
  } catch (e) {
    throw usage(`bench target "${t}": ${(e as Error).message.replace(/^invalid reference "[^"]*": /, "")}`);
  }
}

/** Validates flags into a BenchConfig. Throws FerryError USAGE naming the bad option. */
export function parseBenchConfig(target: string | undefined, flags: BenchFlags): BenchConfig {
  const { registry, repository } = parseTarget(target);
  const scenarioText = flags.scenario ?? DEFAULTS.scenario;
  if (!(SCENARIOS as readonly string[]).includes(scenarioText))
    throw usage(`unknown scenario "${scenarioText}" (one of ${SCENARIOS.join(", ")})`);
  const scenario = scenarioText as Scenario;
  if (scenario === "replay") return parseReplayConfig(registry, repository, flags);
  for (const [flag, given] of [
    ["--trace", flags.trace?.length],
    ["--speed", flags.speed],
    ["--max-rate", flags.maxRate],
    ["--limit-seconds", flags.limitSeconds],
    ["--limit-requests", flags.limitRequests],
    ["--clients-by", flags.clientsBy],
    ["--state", flags.state],
    ["--staging-bucket", flags.stagingBucket],
  ] as const)
    if (given) throw usage(`${flag} applies to --scenario replay`);

  const images = (flags.image ?? []).map((text) => {
    let ref: ReturnType<typeof parseReference>;
    try {
      ref = parseReference(text.replace(/^docker:\/\//, ""));
    } catch (e) {
      throw usage(`--image: ${(e as Error).message}`);
    }
    if (ref.registry !== registry)
      throw usage(`--image ${text} is not on the target registry ${registry}: bench one registry at a time`);
    return formatReference(ref);
  });
  if (images.length && !["pull", "manifest", "mixed", "tags"].includes(scenario))
    throw usage(`--image applies to the pull, manifest, tags and mixed scenarios, not ${scenario}`);

  const durationMs = parseDuration(flags.duration ?? DEFAULTS.duration, "--duration");
  const iterations =
    flags.iterations !== undefined ? parseInteger(flags.iterations, "--iterations", 1) : undefined;

  let model: LoadModel;
  if (flags.rate !== undefined) {
    if (flags.think !== undefined || flags.rampUp !== undefined)
      throw usage("--think and --ramp-up belong to the closed model (--vus); --rate is the open model");
    const rate = parseNumber(flags.rate, "--rate", 0);
    if (rate === 0) throw usage("--rate must be more than zero iterations per second");
    const maxVus = flags.maxVus ? parseInteger(flags.maxVus, "--max-vus", 1) : DEFAULTS.maxVus;
    model = { kind: "open", rate, maxVus };
    if (flags.vus !== undefined) throw usage("give --vus (closed model) or --rate (open model), not both");
  } else {
    if (flags.maxVus !== undefined) throw usage("--max-vus belongs to the open model (--rate)");
    const vus = flags.vus !== undefined ? parseInteger(flags.vus, "--vus", 1) : DEFAULTS.vus;
    const thinkMs = flags.think !== undefined ? parseDuration(flags.think, "--think", true) : 0;
    const rampUpMs = flags.rampUp !== undefined ? parseDuration(flags.rampUp, "--ramp-up", true) : 0;
    if (rampUpMs >= durationMs) throw usage("--ramp-up must be shorter than --duration");
    model = { kind: "closed", vus, thinkMs, rampUpMs };
  }

  if (flags.clientPerVu && model.kind === "open")
    throw usage("--client-per-vu belongs to the closed model (--vus)");
  const mix = parseMix(flags.mix ?? DEFAULTS.mix);
  if (flags.mix !== undefined && scenario !== "mixed") throw usage("--mix applies to --scenario mixed");

  const manifestOp = (flags.manifestOp ?? DEFAULTS.manifestOp) as BenchConfig["manifestOp"];
  if (!["head", "get", "both"].includes(manifestOp))
    throw usage(`--manifest-op must be head, get or both (got "${flags.manifestOp}")`);

  const [sizeMinText, sizeMaxText] = (flags.layerSize ?? DEFAULTS.layerSize).split(/\s*(?:-|\.\.)\s*(?=\d)/);
  const layerSizeMin = parseByteSize(sizeMinText ?? "", "--layer-size");
  const layerSizeMax = sizeMaxText !== undefined ? parseByteSize(sizeMaxText, "--layer-size") : layerSizeMin;
  if (layerSizeMin < 1) throw usage("--layer-size must be at least 1 byte");
  if (layerSizeMax < layerSizeMin) throw usage("--layer-size: the range must be min-max, min ≤ max");
  const push: PushShape = {
    layers: flags.layers !== undefined ? parseInteger(flags.layers, "--layers", 1) : DEFAULTS.layers,
    layerSizeMin,
    layerSizeMax,
    compressibility:
      flags.compressibility !== undefined ? parseNumber(flags.compressibility, "--compressibility", 0, 1) : 0,
    reuse: flags.reuse !== undefined ? parseNumber(flags.reuse, "--reuse", 0, 1) : 0,
    repos: flags.repos !== undefined ? parseInteger(flags.repos, "--repos", 1) : 1,
    concurrency:
      flags.pushConcurrency !== undefined ? parseInteger(flags.pushConcurrency, "--push-concurrency", 1) : 5,
  };
  if (flags.chunkSize !== undefined) {
    push.chunkSize = parseByteSize(flags.chunkSize, "--chunk-size");
    if (push.chunkSize < 1) throw usage("--chunk-size must be at least 1 byte");
  }

  if (flags.platform !== undefined) {
    try {
      parsePlatform(flags.platform);
    } catch (e) {
      throw usage(`--platform: ${(e as Error).message}`);
    }
  }

  const workers = flags.workers !== undefined ? parseInteger(flags.workers, "--workers", 1) : 1;
  if (flags.stateMachine !== undefined) {
    if (flags.viaWorkflow) throw usage("--state-machine and --via-workflow: choose one");
    stateMachineRegion(flags.stateMachine);
  } else if (flags.s3Endpoint !== undefined) {
    throw usage("--s3-endpoint applies to --state-machine");
  }
  const fanOut =
    flags.stateMachine !== undefined ? "--state-machine" : flags.viaWorkflow ? "--via-workflow" : undefined;
  if (fanOut && flags.workers === undefined) throw usage(`${fanOut} fans out --workers N (give --workers)`);
  if (model.kind === "closed" && model.vus < workers)
    throw usage(`--workers ${workers} splits --vus ${model.vus}: give at least one VU per worker`);
  if (model.kind === "open" && model.maxVus < workers)
    throw usage(`--workers ${workers} splits --max-vus ${model.maxVus}: give at least one per worker`);

  const runId = flags.runId ?? `${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
  if (!/^[a-z0-9]+$/.test(runId)) throw usage(`--run-id must be lowercase letters and digits`);

  return {
    registry,
    repository: repository ?? DEFAULTS.repository,
    scenario,
    images,
    durationMs,
    ...(iterations !== undefined ? { iterations } : {}),
    model,
    mix,
    manifestOp,
    push,
    ...(flags.platform ? { platform: flags.platform } : {}),
    pullConcurrency:
      flags.pullConcurrency !== undefined ? parseInteger(flags.pullConcurrency, "--pull-concurrency", 1) : 3,
    verify: flags.verify !== false,
    readback: flags.readback !== false,
    cleanup: flags.cleanup === true,
    pageSize:
      flags.pageSize !== undefined ? parseInteger(flags.pageSize, "--page-size", 1) : DEFAULTS.pageSize,
    retries: flags.retries !== undefined ? parseInteger(flags.retries, "--retries", 0) : 0,
    timeoutMs: parseDuration(flags.timeout ?? DEFAULTS.timeout, "--timeout"),
    graceMs: parseDuration(flags.grace ?? DEFAULTS.grace, "--grace", true),
    clientPerVu: flags.clientPerVu === true,
    workers,
    viaWorkflow: fanOut !== undefined,
    runId,
  };
}

/** Options of the closed and open models that a replay, whose timing is the trace's, does not take. */
const NOT_FOR_REPLAY: [keyof BenchFlags, string][] = [
  ["image", "--image"],
  ["duration", "--duration (a replay lasts as long as its trace: --limit-seconds, --limit-requests)"],
  ["iterations", "--iterations (use --limit-requests)"],
  ["vus", "--vus"],
  ["think", "--think"],
  ["rampUp", "--ramp-up"],
  ["rate", "--rate (use --speed)"],
  ["maxVus", "--max-vus"],
  ["mix", "--mix"],
  ["manifestOp", "--manifest-op"],
  ["layers", "--layers"],
  ["layerSize", "--layer-size"],
  ["compressibility", "--compressibility"],
  ["reuse", "--reuse"],
  ["repos", "--repos"],
  ["pushConcurrency", "--push-concurrency"],
  ["pullConcurrency", "--pull-concurrency"],
  ["platform", "--platform"],
  ["pageSize", "--page-size"],
  ["clientPerVu", "--client-per-vu"],
];

/** `--scenario replay`: the trace, its timing, and the options every scenario shares. */
function parseReplayConfig(registry: string, repository: string | undefined, flags: BenchFlags): BenchConfig {
  for (const [key, name] of NOT_FOR_REPLAY)
    if (flags[key] !== undefined && !(Array.isArray(flags[key]) && flags[key].length === 0))
      throw usage(`${name} does not apply to --scenario replay`);
  if (flags.cleanup)
    throw usage(
      "--cleanup does not apply to --scenario replay: seeded objects stay for the next run (--state); pushed blobs are unreferenced, for the registry's garbage collector",
    );
  const traces = flags.trace ?? [];
  if (traces.length === 0) throw usage("--scenario replay needs --trace FILE (repeatable)");
  if (flags.speed !== undefined && flags.maxRate) throw usage("give --speed or --max-rate, not both");
  const speed = flags.speed !== undefined ? parseNumber(flags.speed, "--speed", 0) : DEFAULTS.speed;
  if (speed === 0) throw usage("--speed must be more than zero (e.g. 2 replays twice as fast)");
  if (flags.limitSeconds !== undefined && flags.limitRequests !== undefined)
    throw usage("give --limit-seconds or --limit-requests, not both");
  const clientsBy = (flags.clientsBy ?? DEFAULTS.clientsBy) as ClientsBy;
  if (clientsBy !== "remoteaddr" && clientsBy !== "round-robin")
    throw usage(`--clients-by must be remoteaddr or round-robin (got "${flags.clientsBy}")`);
  const replay: ReplayOptions = {
    traces,
    clientsBy,
    ...(flags.limitSeconds !== undefined
      ? { limitSeconds: parseDuration(flags.limitSeconds, "--limit-seconds") / 1000 }
      : {}),
    ...(flags.limitRequests !== undefined
      ? { limitRequests: parseInteger(flags.limitRequests, "--limit-requests", 1) }
      : {}),
    ...(flags.state !== undefined ? { stateDir: flags.state } : {}),
  };
  if (flags.stagingBucket !== undefined) {
    if (flags.stateMachine === undefined) throw usage("--staging-bucket applies to --state-machine");
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(flags.stagingBucket))
      throw usage(`--staging-bucket: "${flags.stagingBucket}" is not an S3 bucket name`);
    replay.stagingBucket = flags.stagingBucket;
  } else if (flags.stateMachine !== undefined)
    throw usage(
      "--scenario replay with --state-machine needs --staging-bucket (the stack's StagingBucketName): the workers read their part of the trace there",
    );
  // Shared with every scenario: target, retries, timeouts, verification, workers, fan-out, run id.
  const base = parseBenchConfig(`${registry}${repository ? `/${repository}` : ""}`, {
    ...flags,
    scenario: "manifest",
    trace: [],
    speed: undefined,
    maxRate: undefined,
    limitSeconds: undefined,
    limitRequests: undefined,
    clientsBy: undefined,
    state: undefined,
    stagingBucket: undefined,
    vus: flags.workers ?? "1",
    grace: flags.grace ?? DEFAULTS.replayGrace,
  });
  return {
    ...base,
    scenario: "replay",
    // the trace sets the length: known once it is read (replay-run.ts)
    durationMs: 0,
    model: { kind: "replay", speed: flags.maxRate ? 0 : speed, maxRate: flags.maxRate === true },
    mix: [],
    replay,
  };
}

/** The kinds of iteration a config runs. */
export function iterationKinds(config: BenchConfig): IterationKind[] {
  if (config.scenario === "replay") return [];
  return config.scenario === "mixed" ? config.mix.map((m) => m.kind) : [config.scenario];
}

/** True when the run needs an image to read and none was given: a seed image is pushed first. */
export function needsSeed(config: BenchConfig): boolean {
  if (config.images.length > 0) return false;
  return iterationKinds(config).some((k) => k === "pull" || k === "manifest" || k === "tags");
}

/** The share of the load worker `index` of `count` runs: VUs, rate and iterations are split, remainders first. */
export function workerShare(
  config: BenchConfig,
  index: number,
  count: number,
): { model: LoadModel; iterations?: number } {
  const split = (n: number) => Math.floor(n / count) + (index < n % count ? 1 : 0);
  const model: LoadModel =
    config.model.kind === "closed"
      ? { ...config.model, vus: split(config.model.vus) }
      : config.model.kind === "open"
        ? { ...config.model, rate: config.model.rate / count, maxVus: split(config.model.maxVus) }
        : config.model; // a replay's workers each get their clients' records (replay-plan.ts)
  return config.iterations !== undefined ? { model, iterations: split(config.iterations) } : { model };
}

/** One line describing the load, for reports. */
export function describeModel(model: LoadModel): string {
  if (model.kind === "replay")
    return model.maxRate
      ? "trace replay: each client's requests back to back (--max-rate)"
      : `trace replay at ${model.speed}× the recorded pace (open model)`;
  if (model.kind === "open") return `open model: ${model.rate}/s arrivals, at most ${model.maxVus} in flight`;
  const extra = [
    model.thinkMs ? `think ${model.thinkMs} ms` : "",
    model.rampUpMs ? `ramp-up ${model.rampUpMs} ms` : "",
  ].filter(Boolean);
  return `closed model: ${model.vus} VU${model.vus === 1 ? "" : "s"}${extra.length ? `, ${extra.join(", ")}` : ""}`;
}

const ARN = /^arn:aws[a-z-]*:states:([a-z0-9-]+):\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$/;

/** The region of a state machine ARN; a clear usage error for anything else. */
export function stateMachineRegion(arn: string): string {
  const m = ARN.exec(arn);
  if (!m)
    throw usage(
      `--state-machine: expected arn:aws:states:<region>:<account>:stateMachine:<name> (the stack's BenchFanoutStateMachineArn), got "${arn.slice(0, 200)}"`,
    );
  return m[1]!;
}
