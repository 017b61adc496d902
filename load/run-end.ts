/** How a load run ends, the same for scenarios (runner.ts) and trace replays (replay.ts). */
import { setTimeout as sleep } from "node:timers/promises";
import type { ClientLoad } from "./client-load.ts";
import type { Metrics } from "./metrics.ts";

/**
 * Waits for the load to finish by itself (`done`), or until `graceEnd` (by `now`, checked every 250 ms
 * at most); then what is still in flight is aborted — counted as such, not as a failure (`abort` marks
 * it) — the measurement ends, and the client's own load is taken. Once the connections are destroyed
 * (`destroy`), every in-flight iteration fails fast, and this waits for them. The caller closes its
 * clients after.
 */
export async function endRun(run: {
  done: Promise<unknown>;
  graceEnd: number;
  now: () => number;
  abort: () => void;
  metrics: Metrics;
  clientLoad: { stop(): ClientLoad };
  destroy: () => Promise<unknown>;
}): Promise<ClientLoad> {
  let finished = false;
  void run.done.then(() => {
    finished = true;
  });
  while (!finished) {
    const left = run.graceEnd - run.now();
    if (left <= 0) break;
    await Promise.race([run.done, sleep(Math.min(left, 250))]);
  }
  if (!finished) run.abort();
  run.metrics.end();
  const client = run.clientLoad.stop();
  run.metrics.closed = true;
  if (!finished) {
    await run.destroy();
    await run.done.catch(() => {});
  }
  return client;
}
