import { createHash, randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { blobHash } from "../../../shared/registry/digest.ts";
import { Sha256 } from "../../../shared/registry/sha256.ts";

const D = `sha256:${"0".repeat(64)}`;
const native = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("SHA-256 with an exportable state", () => {
  it("matches Node's crypto on the FIPS vectors and edge lengths", () => {
    expect(new Sha256().digest()).toBe(native(new Uint8Array(0)));
    expect(new Sha256().update(Buffer.from("abc")).digest()).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    for (const n of [1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 65_537]) {
      const b = randomBytes(n);
      expect(new Sha256().update(b).digest(), `${n} bytes`).toBe(native(b));
    }
  });

  it("resumes from an exported state at any split, across any chunking", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.array(fc.nat(3000), { maxLength: 6 }),
        (data, cuts) => {
          const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
          let h = new Sha256();
          let prev = 0;
          for (const p of points) {
            h.update(data.subarray(prev, p));
            h = Sha256.fromState(h.exportState()); // carried to "another step"
            prev = p;
          }
          h.update(data.subarray(prev));
          return h.digest() === native(data);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("refuses malformed or inconsistent states", () => {
    const s = new Sha256().update(randomBytes(100)).exportState();
    expect(() => Sha256.fromState("nope")).toThrow(/malformed/);
    expect(() => Sha256.fromState(s.replace(/:100:/, ":101:"))).toThrow(/malformed/);
  });

  it("a step hash is native for a whole blob, carried otherwise, and checks the resume offset", () => {
    expect(blobHash(D, { from: 0, to: 10, size: 10 }).resumable).toBe(false);
    const h = blobHash(D, { from: 0, to: 5, size: 10 });
    h.update(Buffer.from("hello"));
    const state = h.exportState();
    const next = blobHash(D, { from: 5, to: 10, size: 10, state });
    next.update(Buffer.from("world"));
    expect(next.digest()).toBe(`sha256:${native(Buffer.from("helloworld"))}`);
    expect(() => blobHash(D, { from: 6, to: 10, size: 10, state })).toThrow(/resumes at 6/);
    expect(() => blobHash(D, { from: 5, to: 10, size: 10 })).toThrow(/no hash state/);
  });
});
