import { setTimeout as sleep } from "node:timers/promises";

/**
 * Waits for a condition that another process makes true (a line in a log file, a socket closed on a
 * server): checks it again every few milliseconds and returns its value once it is truthy. The
 * deadline only turns a hang into a failure naming `what`; a test never asserts how long it took.
 */
export async function until<T>(
  check: () => T | Promise<T>,
  what: string,
  guardMs = 30_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + guardMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`gave up after ${guardMs / 1000} s waiting for ${what}`);
    await sleep(10);
  }
}
