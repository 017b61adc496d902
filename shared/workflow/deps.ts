/**
 * What the steps need from their environment: a staging store, a registry client (with credentials) and
 * the policy of where copies may go.
 */
import type { RegistryClient } from "../registry/client.ts";
import type { StagingStore } from "../staging/types.ts";
import type { DestinationRepositories } from "../transfer/repositories.ts";
import type { TransferPolicy } from "./policy.ts";

export interface StepDefaults {
  /** Bytes a stage or upload step moves at most. Default 2 GiB: well inside a 15-minute Lambda. */
  stepBytes?: number;
  /** Blobs up to this size are copied directly (no staging). Default 32 MiB. */
  directMaxBytes?: number;
  /** Staging part size (default: max(5 MiB, size/10,000) in whole MiB). */
  partBytes?: number;
  /** Destination PATCH size (default: the registry's rules). */
  chunkBytes?: number;
  /** Blobs copied at once per image. Default 4. */
  concurrency?: number;
}

export interface StepDeps {
  staging: StagingStore;
  /** One client for every registry of the transfer (its credential provider knows them all). */
  client: RegistryClient;
  defaults?: StepDefaults;
  /**
   * Where the steps may read from and write to (policy.ts). Required, so that no step runs without one:
   * the Lambda functions build it from ALLOWED_SOURCES / ALLOWED_DESTINATIONS (missing lists allow
   * nothing); the local runner passes ALLOW_ANY.
   */
  policy: TransferPolicy;
  /**
   * Creates missing destination repositories (ECR) before the first blob of an image is copied; Resolve
   * asks once the image is known not to be up to date. Absent: never (the registry must create them).
   */
  repositories?: DestinationRepositories;
}

export const GiB = 1024 * 1024 * 1024;
export { DEFAULT_BLOB_CONCURRENCY, DEFAULT_DIRECT_MAX_BYTES, DEFAULT_STEP_BYTES } from "./contract.ts";
