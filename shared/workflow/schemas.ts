/**
 * Schemas (valibot) for everything that enters the workflow: API bodies, trigger events, execution
 * inputs, and each step's event. Steps validate their input first, so a malformed event fails with a
 * ValidationError that says which field is wrong — locally and on Lambda alike.
 */
import * as v from "valibot";
import { isDigest } from "../registry/digest.ts";
import { parsePlatform } from "../registry/manifest.ts";
import { parseReference, parseRepository } from "../registry/reference.ts";
import { ValidationError } from "./errors.ts";

const TAG = /^[\w][\w.-]{0,127}$/;

/**
 * An object a person writes (an API body, a sync config, a schedule's input, their options): unknown
 * keys are refused and named, with the keys there are — a misspelt `exclude` must not silently copy
 * everything (the CDK app's settings are checked alike, infra/config.ts). Objects that ferry's own steps
 * write for each other (job, blob, stage and upload states) stay `v.object`: a step of a newer version
 * may meet a key an execution started by an older one carried.
 */
export function strictObject<const E extends v.ObjectEntries>(entries: E) {
  const known = Object.keys(entries).join(", ");
  return v.strictObject(entries, (issue) =>
    issue.expected === "never"
      ? `unknown key (known: ${known})`
      : issue.received === "undefined"
        ? "is required"
        : `expected an object, got ${issue.received}`,
  );
}

const reference = (what: string) =>
  v.pipe(
    v.string(`${what} must be a string`),
    v.nonEmpty(`${what} must not be empty`),
    v.maxLength(512, `${what} is too long`),
    v.check((s) => tryOk(() => parseReference(s, null)), `${what} is not a valid image reference`),
  );

const repository = (what: string) =>
  v.pipe(
    v.string(`${what} must be a string`),
    v.check((s) => tryOk(() => parseRepository(s)), `${what} is not a valid host/repository`),
  );

const bytes = (what: string, min = 1) =>
  v.pipe(
    v.number(`${what} must be a number of bytes`),
    v.safeInteger(`${what} must be a whole number`),
    v.minValue(min, `${what} must be at least ${min}`),
  );

export const CopyOptionsSchema = strictObject({
  /** Bytes one stage or upload step moves at most. */
  stepBytes: v.optional(bytes("options.stepBytes", 1024)),
  /** Staging multipart part size (default: max(5 MiB, size/10,000)). */
  partBytes: v.optional(bytes("options.partBytes", 1024)),
  /** Destination PATCH size (default: the registry's rules, at most stepBytes). */
  chunkBytes: v.optional(bytes("options.chunkBytes", 1024)),
  /** Blobs up to this size are copied source → destination in one step, without staging. */
  directMaxBytes: v.optional(bytes("options.directMaxBytes", 0)),
  /** Blobs copied at once (the Map's MaxConcurrency). */
  concurrency: v.optional(
    v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(40, "options.concurrency is at most 40")),
  ),
});
export type CopyOptions = v.InferOutput<typeof CopyOptionsSchema>;

/** The copy workflow's execution input (and the body of `POST /transfers`). */
export const CopyRequestSchema = strictObject({
  source: v.pipe(
    reference("source"),
    v.check((s) => {
      try {
        const r = parseReference(s, null);
        return Boolean(r.tag || r.digest);
      } catch {
        return true; // not a reference at all: reported by the check before
      }
    }, "source needs a tag or a digest"),
  ),
  destination: reference("destination"),
  /** Destination tags. Default: the destination's tag, else the source's (none when pinned by digest). */
  tags: v.optional(
    v.pipe(
      v.array(v.pipe(v.string(), v.regex(TAG, "tags must be valid tags"))),
      v.maxLength(50, "at most 50 tags"),
    ),
  ),
  /** Copy only these platforms (os/arch[/variant]) of an index; the index is rewritten. */
  platforms: v.optional(
    v.pipe(
      v.array(
        v.pipe(
          v.string(),
          v.check((p) => tryOk(() => parsePlatform(p)), "platforms must look like os/arch[/variant]"),
        ),
      ),
      v.maxLength(32),
    ),
  ),
  options: v.optional(CopyOptionsSchema),
  /** Makes an otherwise identical request a new transfer (the API derives execution names from requests). */
  requestId: v.optional(
    v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,64}$/, "requestId: 1-64 of [A-Za-z0-9_.-]")),
  ),
});
export type CopyRequest = v.InferOutput<typeof CopyRequestSchema>;

const executionName = v.pipe(v.string(), v.nonEmpty("executionName must not be empty"), v.maxLength(256));

export const ResolveEventSchema = strictObject({ request: CopyRequestSchema, executionName });

/** What every step of one transfer needs to know; built by Resolve, passed along by the definition. */
export const JobSchema = v.object({
  id: v.string(),
  prefix: v.pipe(v.string(), v.regex(/^transfers\/[^/]+\/$/, "job.prefix must be transfers/<id>/")),
  /** `host/repository` of the source (blobs are read from it). */
  source: repository("job.source"),
  /** `host/repository` of the destination. */
  destination: repository("job.destination"),
  /** The image as the user named it, for messages: `src → dst`. */
  image: v.string(),
  stepBytes: bytes("job.stepBytes", 1024),
  partBytes: v.optional(bytes("job.partBytes", 1024)),
  chunkBytes: v.optional(bytes("job.chunkBytes", 1024)),
  directMaxBytes: bytes("job.directMaxBytes", 0),
  concurrency: v.pipe(v.number(), v.integer(), v.minValue(1)),
});
export type Job = v.InferOutput<typeof JobSchema>;

export const BlobModeSchema = v.picklist(["direct", "mount", "staged"]);
export type BlobMode = v.InferOutput<typeof BlobModeSchema>;

export const BlobItemSchema = v.object({
  digest: v.pipe(v.string(), v.check(isDigest, "blob.digest is not a digest")),
  size: v.pipe(v.number(), v.safeInteger(), v.minValue(-1)),
  mediaType: v.string(),
  mode: BlobModeSchema,
});
export type BlobItem = v.InferOutput<typeof BlobItemSchema>;

const offset = v.pipe(v.number(), v.safeInteger(), v.minValue(0));

/** The stage loop's state, carried from step to step. */
export const StageStateSchema = v.object({
  offset,
  done: v.boolean(),
  /** The staged object's key. */
  key: v.optional(v.string()),
  uploadId: v.optional(v.string()),
  /** Running sha256 state of the bytes staged so far (sha256.ts). */
  hash: v.optional(v.string()),
  partBytes: v.optional(v.number()),
  /** Parts uploaded so far. */
  parts: v.optional(v.number()),
  /** Reads from the start after bytes that did not match their digest (at most one). */
  rereads: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1))),
});
export type StageState = v.InferOutput<typeof StageStateSchema>;

/** The upload loop's state (also the result of the direct and mount steps). */
export const UploadStateSchema = v.object({
  offset,
  done: v.boolean(),
  /**
   * Names the open upload session (an opaque id). The session's Location stays in staging
   * (`open/<digest>.json`, records.ts), never in the state: execution history and logs show every state,
   * and a Location's query (`_state`, signatures) lets whoever holds it write into the session.
   */
  session: v.optional(v.pipe(v.string(), v.regex(/^[0-9a-f]{8,32}$/, "upload.session is not a session id"))),
  /** Running sha256 state of the bytes sent so far. */
  hash: v.optional(v.string()),
  minChunk: v.optional(v.number()),
  /** What happened, once done: copied, mounted or skipped. */
  action: v.optional(v.picklist(["copied", "mounted", "skipped"])),
  bytesSent: v.optional(v.number()),
  /** Upload sessions restarted from zero (the registry lost one). */
  restarts: v.optional(v.number()),
});
export type UploadState = v.InferOutput<typeof UploadStateSchema>;

export const StageEventSchema = v.object({ job: JobSchema, blob: BlobItemSchema, stage: StageStateSchema });
export type StageEvent = v.InferOutput<typeof StageEventSchema>;

export const UploadEventSchema = v.variant("action", [
  v.object({ action: v.literal("direct"), job: JobSchema, blob: BlobItemSchema }),
  v.object({ action: v.literal("mount"), job: JobSchema, blob: BlobItemSchema }),
  v.object({
    action: v.literal("upload"),
    job: JobSchema,
    blob: BlobItemSchema,
    stage: StageStateSchema,
    upload: UploadStateSchema,
  }),
]);
export type UploadEvent = v.InferOutput<typeof UploadEventSchema>;

export const PutManifestsEventSchema = v.object({ job: JobSchema });

/** `{Error, Cause}` as Step Functions' Catch records it. */
export const CaughtErrorSchema = v.object({
  Error: v.optional(v.string(), "States.Unknown"),
  Cause: v.optional(v.unknown()),
});
export type CaughtError = v.InferOutput<typeof CaughtErrorSchema>;

export const TransferSummarySchema = v.looseObject({});

export const CleanupEventSchema = v.variant("action", [
  v.object({ action: v.literal("success"), job: JobSchema, summary: v.optional(v.unknown()) }),
  v.object({
    action: v.literal("abort-blob"),
    job: JobSchema,
    blob: BlobItemSchema,
    stage: v.optional(StageStateSchema),
    upload: v.optional(UploadStateSchema),
    error: CaughtErrorSchema,
  }),
  v.object({
    action: v.literal("failed"),
    /** The whole state at the failure: the request (Resolve failed) or the Resolve output, plus `error`. */
    state: v.looseObject({ job: v.optional(JobSchema), error: v.optional(CaughtErrorSchema) }),
  }),
]);
export type CleanupEvent = v.InferOutput<typeof CleanupEventSchema>;

// ---- bulk migration -------------------------------------------------------------------------

const regexList = (what: string) =>
  v.optional(
    v.pipe(
      v.array(
        v.pipe(
          v.string(),
          v.check(
            (s) => tryOk(() => new RegExp(s)),
            `${what}: every entry must be a valid regular expression`,
          ),
        ),
      ),
      v.maxLength(100),
    ),
  );

/**
 * A bulk migration: every repository under `source` (a registry, optionally with a path prefix) whose
 * name (relative to the prefix) matches `include` and none of `exclude`, every tag passing the tag
 * filters, copied to the same name under `destination`.
 */
export const BulkRequestSchema = strictObject({
  source: v.pipe(
    v.string("source must be host[/prefix]"),
    v.check(
      (s) => tryOk(() => parseRepository(s.includes("/") ? s : `${s}/x`)),
      "source must be host[/prefix]",
    ),
  ),
  destination: v.pipe(
    v.string("destination must be host[/prefix]"),
    v.check(
      (s) => tryOk(() => parseRepository(s.includes("/") ? s : `${s}/x`)),
      "destination must be host[/prefix]",
    ),
  ),
  /** Explicit repositories (relative to the source prefix); default: the registry's catalog. */
  repositories: v.optional(v.pipe(v.array(v.string()), v.maxLength(10_000))),
  /** Repository filters (regular expressions, matched against the whole relative name). */
  include: regexList("include"),
  exclude: regexList("exclude"),
  tags: v.optional(
    strictObject({
      include: regexList("tags.include"),
      exclude: regexList("tags.exclude"),
      /** A semver range (`>=1.2 <2`, `^1.4`, `~2.0.1`, `1.x`, `a || b`); non-semver tags are dropped. */
      semver: v.optional(v.pipe(v.string(), v.maxLength(200))),
      /** Keep the N highest semantic versions per repository (after the other filters). */
      latest: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
      /** Tags never overwritten: skipped when the destination already has them. */
      immutable: regexList("tags.immutable"),
    }),
  ),
  options: v.optional(CopyOptionsSchema),
  /** Images copied at once (the Distributed Map's MaxConcurrency). Default 10. */
  concurrency: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1000))),
  /** Percentage of images allowed to fail before the migration fails. Default 0. */
  toleratedFailurePercentage: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(100))),
});
export type BulkRequest = v.InferOutput<typeof BulkRequestSchema>;

export const EnumerateEventSchema = strictObject({ request: BulkRequestSchema, executionName });

export const BulkJobSchema = v.object({
  id: v.string(),
  prefix: v.pipe(v.string(), v.regex(/^bulk\/[^/]+\/$/, "job.prefix must be bulk/<id>/")),
  source: v.string(),
  destination: v.string(),
});
export type BulkJob = v.InferOutput<typeof BulkJobSchema>;

export const SummarizeEventSchema = v.object({
  state: v.looseObject({
    job: BulkJobSchema,
    results: v.optional(
      v.looseObject({
        ResultWriterDetails: v.optional(v.object({ Bucket: v.optional(v.string()), Key: v.string() })),
      }),
    ),
    error: v.optional(CaughtErrorSchema),
  }),
});

// ---- helpers --------------------------------------------------------------------------------

function tryOk(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}

/** Parses `input` or throws a ValidationError naming the first problems (field path and message). */
export function validate<S extends v.GenericSchema>(
  schema: S,
  input: unknown,
  what: string,
): v.InferOutput<S> {
  const r = v.safeParse(schema, input);
  if (r.success) return r.output;
  const problems = r.issues.slice(0, 5).map((i) => {
    const path = v.getDotPath(i);
    return path ? `${path}: ${i.message}` : i.message;
  });
  throw new ValidationError(`invalid ${what}: ${problems.join("; ")}`);
}
