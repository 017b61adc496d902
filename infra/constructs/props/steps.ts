/**
 * The blob steps' sizing: how long a stage or upload step may run, with how much memory, and the byte
 * budget (STEP_BYTES) and direct-copy threshold (DIRECT_MAX_BYTES) derived from them.
 */
import { Duration } from "aws-cdk-lib";
import { DEFAULT_DIRECT_MAX_BYTES } from "../../../shared/workflow/contract.ts";
import { fail } from "./common.ts";

export interface StepSettings {
  /**
   * Sustained throughput, in MiB/s, that one blob step (stage or upload) is assumed to reach. The byte
   * budget per step, STEP_BYTES, is derived from it so that a step finishes in half its timeout at this
   * throughput (the other half absorbs token refreshes, retries with backoff and slow starts).
   * @default 5 — a slow public registry (40 Mbit/s), far below the 200+ MB/s measured between local
   * registries (platform-notes): STEP_BYTES is then 2,240 MiB, close to the 2 GiB the workflow library
   * assumes by default (shared/workflow/deps.ts). A faster pair of registries only finishes steps sooner.
   */
  readonly stepThroughputMiBps?: number;
  /**
   * Timeout of the stage-blob and upload-blob functions.
   * @default Duration.minutes(15) — Lambda's maximum; the longer a step, the fewer state transitions
   */
  readonly blobStepTimeout?: Duration;
  /**
   * Memory of the stage-blob and upload-blob functions, in MiB (CPU and network scale with it).
   * @default 1769 — one full vCPU, enough for streaming with sha256 at ~1.7 GB/s
   */
  readonly blobStepMemoryMiB?: number;
  /**
   * Blobs up to this size go from source to destination in one step, without staging in S3
   * (DIRECT_MAX_BYTES). Must not exceed STEP_BYTES.
   * @default 32 MiB — the workflow library's default (shared/workflow/deps.ts): a direct copy restarts
   * from zero when it fails, a staged one resumes
   */
  readonly directMaxBytes?: number;
}

export interface ResolvedSteps {
  readonly stepThroughputMiBps: number;
  readonly blobStepTimeout: Duration;
  readonly blobStepMemoryMiB: number;
  /** Byte budget of one stage or upload step (STEP_BYTES). */
  readonly stepBytes: number;
  readonly directMaxBytes: number;
}

/** Lambda's limits (platform-notes, AWS section). */
const LAMBDA_MAX_TIMEOUT_SECONDS = 15 * 60;
const LAMBDA_MIN_MEMORY = 128;
const LAMBDA_MAX_MEMORY = 10_240;
/** A blob step aims to finish in this fraction of its timeout at the stated throughput. */
export const STEP_TIME_FRACTION = 0.5;
/** STEP_BYTES is a multiple of 64 MiB: a whole number of S3 parts and registry chunks of 4, 8, 16, 32 or 64 MiB. */
export const STEP_ALIGNMENT_BYTES = 64 * 1024 * 1024;
const MiB = 1024 * 1024;

export function resolveSteps(props: StepSettings): ResolvedSteps {
  const stepThroughputMiBps = props.stepThroughputMiBps ?? 5;
  if (!Number.isFinite(stepThroughputMiBps) || stepThroughputMiBps <= 0)
    fail(`stepThroughputMiBps must be a positive number, got ${stepThroughputMiBps}`);

  const blobStepTimeout = props.blobStepTimeout ?? Duration.minutes(15);
  const timeoutSeconds = blobStepTimeout.toSeconds();
  if (timeoutSeconds < 60 || timeoutSeconds > LAMBDA_MAX_TIMEOUT_SECONDS) {
    fail(`blobStepTimeout must be between 1 and 15 minutes (Lambda's maximum), got ${timeoutSeconds} s`);
  }

  const blobStepMemoryMiB = props.blobStepMemoryMiB ?? 1769;
  if (
    !Number.isInteger(blobStepMemoryMiB) ||
    blobStepMemoryMiB < LAMBDA_MIN_MEMORY ||
    blobStepMemoryMiB > LAMBDA_MAX_MEMORY
  ) {
    fail(`blobStepMemoryMiB must be an integer from 128 to 10240, got ${blobStepMemoryMiB}`);
  }

  const budget = stepThroughputMiBps * MiB * timeoutSeconds * STEP_TIME_FRACTION;
  const stepBytes = Math.floor(budget / STEP_ALIGNMENT_BYTES) * STEP_ALIGNMENT_BYTES;
  if (stepBytes < STEP_ALIGNMENT_BYTES) {
    fail(
      `stepThroughputMiBps × blobStepTimeout leaves a step budget under 64 MiB ` +
        `(${stepThroughputMiBps} MiB/s × ${timeoutSeconds} s × ${STEP_TIME_FRACTION}): raise one of them`,
    );
  }

  const directMaxBytes = props.directMaxBytes ?? Math.min(DEFAULT_DIRECT_MAX_BYTES, stepBytes);
  if (!Number.isInteger(directMaxBytes) || directMaxBytes < 0) {
    fail(`directMaxBytes must be a non-negative integer, got ${directMaxBytes}`);
  }
  if (directMaxBytes > stepBytes) {
    fail(
      `directMaxBytes (${directMaxBytes}) exceeds the step budget STEP_BYTES (${stepBytes}): ` +
        "a direct copy must fit in one step",
    );
  }
  return { stepThroughputMiBps, blobStepTimeout, blobStepMemoryMiB, stepBytes, directMaxBytes };
}
