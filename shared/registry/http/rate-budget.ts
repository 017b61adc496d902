/**
 * A run-wide budget of a registry's rate limit. Docker Hub (and registries that copy its headers) says on
 * its answers how many pulls are left in the window — `ratelimit-limit: 100;w=21600`,
 * `ratelimit-remaining: 76;w=21600` — and counts a pull per manifest GET (HEADs are free). A migration
 * that ignores this fails into the limit halfway: a wall of 429s, and images half-tried.
 *
 * So every client of a process shares one budget per registry: the first manifest GET to a registry goes
 * alone (its answer says whether there is a limit), then each takes one pull from what the registry last
 * said was left (minus the GETs sent since), and
 *   - with fewer than `slowBelow` pulls left, manifest GETs to that registry go one at a time (no burst
 *     of concurrent images overshoots the limit);
 *   - with `reserve` or fewer left, a manifest GET is not sent: it fails at once with RateBudgetError,
 *     so the run stops cleanly — every image not yet started fails the same way, and lands in the
 *     failure list (`--failures`) to be run again after the window.
 * A 429 whose answer says nothing is left is the same error, not retried into the limit. The budget is
 * reported (`summary()`).
 */
import { FerryError } from "../../errors.ts";

/** The rate limit is (nearly) used up: the request was not sent. Not retryable within the run. */
export class RateBudgetError extends FerryError {
  readonly registry: string;
  constructor(registry: string, message: string) {
    super("RATE_LIMIT_BUDGET", message);
    this.name = "RateBudgetError";
    this.registry = registry;
  }
}

export interface RateBudgetOptions {
  /** Pulls to leave untouched (for other users of the same account or address). Default 0. */
  reserve?: number;
  /** Below this many pulls left, manifest GETs go one at a time. Default 10. */
  slowBelow?: number;
}

interface Window {
  limit?: number;
  /** What the registry last said was left, minus the counted requests sent since. */
  remaining: number;
  /** The first `remaining` seen, for the report. */
  first: number;
  windowSeconds?: number;
  /** Counted requests sent. */
  used: number;
  /** A promise chain serialising counted requests once the budget runs low. */
  queue: Promise<void>;
}

export interface RateBudgetSummary {
  registry: string;
  limit?: number;
  windowSeconds?: number;
  remainingAtStart: number;
  remaining: number;
  used: number;
}

/** `100;w=21600` → { value: 100, window: 21600 }. */
export function parseRateHeader(
  v: string | string[] | undefined,
): { value: number; window?: number } | undefined {
  const text = Array.isArray(v) ? v[0] : v;
  const m = /^\s*(\d+)\s*(?:;\s*w\s*=\s*(\d+))?/.exec(text ?? "");
  if (!m) return undefined;
  return { value: Number(m[1]), ...(m[2] ? { window: Number(m[2]) } : {}) };
}

export class RateBudget {
  private readonly reserve: number;
  private readonly slowBelow: number;
  private readonly windows = new Map<string, Window>();
  /** Registries whose first answer carried no rate-limit headers. */
  private readonly unlimited = new Set<string>();
  /** The first counted request to a registry, while its answer is awaited. */
  private readonly probes = new Map<string, Promise<void>>();

  constructor(opts: RateBudgetOptions = {}) {
    this.reserve = Math.max(0, opts.reserve ?? 0);
    this.slowBelow = Math.max(this.reserve + 1, opts.slowBelow ?? 10);
  }

  /**
   * Before a counted request (a manifest GET) to `registry`: resolves when it may go, throws
   * RateBudgetError when the budget is spent. The returned function must be called when its answer came.
   */
  async take(registry: string, what: string): Promise<() => void> {
    let w = this.windows.get(registry);
    if (!w && !this.unlimited.has(registry)) {
      // Nothing known yet: the first counted request goes alone, and its answer tells whether (and how
      // much of) a limit there is — a burst of concurrent images must not overshoot before anyone knows.
      const probe = this.probes.get(registry);
      if (!probe) {
        let answered!: () => void;
        this.probes.set(
          registry,
          new Promise<void>((r) => {
            answered = r;
          }),
        );
        return () => {
          const known = this.windows.get(registry);
          if (!known)
            this.unlimited.add(registry); // no rate-limit headers: no limit
          else {
            // the probe was the window's first pull, taken before it was known
            known.used++;
            known.first++;
          }
          answered();
        };
      }
      await probe;
      w = this.windows.get(registry);
    }
    if (!w) return () => {};
    const go = () => {
      if (w.remaining <= this.reserve) {
        throw new RateBudgetError(
          registry,
          `${what}: not sent — ${registry}'s rate limit has ${w.remaining} pull(s) left` +
            `${w.limit !== undefined ? ` of ${w.limit}` : ""}${w.windowSeconds ? ` per ${formatWindow(w.windowSeconds)}` : ""}` +
            `${this.reserve ? `, the reserve being ${this.reserve}` : ""}: the run stops here; run the images not copied again once the window has moved on (--failures)`,
        );
      }
      w.remaining--;
      w.used++;
    };
    if (w.remaining >= this.slowBelow) {
      go();
      return () => {};
    }
    // Low: one counted request at a time, each deciding once the one before it was answered.
    let release!: () => void;
    const turn = w.queue;
    w.queue = new Promise<void>((r) => {
      release = r;
    });
    await turn;
    try {
      go();
    } catch (e) {
      release();
      throw e;
    }
    return release;
  }

  /** Learns from an answer's headers (any request: every answer tells what is left). */
  observe(registry: string, headers: Record<string, string | string[] | undefined>): void {
    const remaining = parseRateHeader(headers["ratelimit-remaining"]);
    if (!remaining) return;
    const limit = parseRateHeader(headers["ratelimit-limit"]);
    const w = this.windows.get(registry);
    const windowSeconds = remaining.window ?? limit?.window;
    if (!w) {
      this.windows.set(registry, {
        remaining: remaining.value,
        first: remaining.value,
        used: 0,
        queue: Promise.resolve(),
        ...(limit ? { limit: limit.value } : {}),
        ...(windowSeconds ? { windowSeconds } : {}),
      });
      return;
    }
    // The registry's count wins, but never more than we know we have taken since (answers race).
    w.remaining = Math.min(w.remaining, remaining.value);
    if (limit) w.limit = limit.value;
  }

  /** Whether a 429 means the budget is gone (rather than a burst worth waiting out). */
  exhausted(registry: string, headers: Record<string, string | string[] | undefined>): boolean {
    this.observe(registry, headers);
    const w = this.windows.get(registry);
    return w !== undefined && w.remaining <= this.reserve;
  }

  summary(): RateBudgetSummary[] {
    return [...this.windows].map(([registry, w]) => ({
      registry,
      ...(w.limit !== undefined ? { limit: w.limit } : {}),
      ...(w.windowSeconds ? { windowSeconds: w.windowSeconds } : {}),
      remainingAtStart: w.first,
      remaining: w.remaining,
      used: w.used,
    }));
  }
}

function formatWindow(seconds: number): string {
  return seconds % 3600 === 0
    ? `${seconds / 3600} h`
    : seconds % 60 === 0
      ? `${seconds / 60} min`
      : `${seconds} s`;
}
