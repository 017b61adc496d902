/**
 * The pure core of the trigger handlers (functions/api, functions/event, functions/schedule): they start
 * executions and read their state through the small `Executions` interface (Step Functions in Lambda, a
 * fake in tests) and never touch a registry. Execution names are derived from the request, so a repeated
 * request or a re-delivered event finds the execution already started and answers with the same id.
 * Every request is checked against the deployment's allow-lists (policy.ts) before anything starts.
 */
import { createHash, randomBytes } from "node:crypto";
import * as v from "valibot";
import { mapLimit } from "../concurrency.ts";
import { formatReference, parseReference, parseRepository } from "../registry/reference.ts";
import { getJson, type StagingStore } from "../staging/types.ts";
import { MIGRATION_NAME } from "./contract.ts";
import { FerryError, ValidationError } from "./errors.ts";
import { planKey, reportKey, transferPrefix } from "./keys.ts";
import { MAX_PROMOTION_ATTEMPTS, PROMOTION_NAME_PREFIX } from "./names.ts";
import { checkLocationAllowed, checkTransferAllowed, type TransferPolicy } from "./policy.ts";
import type { BlobRecord, StoredPlan, TransferReport } from "./records.ts";
import { readBlobRecord } from "./records.ts";
import { BulkRequestSchema, type CopyRequest, CopyRequestSchema, strictObject, validate } from "./schemas.ts";

/** What the triggers need from Step Functions. */
export interface Executions {
  /**
   * StartExecution. A name already used resolves with `alreadyExists: true` and that execution's ARN
   * (Step Functions names are unique per state machine for 90 days).
   */
  start(p: {
    stateMachineArn: string;
    name: string;
    input: string;
  }): Promise<{ executionArn: string; alreadyExists: boolean }>;
  /** DescribeExecution; undefined when there is no such execution. */
  describe(executionArn: string): Promise<ExecutionDescription | undefined>;
}

export interface ExecutionDescription {
  status: string;
  startDate?: string;
  stopDate?: string;
  /** JSON text, when succeeded. */
  output?: string;
  error?: string;
  cause?: string;
}

/** `arn:aws:states:r:a:stateMachine:M` + name → `arn:aws:states:r:a:execution:M:name`. */
export function executionArnFor(stateMachineArn: string, name: string): string {
  if (!/^arn:aws[a-z-]*:states:[^:]*:\d*:stateMachine:[^:]+$/.test(stateMachineArn))
    throw new TypeError(`not a state machine ARN: ${stateMachineArn}`);
  return `${stateMachineArn.replace(":stateMachine:", ":execution:")}:${name}`;
}

const hash = (value: unknown) => createHash("sha256").update(canonical(value)).digest("hex");

/** JSON with sorted keys (so equal requests hash equally). */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object")
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(value);
}

/** The execution name of a copy request: `t-` + 32 hex of its normalised form. */
export function transferName(req: CopyRequest): string {
  const norm = {
    ...req,
    source: formatReference(parseReference(req.source, null)),
    destination: formatReference(parseReference(req.destination, null)),
  };
  return `t-${hash(norm).slice(0, 32)}`;
}

// ---- API Gateway --------------------------------------------------------------------------------

/** The parts of an API Gateway proxy event (REST v1 or HTTP API v2) the API reads. */
export interface ApiEvent {
  httpMethod?: string;
  path?: string;
  rawPath?: string;
  requestContext?: { http?: { method?: string; path?: string } };
  pathParameters?: Record<string, string | undefined> | null;
  body?: string | null;
  isBase64Encoded?: boolean;
}

export interface ApiResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export interface ApiDeps {
  executions: Executions;
  copyStateMachineArn: string;
  /** Where copies may go: a refused source or destination is a 400, and nothing starts. */
  policy: TransferPolicy;
  /** Where transfers keep their reports (optional: GET then shows the status only). */
  staging?: StagingStore;
}

const json = (statusCode: number, body: unknown): ApiResult => ({
  statusCode,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

const TRANSFER_ID = /^[A-Za-z0-9_-]{1,80}$/;
const MAX_BODY = 64 * 1024;

/**
 * `POST /transfers` (body: a copy request) → 202 `{id}` after starting the copy state machine (the
 * same id again for the same request, with that transfer's status: a failed transfer is not started
 * again — send a new `requestId` for a new attempt); `GET /transfers/{id}` → the execution's status, its
 * output or error, and the per-blob report from staging. Bad input, or a source or destination the
 * allow-lists refuse → 400 with a message; nothing is started.
 */
export async function handleApi(event: ApiEvent, deps: ApiDeps): Promise<ApiResult> {
  const method = (event.httpMethod ?? event.requestContext?.http?.method ?? "").toUpperCase();
  const path = event.path ?? event.rawPath ?? event.requestContext?.http?.path ?? "";
  const m = /\/transfers(?:\/([^/]*))?\/?$/.exec(path);
  if (!m) return json(404, { error: `no route for ${method} ${path}` });
  const id = event.pathParameters?.id ?? m[1];
  if (id === undefined || id === "") {
    if (method !== "POST") return json(405, { error: `${method} /transfers: use POST` });
    return startTransfer(event, deps);
  }
  if (method !== "GET") return json(405, { error: `${method} /transfers/{id}: use GET` });
  if (!TRANSFER_ID.test(id)) return json(400, { error: "transfer id must be 1-80 of [A-Za-z0-9_-]" });
  return describeTransfer(id, deps);
}

async function startTransfer(event: ApiEvent, deps: ApiDeps): Promise<ApiResult> {
  let text = event.body ?? "";
  if (event.isBase64Encoded) text = Buffer.from(text, "base64").toString("utf8");
  if (text.length > MAX_BODY) return json(413, { error: `request body over ${MAX_BODY} bytes` });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return json(400, {
      error: 'request body must be JSON: {"source": "host/repo:tag", "destination": "host/repo[:tag]"}',
    });
  }
  let request: CopyRequest;
  try {
    request = validate(CopyRequestSchema, body, "transfer request");
    if (parseReference(request.destination, null).digest)
      throw new ValidationError("invalid transfer request: destination must not be pinned by digest");
    checkTransferAllowed(request, deps.policy);
  } catch (e) {
    if (e instanceof ValidationError) return json(400, { error: e.message });
    throw e;
  }
  const id = transferName(request);
  const r = await deps.executions.start({
    stateMachineArn: deps.copyStateMachineArn,
    name: id,
    input: JSON.stringify(request),
  });
  // A repeated request names the transfer already started, whatever became of it: say what, so that a
  // caller whose transfer failed knows to send a new requestId rather than wait.
  const status = r.alreadyExists ? (await deps.executions.describe(r.executionArn))?.status : undefined;
  return json(202, {
    id,
    created: !r.alreadyExists,
    ...(status ? { status } : {}),
    executionArn: r.executionArn,
    links: { self: `/transfers/${id}` },
  });
}

async function describeTransfer(id: string, deps: ApiDeps): Promise<ApiResult> {
  const d = await deps.executions.describe(executionArnFor(deps.copyStateMachineArn, id));
  if (!d) return json(404, { error: `no transfer ${id}` });
  const out: Record<string, unknown> = { id, status: d.status };
  if (d.startDate) out.startDate = d.startDate;
  if (d.stopDate) out.stopDate = d.stopDate;
  if (d.output) out.output = safeJson(d.output);
  if (d.error) out.error = d.error;
  if (d.cause) out.cause = d.cause;
  if (deps.staging) out.report = await transferReport(deps.staging, id);
  return json(200, out);
}

/** The final report when there is one, else the blobs done so far (from the plan and blob records). */
export async function transferReport(
  staging: StagingStore,
  id: string,
): Promise<
  | TransferReport
  | { status: "RUNNING"; blobs: (BlobRecord | { digest: string; size: number; action: "pending" })[] }
  | undefined
> {
  const prefix = transferPrefix(id);
  const final = await getJson<TransferReport>(staging, reportKey(prefix));
  if (final) return final;
  const plan = await getJson<StoredPlan>(staging, planKey(prefix));
  if (!plan) return undefined;
  const blobs = await mapLimit(plan.blobs, 8, async (b) => {
    const rec = await readBlobRecord(staging, prefix, b.digest);
    return rec ?? { digest: b.digest, size: b.size, action: "pending" as const };
  });
  return { status: "RUNNING", blobs };
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

// ---- EventBridge: ECR push → promotion ------------------------------------------------------------

export interface PromotionConfig {
  /** `host[/prefix]`, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/prod`. */
  destination: string;
  /** Regular expressions matched against the whole repository name / tag. Absent: everything. */
  repositoryFilter?: string | undefined;
  tagFilter?: string | undefined;
}

const EcrPushEventSchema = v.object({
  source: v.literal("aws.ecr", "source must be aws.ecr"),
  "detail-type": v.literal("ECR Image Action", 'detail-type must be "ECR Image Action"'),
  account: v.pipe(v.string(), v.regex(/^\d{12}$/, "account must be a 12-digit AWS account id")),
  region: v.pipe(v.string(), v.regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "region must be an AWS region")),
  detail: v.object({
    "action-type": v.string("detail.action-type is required"),
    result: v.string("detail.result is required"),
    "repository-name": v.pipe(v.string("detail.repository-name is required"), v.nonEmpty()),
    "image-digest": v.optional(v.string()),
    "image-tag": v.optional(v.string()),
  }),
});

export interface PromotionResult {
  started: boolean;
  /** The execution name of the attempt found or started. */
  id?: string;
  duplicate?: boolean;
  /** 1 for the first execution of this promotion, 2 for `<id>-r2`, … */
  attempt?: number;
  /** The status of the attempt found, when nothing was started. */
  status?: string;
  ignored?: string;
  source?: string;
  destination?: string;
}

/** Checks a promotion configuration; throws ValidationError naming the bad setting. */
export function checkPromotionConfig(c: PromotionConfig): PromotionConfig {
  try {
    parseRepository(c.destination.includes("/") ? c.destination : `${c.destination}/x`);
  } catch (e) {
    throw new ValidationError(
      `PROMOTION_DESTINATION ${JSON.stringify(c.destination)}: ${(e as Error).message}`,
    );
  }
  for (const [k, re] of [
    ["PROMOTION_REPOSITORY_FILTER", c.repositoryFilter],
    ["PROMOTION_TAG_FILTER", c.tagFilter],
  ]) {
    if (re === undefined) continue;
    try {
      new RegExp(re);
    } catch (e) {
      throw new ValidationError(`${k} is not a valid regular expression: ${(e as Error).message}`);
    }
  }
  return c;
}

/**
 * An `ECR Image Action` event: a successful PUSH of a tag whose repository and tag pass the filters is
 * promoted — the pushed digest copied to the destination under the same repository name and tag, when
 * the allow-lists allow both (else a ValidationError, nothing started). Other events are ignored
 * (`ignored` says why). The execution name derives from the source digest, tag and destination, so a
 * re-delivered event starts nothing while that execution runs or after it succeeded; after it failed,
 * timed out or was aborted, a re-delivery starts the next attempt (startAttempt).
 */
export async function handlePushEvent(
  event: unknown,
  deps: {
    executions: Executions;
    copyStateMachineArn: string;
    promotion: PromotionConfig;
    policy: TransferPolicy;
  },
): Promise<PromotionResult> {
  const e = validate(EcrPushEventSchema, event, "ECR Image Action event");
  const d = e.detail;
  if (d["action-type"] !== "PUSH") return { started: false, ignored: `action-type ${d["action-type"]}` };
  if (d.result !== "SUCCESS") return { started: false, ignored: `result ${d.result}` };
  const tag = d["image-tag"];
  if (!tag) return { started: false, ignored: "pushed without a tag" };
  if (!d["image-digest"])
    throw new ValidationError("invalid ECR Image Action event: detail.image-digest is required");
  const p = deps.promotion;
  const whole = (re: string | undefined, s: string) => re === undefined || new RegExp(`^(?:${re})$`).test(s);
  if (!whole(p.repositoryFilter, d["repository-name"]))
    return {
      started: false,
      ignored: `repository ${d["repository-name"]} does not match PROMOTION_REPOSITORY_FILTER`,
    };
  if (!whole(p.tagFilter, tag))
    return { started: false, ignored: `tag ${tag} does not match PROMOTION_TAG_FILTER` };

  const host = `${e.account}.dkr.ecr.${e.region}.amazonaws.com`;
  const request: CopyRequest = {
    source: `${host}/${d["repository-name"]}:${tag}@${d["image-digest"]}`,
    destination: `${p.destination.replace(/\/+$/, "")}/${d["repository-name"]}:${tag}`,
    tags: [tag],
  };
  // the copy request must itself be valid (repository names, tag grammar, digest), and allowed
  const checked = validate(CopyRequestSchema, request, "promotion");
  checkTransferAllowed(checked, deps.policy);
  const base = `${PROMOTION_NAME_PREFIX}${hash({ s: `${host}/${d["repository-name"]}`, d: d["image-digest"], t: tag, to: checked.destination }).slice(0, 32)}`;
  const r = await startAttempt(deps.executions, deps.copyStateMachineArn, base, JSON.stringify(checked));
  if (!r) {
    throw new PromotionAttemptsExhaustedError(
      `promotion of ${checked.source} to ${checked.destination}: all ${MAX_PROMOTION_ATTEMPTS} attempts ` +
        `(executions ${base} to ${attemptName(base, MAX_PROMOTION_ATTEMPTS)}) failed, timed out or were ` +
        "aborted; see their causes, then start the copy yourself (POST /transfers with a requestId)",
    );
  }
  return {
    started: r.started,
    id: r.name,
    duplicate: !r.started,
    attempt: r.attempt,
    ...(r.status ? { status: r.status } : {}),
    source: checked.source,
    destination: checked.destination,
  };
}

/** Every attempt of one promotion failed, timed out or was aborted: nothing more is started. */
export class PromotionAttemptsExhaustedError extends FerryError {
  constructor(message: string) {
    super("PROMOTION_ATTEMPTS_EXHAUSTED", message);
    this.name = "PromotionAttemptsExhaustedError";
  }
}

/** The execution name of a promotion's `attempt`: the base name, then `<base>-r2`, `<base>-r3`, … */
export function attemptName(base: string, attempt: number): string {
  return attempt === 1 ? base : `${base}-r${attempt}`;
}

/** Execution statuses after which a re-delivered event starts the next attempt. */
const RETRY_AFTER = new Set(["FAILED", "TIMED_OUT", "ABORTED"]);

/**
 * Step Functions keeps an execution name for good (90 days after it ends), so a failed promotion cannot
 * start again under its name. Attempts are tried in order: the first that does not exist is started;
 * one that is running (or pending a redrive) or succeeded means there is nothing to do. Two deliveries
 * racing for the same attempt both name it, and Step Functions starts it once. Undefined after
 * MAX_PROMOTION_ATTEMPTS attempts that all ended badly.
 */
async function startAttempt(
  executions: Executions,
  stateMachineArn: string,
  base: string,
  input: string,
): Promise<{ name: string; attempt: number; started: boolean; status?: string } | undefined> {
  for (let attempt = 1; attempt <= MAX_PROMOTION_ATTEMPTS; attempt++) {
    const name = attemptName(base, attempt);
    const found = await executions.describe(executionArnFor(stateMachineArn, name));
    if (found && RETRY_AFTER.has(found.status)) continue;
    if (found) return { name, attempt, started: false, status: found.status };
    const r = await executions.start({ stateMachineArn, name, input });
    return { name, attempt, started: !r.alreadyExists };
  }
  return undefined;
}

// ---- schedule → bulk migration ------------------------------------------------------------------

const ScheduleEventSchema = strictObject({
  /** Names the migration (execution names start with it). */
  name: v.optional(v.pipe(v.string(), v.regex(MIGRATION_NAME, "name: 1-40 of [A-Za-z0-9_-]"))),
  /** The scheduled time (EventBridge `time`, Scheduler `<aws.scheduler.scheduled-time>`): one run per time. */
  time: v.optional(v.string()),
  config: BulkRequestSchema,
});

/**
 * Starts a bulk migration from the configuration in the event: `{name?, time?, config}` as the schedule's
 * input, or an EventBridge scheduled event carrying it in `detail` (its `time` then makes re-deliveries of
 * one tick idempotent). Without a time, every invocation starts a new migration. A source or destination
 * under which the allow-lists allow nothing is a ValidationError; nothing starts.
 */
export async function handleSchedule(
  event: unknown,
  deps: { executions: Executions; bulkStateMachineArn: string; policy: TransferPolicy },
): Promise<{ id: string; started: boolean; executionArn: string }> {
  const envelope = event as { detail?: unknown; time?: unknown; "detail-type"?: unknown };
  const body =
    envelope && typeof envelope === "object" && envelope["detail-type"] !== undefined && envelope.detail
      ? {
          ...(envelope.detail as object),
          ...(typeof envelope.time === "string" ? { time: envelope.time } : {}),
        }
      : event;
  const s = validate(ScheduleEventSchema, body, "schedule event");
  // The migration's locations, before it starts (Enumerate checks each repository found there).
  checkLocationAllowed(deps.policy, "sources", s.config.source);
  checkLocationAllowed(deps.policy, "destinations", s.config.destination);
  const base = s.name ?? "sync";
  const suffix = s.time
    ? hash({ t: s.time, c: s.config }).slice(0, 24)
    : `${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
  const id = `${base}-${suffix}`;
  const r = await deps.executions.start({
    stateMachineArn: deps.bulkStateMachineArn,
    name: id,
    input: JSON.stringify(s.config),
  });
  return { id, started: !r.alreadyExists, executionArn: r.executionArn };
}
