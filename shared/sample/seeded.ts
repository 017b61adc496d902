/**
 * Seeded content for samples, benchmarks and load tests: any number of bytes generated on the fly from
 * a seed (AES-CTR keystream), seekable, so a 1 GiB layer is never held in memory or written to disk and
 * an upload can be re-read from any offset.
 */
import { createCipheriv, createHash } from "node:crypto";
import { Readable } from "node:stream";

const BLOCK = 64 * 1024;

/**
 * A seekable stream of `size` bytes determined by `seed`: in every 64 KiB block, the first
 * `compressibility` share is zeros and the rest pseudo-random (incompressible); 0 (the default) makes
 * every byte pseudo-random. Any `offset` can start a stream: AES-CTR's keystream block n depends only
 * on n.
 */
export function seededStream(seed: string, size: number, offset = 0, compressibility = 0): Readable {
  const key = createHash("sha256").update(seed).digest().subarray(0, 16);
  const zerosPerBlock = Math.round(BLOCK * compressibility);
  let pos = offset;
  // Keystream position = block index × random bytes per block + offset within the random part.
  const randomPerBlock = BLOCK - zerosPerBlock;
  const zeros = Buffer.alloc(BLOCK);
  const cipherAt = (blockIndex: number, within: number) => {
    const ksOffset = blockIndex * randomPerBlock + within;
    const iv = Buffer.alloc(16);
    iv.writeBigUInt64BE(BigInt(Math.floor(ksOffset / 16)), 8);
    const c = createCipheriv("aes-128-ctr", key, iv);
    const skip = ksOffset % 16;
    if (skip) c.update(zeros.subarray(0, skip));
    return c;
  };
  let cipher: ReturnType<typeof cipherAt> | undefined;
  return new Readable({
    highWaterMark: BLOCK,
    read() {
      if (pos >= size) {
        this.push(null);
        return;
      }
      const block = Math.floor(pos / BLOCK);
      const within = pos - block * BLOCK;
      const blockEnd = Math.min(size, (block + 1) * BLOCK);
      if (within < zerosPerBlock) {
        const n = Math.min(zerosPerBlock - within, blockEnd - pos);
        pos += n;
        this.push(zeros.subarray(0, n));
        return;
      }
      cipher ??= cipherAt(block, within - zerosPerBlock);
      const n = blockEnd - pos;
      const out = cipher.update(zeros.subarray(0, n));
      pos += n;
      // the next block's random part continues the keystream exactly where this one stopped
      if (pos % BLOCK !== 0) cipher = undefined;
      this.push(out);
    },
  });
}
