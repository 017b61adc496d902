/**
 * Per-client budgets: which client a request comes from, and a leaky bucket of attempts per client.
 */
import { isIPv6 } from "node:net";

/**
 * The key a client is counted under: its IPv4 address (also when it arrives IPv4-mapped on a
 * dual-stack socket), or the /64 prefix of its IPv6 address — one host usually holds a whole /64,
 * so counting single IPv6 addresses would give it 2^64 budgets.
 */
export function clientKey(address: string | undefined): string {
  if (address === undefined) return "-";
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const bare = address.replace(/%.*$/, "");
  const [head = "", tail] = bare.split("::");
  const groups = (part: string | undefined) => (part ? part.split(":") : []);
  // A dotted IPv4 tail holds the last two groups: it never reaches the first four.
  const width = (parts: string[]) => parts.reduce((n, g) => n + (g.includes(".") ? 2 : 1), 0);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - width(h) - width(t)).fill("0"), ...t];
  return `${all
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(":")}::/64`;
}

/**
 * A leaky bucket per key: each attempt adds one, the level drains evenly (`limit` per `windowMs`),
 * and an attempt that would lift the level above `limit` is refused. At most `maxKeys` keys are
 * tracked; beyond that the least recently charged is forgotten (its budget starts afresh: a client
 * with that many addresses is bounded by the global queue instead).
 */
export class AttemptLimiter {
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly maxKeys: number;
  private readonly buckets = new Map<string, { level: number; at: number }>();

  constructor(limit: number, windowMs: number, now: () => number, maxKeys = 10_000) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.now = now;
    this.maxKeys = maxKeys;
  }

  private level(key: string, now: number): number {
    const b = this.buckets.get(key);
    if (!b) return 0;
    return Math.max(0, b.level - ((now - b.at) * this.limit) / this.windowMs);
  }

  /** Takes one attempt from `key`'s budget: returns 0 when granted, else the ms until one is free. */
  take(key: string): number {
    const now = this.now();
    const level = this.level(key, now);
    if (level + 1 > this.limit) return Math.ceil(((level + 1 - this.limit) * this.windowMs) / this.limit);
    this.set(key, level + 1, now);
    return 0;
  }

  /** Gives one attempt back (it turned out to be legitimate). */
  refund(key: string): void {
    const now = this.now();
    const level = this.level(key, now) - 1;
    if (level > 0) this.set(key, level, now);
    else this.buckets.delete(key);
  }

  private set(key: string, level: number, at: number): void {
    // Re-inserted so that Map order is least recently charged first.
    this.buckets.delete(key);
    if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    this.buckets.set(key, { level, at });
  }
}
