/** The client a load worker measures with (the closed/open-model runner and the trace replay alike). */
import type { Dispatcher } from "undici";
import { RegistryClient } from "../shared/registry/client.ts";
import type { ClientOptions } from "../shared/registry/options.ts";
import { BENCH_USER_AGENT, type BenchConfig } from "./config.ts";
import type { Metrics } from "./metrics.ts";

/**
 * A client whose every exchange is measured: on the given pool, observed by `metrics` (and the caller's
 * observer), named in the registry's access log (`<agent> run=… <who>`: the run's traffic told from setup
 * and other clients), with the run's retries and no rate-limit budget — a load test measures the registry,
 * and ferry's own budget would pace the load it sends.
 */
export function measuredClient(
  base: ClientOptions,
  dispatcher: Dispatcher,
  metrics: Metrics,
  config: BenchConfig,
  who: string,
  extra: ClientOptions = {},
): RegistryClient {
  return new RegistryClient({
    ...base,
    dispatcher,
    observer: base.observer
      ? (e) => {
          metrics.observe(e);
          base.observer?.(e);
        }
      : metrics.observe,
    userAgent: `${BENCH_USER_AGENT} run=${config.runId} ${who}`,
    retries: config.retries,
    retryBaseMs: 100,
    retryMaxMs: 2_000,
    rateBudget: false,
    ...extra,
  });
}
