/**
 * `ferry bench trace synth`: a production-shaped registry trace (IBM format, trace.ts) for when there is
 * none, deterministic for a seed.
 *
 * The shape follows what Anwar et al. found in seven IBM Cloud registries over 75 days (*Improving Docker
 * Registry Design Based on Production Workload Analysis*, FAST '18, §4): requests are dominated by GETs;
 * a few images and layers draw most of them (skewed popularity); a pull is a burst — a manifest GET and,
 * within moments, GETs of the layers the client does not have yet (the correlation their prefetching
 * exploits); layer sizes spread over orders of magnitude while manifests are small; load follows the
 * time of day. The numbers below are ferry's defaults within those findings, each a flag, to be fitted
 * to a registry's own traffic (`ferry bench trace convert` gives its trace); docs/load-testing.md says
 * which figure of the paper each shape comes from.
 *
 * Model: `images` images, each a manifest and 1…2·`layers`−1 layers, a share of them base layers shared
 * between images. Events arrive over `span` with a rate that follows `cycles` day-like cycles of relative
 * amplitude `diurnal`. A pull picks a client (uniformly) and an image by Zipf popularity (rank r drawn with
 * weight 1/r^`zipf`): the manifest GET, then the layers that client has not pulled before, each within a
 * few hundred milliseconds. A push (chosen so that `putShare` of the records are PUTs) uploads a new
 * image's layers and then its manifest. Layer sizes are log-normal (median `layerMedian`, shape
 * `layerSigma`); a manifest is 250 bytes plus 180 per descriptor, as a Docker schema 2 manifest is.
 */
import { createHash } from "node:crypto";
import { FerryError } from "../shared/registry/errors.ts";
import { formatIsoTime, parseIsoTime, type RawTraceRecord } from "./trace.ts";

export interface SynthOptions {
  /** Records to write. */
  requests: number;
  /** The trace's length, seconds. */
  spanSeconds: number;
  clients: number;
  images: number;
  /** Mean layers per image. */
  layers: number;
  /** Zipf exponent of image popularity (0: uniform). */
  zipf: number;
  /** Share of a pulled image's layers that are base layers shared with other images. */
  baseShare: number;
  /** Median layer size, bytes. */
  layerMedian: number;
  /** Log-normal shape (σ of ln size). */
  layerSigma: number;
  /** Share of records that are PUTs. */
  putShare: number;
  /** Relative amplitude of the day-like cycle of the arrival rate (0: a constant rate). */
  diurnal: number;
  /** Day-like cycles over the span. */
  cycles: number;
  seed: string;
  /** The first record's time, ISO 8601. */
  start: string;
}

/** Defaults (docs/load-testing.md: where each comes from). */
export const SYNTH_DEFAULTS: SynthOptions = {
  requests: 1000,
  spanSeconds: 600,
  clients: 40,
  images: 100,
  layers: 5,
  zipf: 1.0,
  baseShare: 0.3,
  layerMedian: 512 * 1024,
  layerSigma: 1.5,
  putShare: 0.05,
  diurnal: 0.5,
  cycles: 1,
  seed: "ferry",
  start: "2026-01-05T00:00:00.000Z",
};

/** The largest layer drawn (log-normal tails are unbounded). */
const MAX_LAYER = 2 * 1024 ** 3;

/** sfc32 seeded from SHA-256 of the seed: small, fast, and the same numbers on every platform. */
export function prng(seed: string): () => number {
  const h = createHash("sha256").update(seed).digest();
  let a = h.readUInt32LE(0);
  let b = h.readUInt32LE(4);
  let c = h.readUInt32LE(8);
  let d = h.readUInt32LE(12);
  return () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (a + b + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/** A sampler of ranks 0…n−1 with weight 1/(rank+1)^s. */
export function zipfSampler(n: number, s: number, rand: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1) ** s;
    cdf[i] = sum;
  }
  return () => {
    const u = rand() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

function normal(rand: () => number): number {
  // Box–Muller; 1 − u keeps the logarithm finite
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

export function validateSynth(o: SynthOptions): void {
  const need = (ok: boolean, what: string) => {
    if (!ok) throw new FerryError("USAGE", `trace synth: ${what}`);
  };
  need(Number.isInteger(o.requests) && o.requests >= 1, "--requests must be a whole number of at least 1");
  need(o.spanSeconds > 0, "--span must be more than zero");
  need(Number.isInteger(o.clients) && o.clients >= 1, "--clients must be at least 1");
  need(Number.isInteger(o.images) && o.images >= 1, "--images must be at least 1");
  need(o.layers >= 1, "--layers must be at least 1");
  need(o.zipf >= 0, "--zipf must not be negative");
  need(o.baseShare >= 0 && o.baseShare <= 1, "--base-share must be between 0 and 1");
  need(o.layerMedian >= 1, "--layer-median must be at least 1 byte");
  need(o.layerSigma >= 0, "--layer-sigma must not be negative");
  need(o.putShare >= 0 && o.putShare < 1, "--put-share must be at least 0 and below 1");
  need(o.diurnal >= 0 && o.diurnal < 1, "--diurnal must be at least 0 and below 1");
  need(o.cycles > 0, "--cycles must be more than zero");
  need(parseIsoTime(o.start) !== undefined, `--start must be an ISO 8601 time (got "${o.start}")`);
}

/**
 * Arrival times over [0, span) whose density follows 1 + A·sin(2π·cycles·t/span − π/2) (a cycle starts at
 * its quietest), drawn by inverting the cumulative intensity on a fine grid.
 */
function arrivalSampler(o: SynthOptions, rand: () => number): () => number {
  const steps = 2000;
  const cum = new Float64Array(steps + 1);
  for (let i = 1; i <= steps; i++) {
    const t = ((i - 0.5) / steps) * o.spanSeconds;
    const rate = 1 + o.diurnal * Math.sin((2 * Math.PI * o.cycles * t) / o.spanSeconds - Math.PI / 2);
    cum[i] = cum[i - 1]! + rate;
  }
  const total = cum[steps]!;
  return () => {
    const u = rand() * total;
    let lo = 0;
    let hi = steps;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    const prev = cum[Math.max(0, lo - 1)]!;
    const within = cum[lo]! > prev ? (u - prev) / (cum[lo]! - prev) : 0;
    return ((Math.max(0, lo - 1) + within) / steps) * o.spanSeconds;
  };
}

interface Layer {
  id: string;
  size: number;
}

/** Generates the trace's records, sorted by time. */
export function synthTrace(o: SynthOptions): RawTraceRecord[] {
  validateSynth(o);
  const rand = prng(o.seed);
  const hex = (s: string) => createHash("sha256").update(`${o.seed}\0${s}`).digest("hex");
  const layerSize = () =>
    Math.max(1, Math.min(MAX_LAYER, Math.round(o.layerMedian * Math.exp(o.layerSigma * normal(rand)))));
  const manifestSize = (layers: number) => 250 + 180 * (layers + 1);
  const repoOf = (i: number) => `v2/u${String(i % 17).padStart(3, "0")}/app${String(i).padStart(4, "0")}`;

  const bases: Layer[] = Array.from({ length: Math.max(3, Math.ceil(o.images / 5)) }, (_, i) => ({
    id: `sha256:${hex(`base:${i}`)}`,
    size: layerSize(),
  }));
  const pickBase = zipfSampler(bases.length, 1, rand);
  const images = Array.from({ length: o.images }, (_, i) => {
    const count = 1 + Math.floor(rand() * (2 * o.layers - 1));
    const layers = Array.from({ length: count }, (_, k) =>
      rand() < o.baseShare
        ? bases[pickBase()]!
        : { id: `sha256:${hex(`layer:${i}:${k}`)}`, size: layerSize() },
    );
    return {
      repo: repoOf(i),
      tag: `v${1 + (i % 7)}`,
      layers: [...new Map(layers.map((l) => [l.id, l])).values()],
    };
  });
  const pickImage = zipfSampler(o.images, o.zipf, rand);
  const arrival = arrivalSampler(o, rand);
  const clients = Array.from({ length: o.clients }, (_, i) => `client-${String(i).padStart(4, "0")}`);
  const has = clients.map(() => new Set<string>());
  const t0 = parseIsoTime(o.start)!;

  const out: { t: number; r: RawTraceRecord }[] = [];
  let puts = 0;
  let pushes = 0;
  const rec = (t: number, method: string, uri: string, size: number, client: string) => {
    if (out.length >= o.requests) return;
    if (method === "PUT") puts++;
    const seconds = 0.002 + size / 200e6; // a plausible service time: 2 ms plus 200 MB/s
    out.push({
      t,
      r: {
        "http.request.method": method,
        "http.request.uri": uri,
        "http.response.written": size,
        "http.request.duration": Number(seconds.toFixed(6)),
        "http.request.remoteaddr": client,
        "http.response.status": method === "PUT" ? 201 : 200,
        timestamp: formatIsoTime(t0 + t * 1000),
      },
    });
  };
  while (out.length < o.requests) {
    const t = arrival();
    const c = Math.floor(rand() * o.clients);
    const client = clients[c]!;
    // pushes are chosen whenever the PUT share falls behind its target: exact to within one image
    if (o.putShare > 0 && puts < o.putShare * out.length) {
      const n = 1 + Math.floor(rand() * (2 * o.layers - 1));
      const repo = `v2/u${String(c % 17).padStart(3, "0")}/build${String(pushes).padStart(5, "0")}`;
      let at = t;
      for (let k = 0; k < n; k++) {
        at += 0.05 + rand() * 0.3;
        rec(at, "PUT", `${repo}/blobs/sha256:${hex(`push:${pushes}:${k}`)}`, layerSize(), client);
      }
      rec(at + 0.02, "PUT", `${repo}/manifests/latest`, manifestSize(n), client);
      pushes++;
      continue;
    }
    const img = images[pickImage()]!;
    rec(t, "GET", `${img.repo}/manifests/${img.tag}`, manifestSize(img.layers.length), client);
    let at = t + 0.01;
    for (const l of img.layers) {
      if (has[c]!.has(l.id)) continue; // the client has this layer already: Docker does not fetch it again
      has[c]!.add(l.id);
      at += rand() * 0.2;
      rec(at, "GET", `${img.repo}/blobs/${l.id}`, l.size, client);
    }
  }
  out.sort((a, b) => a.t - b.t);
  return out.map((x) => x.r);
}
