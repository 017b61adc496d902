/**
 * What a replay worker measures beyond the common metrics, in a form that merges exactly (as metrics.ts):
 * the lateness of every start (an operation recorder: count = requests started, failed = started late,
 * histogram = lateness in µs, with its per-second series), GETs per object, and the sizes moved.
 */
import * as hdr from "hdr-histogram-js";
import { encodeHistogram, mergeOps, newHistogram, OpRecorder, type SerializedOp } from "./metrics.ts";

/**
 * A request started within this much of its intended start is on time. Node's timers fire a millisecond
 * or so late on an idle machine; 10 ms is well inside any registry request's own latency, and far from
 * a queue forming behind a slow registry or a saturated client.
 */
export const ON_TIME_TOLERANCE_MS = 10;

export interface ReplayWorkerStats {
  /** Starts: count, late (`failed`), lateness histogram (µs) and per-second series. */
  lateness: SerializedOp;
  toleranceMs: number;
  /** [object index in the run, successful GETs]. */
  perObject: [number, number][];
  /** HDR histogram of the bytes of each completed GET and PUT. */
  sizes: string;
  /** Blob pushes completed. */
  puts: number;
}

/** A replay worker's recorder of the above. */
export class ReplayRecorder {
  readonly lateness = new OpRecorder();
  readonly perObject = new Map<number, number>();
  readonly sizes = newHistogram(2);
  puts = 0;

  /** One start: `lateMs` = actual − intended start. */
  started(sec: number, lateMs: number, toleranceMs = ON_TIME_TOLERANCE_MS): void {
    const late = Math.max(0, lateMs);
    this.lateness.record(sec, Math.max(1, Math.round(late * 1000)), late > toleranceMs);
  }

  got(object: number, bytes: number): void {
    this.perObject.set(object, (this.perObject.get(object) ?? 0) + 1);
    if (bytes > 0) this.sizes.recordValue(bytes);
  }

  pushed(bytes: number): void {
    this.puts++;
    if (bytes > 0) this.sizes.recordValue(bytes);
  }

  result(toleranceMs = ON_TIME_TOLERANCE_MS): ReplayWorkerStats {
    return {
      lateness: this.lateness.serialise(),
      toleranceMs,
      perObject: [...this.perObject.entries()].sort((a, b) => a[0] - b[0]),
      sizes: encodeHistogram(this.sizes),
      puts: this.puts,
    };
  }
}

/** Exact merge: starts and lateness add, per-object counts add, size histograms add. */
export function mergeReplayStats(stats: ReplayWorkerStats[]): ReplayWorkerStats | undefined {
  if (stats.length === 0) return undefined;
  const perObject = new Map<number, number>();
  const sizes = newHistogram(2);
  for (const s of stats) {
    for (const [o, n] of s.perObject) perObject.set(o, (perObject.get(o) ?? 0) + n);
    if (s.sizes) sizes.add(hdr.decodeFromCompressedBase64(s.sizes));
  }
  return {
    lateness: mergeOps(stats.map((s) => s.lateness)),
    toleranceMs: stats[0]!.toleranceMs,
    perObject: [...perObject.entries()].sort((a, b) => a[0] - b[0]),
    sizes: encodeHistogram(sizes),
    puts: stats.reduce((a, s) => a + s.puts, 0),
  };
}
