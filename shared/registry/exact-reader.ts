/**
 * Reads exact-length pieces from a byte stream without reading ahead more than one buffer:
 * `read(n)` returns exactly n bytes as one Buffer (a staging part); `take(n)` yields exactly n bytes as
 * they arrive (a PATCH body); `skip(n)` consumes n bytes (bytes a registry already holds, fed to the hash).
 * Fewer only when the stream ends, which the caller treats as an error. Used by the chunked upload
 * (shared/registry/uploads.ts) and by the workflow's stage and upload steps.
 */
import type { Readable } from "node:stream";

export class ExactReader {
  readonly source: Readable;
  private readonly it: AsyncIterator<unknown>;
  private pending: Buffer | undefined;
  /** Bytes the last `take` yielded. */
  lastTaken = 0;

  constructor(source: Readable) {
    this.source = source;
    this.it = source[Symbol.asyncIterator]();
  }

  private async next(): Promise<Buffer | undefined> {
    if (this.pending) {
      const p = this.pending;
      this.pending = undefined;
      return p;
    }
    const r = await this.it.next();
    return r.done ? undefined : (r.value as Buffer);
  }

  /** Exactly `n` bytes in one buffer, or fewer if the stream ended. */
  async read(n: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const b = await this.next();
      if (!b) return out.subarray(0, filled);
      const take = Math.min(b.length, n - filled);
      b.copy(out, filled, 0, take);
      filled += take;
      if (take < b.length) this.pending = b.subarray(take);
    }
    return out;
  }

  /** Yields exactly `n` bytes (fewer if the stream ends), calling `onBytes` for each piece. */
  async *take(n: number, onBytes: (b: Buffer) => void): AsyncGenerator<Uint8Array> {
    this.lastTaken = 0;
    while (this.lastTaken < n) {
      let b = await this.next();
      if (!b) return;
      const want = n - this.lastTaken;
      if (b.length > want) {
        this.pending = b.subarray(want);
        b = b.subarray(0, want);
      }
      this.lastTaken += b.length;
      onBytes(b);
      yield b;
    }
  }

  /** Consumes `n` bytes without yielding them, calling `onBytes` for each piece; false if the stream ended. */
  async skip(n: number, onBytes: (b: Buffer) => void): Promise<boolean> {
    let left = n;
    while (left > 0) {
      let b = await this.next();
      if (!b) return false;
      if (b.length > left) {
        this.pending = b.subarray(left);
        b = b.subarray(0, left);
      }
      onBytes(b);
      left -= b.length;
    }
    return true;
  }

  destroy(): void {
    this.source.destroy();
  }
}
