/**
 * SHA-256 in plain TypeScript with an exportable state.
 *
 * Why this exists: a staged blob is hashed across several Lambda invocations (each moves at most
 * `stepBytes`), so the running hash must travel in the Step Functions state between steps. Node's
 * `crypto.Hash` cannot export its state; this implementation can (`exportState()` → a short string,
 * `Sha256.fromState()` → resumes). It is used only for blobs that take more than one step; a blob moved
 * in one step is hashed with Node's native (OpenSSL) SHA-256. FIPS 180-4.
 */

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

const INITIAL = [
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

const STATE_PREFIX = "sha256-state:v1";

export class Sha256 {
  private readonly h = new Int32Array(INITIAL);
  private readonly block = new Uint8Array(64);
  private blockLen = 0;
  /** Bytes hashed so far (exact up to 2^53). */
  bytes = 0;
  private finished = false;

  update(data: Uint8Array): this {
    if (this.finished) throw new Error("sha256: update after digest");
    let pos = 0;
    const len = data.length;
    this.bytes += len;
    if (this.blockLen > 0) {
      const take = Math.min(64 - this.blockLen, len);
      this.block.set(data.subarray(0, take), this.blockLen);
      this.blockLen += take;
      pos = take;
      if (this.blockLen < 64) return this;
      compressBlocks(this.h, this.block, 0, 64);
      this.blockLen = 0;
    }
    pos = compressBlocks(this.h, data, pos, len);
    if (pos < len) {
      this.block.set(data.subarray(pos), 0);
      this.blockLen = len - pos;
    }
    return this;
  }

  /** The digest as lowercase hex. The hash cannot be updated afterwards. */
  digest(): string {
    if (this.finished) throw new Error("sha256: digest called twice");
    const bits = this.bytes * 8;
    const pad = new Uint8Array(this.blockLen < 56 ? 64 - this.blockLen : 128 - this.blockLen);
    pad[0] = 0x80;
    const view = new DataView(pad.buffer);
    view.setUint32(pad.length - 8, Math.floor(bits / 0x100000000));
    view.setUint32(pad.length - 4, bits >>> 0);
    const n = this.bytes;
    this.update(pad);
    this.bytes = n;
    this.finished = true;
    let hex = "";
    for (let i = 0; i < 8; i++) hex += (this.h[i]! >>> 0).toString(16).padStart(8, "0");
    return hex;
  }

  /** The running state as a short string (≈ 170 characters at most), to resume elsewhere. */
  exportState(): string {
    if (this.finished) throw new Error("sha256: cannot export a finished hash");
    let words = "";
    for (let i = 0; i < 8; i++) words += (this.h[i]! >>> 0).toString(16).padStart(8, "0");
    const pending = Buffer.from(this.block.subarray(0, this.blockLen)).toString("base64");
    return `${STATE_PREFIX}:${words}:${this.bytes}:${pending}`;
  }

  /** Resumes a hash from `exportState()`. Throws on a malformed state. */
  static fromState(state: string): Sha256 {
    const m = /^sha256-state:v1:([0-9a-f]{64}):(\d{1,16}):([A-Za-z0-9+/=]*)$/.exec(state);
    if (!m) throw new TypeError("malformed sha256 state");
    const s = new Sha256();
    for (let i = 0; i < 8; i++) s.h[i] = Number.parseInt(m[1]!.slice(i * 8, i * 8 + 8), 16) | 0;
    s.bytes = Number(m[2]);
    const pending = Buffer.from(m[3]!, "base64");
    if (pending.length >= 64 || pending.length !== s.bytes % 64)
      throw new TypeError("malformed sha256 state");
    s.block.set(pending, 0);
    s.blockLen = pending.length;
    return s;
  }
}

const W = new Int32Array(64);

/**
 * Hashes the whole 64-byte blocks of `data[off, end)` into `h`; returns the offset after the last one.
 * Module-level, locals only, many blocks per call: keeps V8 on int32 arithmetic.
 */
function compressBlocks(h: Int32Array, data: Uint8Array, off: number, end: number): number {
  const w = W;
  let h0 = h[0]!;
  let h1 = h[1]!;
  let h2 = h[2]!;
  let h3 = h[3]!;
  let h4 = h[4]!;
  let h5 = h[5]!;
  let h6 = h[6]!;
  let h7 = h[7]!;
  while (off + 64 <= end) {
    for (let i = 0; i < 16; i++) {
      const j = off + (i << 2);
      w[i] = (data[j]! << 24) | (data[j + 1]! << 16) | (data[j + 2]! << 8) | data[j + 3]!;
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15]!;
      const y = w[i - 2]!;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
    }
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    let f = h5;
    let g = h6;
    let k = h7;
    for (let i = 0; i < 64; i++) {
      const t1 =
        (k +
          (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
          ((e & f) ^ (~e & g)) +
          K[i]! +
          w[i]!) |
        0;
      const t2 =
        ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
          ((a & b) ^ (a & c) ^ (b & c))) |
        0;
      k = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
    h5 = (h5 + f) | 0;
    h6 = (h6 + g) | 0;
    h7 = (h7 + k) | 0;
    off += 64;
  }
  h[0] = h0;
  h[1] = h1;
  h[2] = h2;
  h[3] = h3;
  h[4] = h4;
  h[5] = h5;
  h[6] = h6;
  h[7] = h7;
  return off;
}
