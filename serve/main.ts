/** Entry point of `ferry serve`: runs the registry in the foreground until SIGINT/SIGTERM. */
import { type RegistryOptions, type RunningRegistry, startRegistry } from "./index.ts";

/** Options of {@link serveMain}: those of the registry, with `log` also accepting `true` (log to stderr). */
export interface ServeMainOptions extends Omit<RegistryOptions, "log"> {
  /** `true` logs one line per request to stderr; a function receives the lines. */
  log?: boolean | ((line: string) => void);
  /** Where the "listening" and "stopped" lines go. Default stdout. */
  out?: (line: string) => void;
  /** Stops the registry when aborted (in addition to SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** Called once the registry listens (e.g. to start a demo against it). */
  onListening?: (registry: RunningRegistry) => void;
}

/**
 * Starts the registry, prints `ferry serve listening on http://HOST:PORT`, and resolves after a
 * clean shutdown on SIGINT, SIGTERM or `signal`.
 */
export async function serveMain(opts: ServeMainOptions): Promise<void> {
  const out = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const { log, out: _out, signal, onListening, ...rest } = opts;
  const registryOpts: RegistryOptions = { ...rest };
  if (log === true) registryOpts.log = (line) => process.stderr.write(`${line}\n`);
  else if (typeof log === "function") registryOpts.log = log;

  const registry = await startRegistry(registryOpts);
  const rules = [
    ...(opts.emulate ? [`emulating ${opts.emulate} upload rules`] : []),
    ...(opts.chunkMinLength ? [`OCI-Chunk-Min-Length ${opts.chunkMinLength}`] : []),
  ];
  out(`ferry serve listening on ${registry.url}${rules.length ? ` (${rules.join(", ")})` : ""}`);
  onListening?.(registry);

  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      signal?.removeEventListener("abort", stop);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    if (signal?.aborted) stop();
    else signal?.addEventListener("abort", stop);
  });
  await registry.close();
  out("ferry serve stopped");
}
