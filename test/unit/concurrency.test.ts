/**
 * mapLimit (shared/concurrency.ts), the one bounded map of the code base: at most n at once, results in
 * the items' order, and after a failure nothing new starts and the rejection waits for what was running.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { mapLimit } from "../../shared/concurrency.ts";

/** Settles after a few turns of the event loop: tasks overlap and finish out of order. */
const turns = async (k: number) => {
  for (let i = 0; i < k; i++) await new Promise<void>((r) => setImmediate(r));
};

describe("mapLimit", () => {
  it("runs at most n at once and returns the results in the items' order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat(5), { maxLength: 40 }),
        fc.integer({ min: 1, max: 12 }),
        async (delays, n) => {
          let running = 0;
          let peak = 0;
          const out = await mapLimit(delays, n, async (d, i) => {
            running++;
            peak = Math.max(peak, running);
            await turns(d);
            running--;
            return i * 10 + d;
          });
          expect(out).toEqual(delays.map((d, i) => i * 10 + d));
          expect(peak).toBe(Math.min(n, delays.length));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("after a failure starts nothing new, waits for the running ones, and rejects with the first error", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat(5), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 12 }),
        fc.nat(),
        async (delays, n, pick) => {
          const failAt = pick % delays.length;
          const started: number[] = [];
          const settled: number[] = [];
          const late: number[] = [];
          let firstFailure = -1;
          let failureSeen = false; // a turn of the event loop after the first failure: it must be known by then
          const err = await mapLimit(delays, n, async (d, i) => {
            if (failureSeen) late.push(i);
            started.push(i);
            await turns(d);
            settled.push(i);
            if (i >= failAt) {
              if (firstFailure < 0) {
                firstFailure = i;
                setImmediate(() => {
                  failureSeen = true;
                });
              }
              throw new Error(`item ${i}`);
            }
            return i;
          }).catch((e: unknown) => e);
          expect(late).toEqual([]);
          expect(err).toBeInstanceOf(Error);
          expect((err as Error).message).toBe(`item ${firstFailure}`);
          expect(settled.sort((a, b) => a - b)).toEqual(started.sort((a, b) => a - b));
          // the failing items that started were all running when the first failed: at most n of them
          expect(started.length).toBeLessThanOrEqual(Math.min(delays.length, failAt + n));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("maps an empty list to an empty list and refuses a limit below 1", async () => {
    expect(await mapLimit([], 4, async () => 1)).toEqual([]);
    await expect(mapLimit([1], 0, async (x) => x)).rejects.toThrow("the limit must be at least 1, not 0");
    await expect(mapLimit([1], Number.NaN, async (x) => x)).rejects.toThrow(RangeError);
  });
});
