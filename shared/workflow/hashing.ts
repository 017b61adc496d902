/** Moved to shared/registry/digest.ts (blobHash); this adapter goes when the upload step calls the one upload loop. */
import { type BlobHash, blobHash } from "../registry/digest.ts";

export type StepHash = BlobHash;
export function stepHash(run: {
  from: number;
  to: number;
  size: number;
  state?: string | undefined;
}): StepHash {
  return blobHash("sha256:", run);
}
