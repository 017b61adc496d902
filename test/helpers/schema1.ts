/**
 * Docker schema 1 signed manifests as registries serve them (libtrust's "pretty JWS"): the payload,
 * indented with three spaces, with a `signatures` array spliced in before its closing `\n}`. Every
 * call signs again (a new time and signature), as distribution does on every GET, so the bytes differ
 * from call to call while the payload — and the digest registries report — stays the same. The
 * signatures are not cryptographically valid: nothing in ferry checks them, only the digest matters.
 */
import { randomBytes } from "node:crypto";
import { sha256 } from "../../shared/registry/digest.ts";

export interface Schema1Image {
  /** The canonical payload (what the digest is computed over). */
  payload: Buffer;
  /** The registry's digest: sha256 of the payload. */
  digest: string;
  /** A freshly signed rendition, different on every call. */
  sign(): Buffer;
}

export function schema1Image(name: string, tag: string, layers: string[]): Schema1Image {
  const manifest = {
    schemaVersion: 1,
    name,
    tag,
    architecture: "amd64",
    fsLayers: layers.map((blobSum) => ({ blobSum })),
    history: layers.map((_, i) => ({ v1Compatibility: JSON.stringify({ id: `layer${i}` }) })),
  };
  const payload = Buffer.from(JSON.stringify(manifest, null, 3));
  const formatLength = payload.length - 2; // up to the closing "\n}"
  const formatTail = payload.subarray(formatLength).toString("base64url");
  let calls = 0;
  return {
    payload,
    digest: sha256(payload),
    sign() {
      calls++;
      const protectedHeader = Buffer.from(
        JSON.stringify({
          formatLength,
          formatTail,
          time: new Date(Date.UTC(2020, 0, 1, 0, 0, calls)).toISOString(),
        }),
      ).toString("base64url");
      const signatures = [
        {
          header: { jwk: { crv: "P-256", kid: "TEST:KEY", kty: "EC", x: "x", y: "y" }, alg: "ES256" },
          signature: randomBytes(64).toString("base64url"),
          protected: protectedHeader,
        },
      ];
      const block = JSON.stringify(signatures, null, 3).replace(/\n/g, "\n   ");
      return Buffer.concat([
        payload.subarray(0, formatLength),
        Buffer.from(`,\n   "signatures": ${block}\n}`),
      ]);
    },
  };
}
