/** A progress bar on a terminal (cli-progress, loaded only then), silence elsewhere. */
import { now } from "../shared/clock.ts";
import type { ProgressEvent } from "../shared/transfer/engine.ts";
import { formatBytes } from "../shared/transfer/report.ts";

export interface Progress {
  onEvent(e: ProgressEvent): void;
  stop(): void;
}

export async function createProgress(enabled: boolean): Promise<Progress> {
  if (!enabled || !process.stderr.isTTY) return { onEvent() {}, stop() {} };
  const { default: cliProgress } = await import("cli-progress");
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: " {bar} {percentage}% | {done}/{total_fmt} | blobs {blobsDone}/{blobs} | {rate}/s",
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
      fps: 8,
    },
    cliProgress.Presets.shades_classic,
  );
  let total = 0;
  let value = 0;
  let blobs = 0;
  let blobsDone = 0;
  let started = false;
  const t0 = now();
  const payload = () => ({
    done: formatBytes(value),
    total_fmt: formatBytes(total),
    blobs,
    blobsDone,
    rate: formatBytes(value / Math.max(0.001, (now() - t0) / 1000)),
  });
  return {
    onEvent(e) {
      if (e.type === "plan") {
        total += e.bytes;
        blobs += e.blobs;
        if (!started) {
          bar.start(Math.max(total, 1), value, payload());
          started = true;
        } else bar.setTotal(Math.max(total, 1));
      } else if (e.type === "blob-bytes") {
        value += e.bytes;
        if (started) bar.update(Math.min(value, total), payload());
      } else if (e.type === "blob-done") {
        blobsDone++;
        if (started) bar.update(Math.min(value, total), payload());
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
