/**
 * The running digest of a blob moved in several steps.
 *
 * The choice (see README, "The serverless workflow"): a staged blob's sha256 is computed by ferry across
 * steps by carrying the hash *state* in the Step Functions state — Node's crypto cannot export it, so
 * multi-step blobs use the pure-TypeScript SHA-256 in sha256.ts (≈ 100 MiB/s here, against ≈ 1.4 GiB/s
 * for OpenSSL). A blob moved entirely in one step (the common case: below `stepBytes`) is hashed natively.
 * Both the stage loop (source bytes) and the upload loop (staged bytes, exactly what is sent) hash, so a
 * corrupted source byte fails the stage before the staged object is completed, and a corrupted staged
 * byte fails the upload before the final `PUT ?digest=`; the destination registry's own digest check at
 * that PUT is a second line, not the only one.
 */
import { createHash, type Hash } from "node:crypto";
import { Sha256 } from "./sha256.ts";

export interface StepHash {
  update(data: Uint8Array): void;
  /** The state to carry to the next step. Throws for a native (one-step) hash. */
  exportState(): string;
  /** A copy at this point (to roll back a chunk that failed). */
  copy(): StepHash;
  /** `sha256:<hex>`; ends the hash. */
  digest(): string;
  readonly resumable: boolean;
}

class NativeHash implements StepHash {
  readonly resumable = false;
  private readonly h: Hash;
  constructor(h?: Hash) {
    this.h = h ?? createHash("sha256");
  }
  update(data: Uint8Array): void {
    this.h.update(data);
  }
  exportState(): string {
    throw new Error("a one-step hash cannot be carried to another step");
  }
  copy(): StepHash {
    return new NativeHash(this.h.copy());
  }
  digest(): string {
    return `sha256:${this.h.digest("hex")}`;
  }
}

class CarriedHash implements StepHash {
  readonly resumable = true;
  private readonly h: Sha256;
  constructor(h: Sha256) {
    this.h = h;
  }
  update(data: Uint8Array): void {
    this.h.update(data);
  }
  exportState(): string {
    return this.h.exportState();
  }
  copy(): StepHash {
    return new CarriedHash(Sha256.fromState(this.h.exportState()));
  }
  digest(): string {
    return `sha256:${this.h.digest()}`;
  }
}

/**
 * The hash for a step covering bytes `[from, to)` of a blob of `size` bytes, resumed from `state` when the
 * step does not start at 0. Native when the step covers the whole blob.
 */
export function stepHash(opts: {
  from: number;
  to: number;
  size: number;
  state?: string | undefined;
}): StepHash {
  if (opts.from === 0 && opts.to >= opts.size) return new NativeHash();
  if (opts.from === 0) return new CarriedHash(new Sha256());
  if (!opts.state) throw new Error(`no hash state to resume at offset ${opts.from}`);
  const h = Sha256.fromState(opts.state);
  if (h.bytes !== opts.from)
    throw new Error(`hash state covers ${h.bytes} bytes but the step resumes at ${opts.from}`);
  return new CarriedHash(h);
}

/** Digests whose running hash ferry can carry between steps. */
export function carriesDigest(digest: string): boolean {
  return digest.startsWith("sha256:");
}
