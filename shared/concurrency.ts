/**
 * Bounded concurrency over a list: the one way ferry maps a list of requests with a limit.
 *
 * `mapLimit(items, n, fn)` runs `fn` over `items` with at most `n` at once and returns the results in the
 * items' order. After a failure it starts nothing new, waits for what is already running to settle, and
 * then rejects with the first error: nothing keeps sending requests after the caller has failed, and no
 * rejection goes unobserved. (`Promise.all(items.map((x) => limit(() => fn(x))))` with p-limit rejects
 * at the first failure while the queue goes on running behind the caller's back.)
 *
 * A limit shared across calls — the engine's blob slots, the CLI's image slots — is a gate, not a map:
 * that stays p-limit's.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  n: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  if (!(n >= 1)) throw new RangeError(`mapLimit: the limit must be at least 1, not ${n}`);
  const out = new Array<R>(items.length);
  let next = 0;
  let failed: { err: unknown } | undefined;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length || failed) return;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failed) throw failed.err;
  return out;
}
