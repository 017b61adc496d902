/**
 * `ferry serve`: a small OCI distribution registry on node:http with filesystem storage — a demo
 * and scratch registry, an offline mirror target, and a second server for ferry's client tests.
 *
 * @example
 * const reg = await startRegistry({ root: "/tmp/registry", port: 0 });
 * // push to `${reg.host}/my/repo:tag` ...
 * await reg.close();
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { type Authenticator, loadHtpasswd } from "./auth.ts";
import { Emulation } from "./emulate.ts";
import { type RegistryOptions, resolveOptions } from "./options.ts";
import { createRouter } from "./router.ts";
import { openStorage } from "./storage/index.ts";

/** A running registry. */
export interface RunningRegistry {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT`, the registry part of image references. */
  host: string;
  port: number;
  /**
   * Deletes upload sessions idle for longer than `uploadMaxAgeMs` (by the registry's clock) and
   * frees their slots; resolves when done. It also runs at start and periodically.
   */
  purgeUploads(): Promise<void>;
  /**
   * Stops listening, drops open connections (keep-alive ones too), waits for in-flight requests
   * and stops the bcrypt workers.
   */
  close(): Promise<void>;
}

/** Starts the registry and resolves once it is listening. */
export async function startRegistry(options: RegistryOptions): Promise<RunningRegistry> {
  const opts = resolveOptions(options);
  // The htpasswd file first: when it is unusable, nothing is created under the root.
  const auth: Authenticator | undefined = opts.htpasswd
    ? await loadHtpasswd(opts.htpasswd, {
        attempts: opts.authAttempts,
        windowMs: opts.authWindowMs,
        workers: opts.authWorkers,
        queue: opts.authQueue,
        cacheSize: opts.authCacheSize,
        now: opts.now,
      })
    : undefined;
  const storage = await openStorage(opts.root, { maxSessions: opts.maxUploadSessions, now: opts.now });
  const log = opts.log;
  const report = (line: string) => (log ? log(line) : process.stderr.write(`${line}\n`));
  const onInternalError = (err: unknown, req: IncomingMessage) => {
    report(
      `ferry serve: error on ${req.method} ${req.url}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
  };
  const emulation = new Emulation(opts.emulate, opts.chunkMinLength);
  const handle = createRouter({ storage, ...(auth ? { auth } : {}), emulation, onInternalError });

  const inFlight = new Set<Promise<void>>();
  const server = createServer(
    {
      // Big layers can take longer than Node's default 5-minute request timeout: a request may last
      // as long as it keeps moving; silence is bounded by `timeout` below.
      requestTimeout: 0,
      headersTimeout: opts.headersTimeoutMs,
      // Node checks headersTimeout only this often (default 30 s, which could double it).
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(opts.headersTimeoutMs / 4))),
    },
    (req, res) => {
      const started = process.hrtime.bigint();
      if (log) {
        res.once("close", () => {
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          const length = res.getHeader("Content-Length") ?? "-";
          const status = res.writableFinished
            ? res.statusCode
            : `${res.headersSent ? res.statusCode : "-"}(aborted)`;
          log(
            `${req.socket.remoteAddress ?? "-"} "${req.method} ${req.url}" ${status} ${length} ${ms.toFixed(1)}ms`,
          );
        });
      }
      const p = handle(req, res);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    },
  );
  // A socket with no byte in either direction for this long during a request (a stalled upload
  // body, a client that stopped reading) is destroyed: nothing listens for 'timeout', which is
  // Node's signal to do so. The handler sees the request abort; an upload session keeps what it
  // received (resumable) until the purge. Between requests keepAliveTimeout applies instead.
  server.timeout = opts.idleTimeoutMs;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostPort = `${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${port}`;

  // Purges run one after another; a periodic one is skipped while another waits to start.
  let purges: Promise<void> = Promise.resolve();
  let waiting = 0;
  const purgeUploads = (): Promise<void> => {
    waiting++;
    const run = purges.then(() => {
      waiting--;
      return storage.uploads.purge(opts.uploadMaxAgeMs);
    });
    purges = run.catch(() => {});
    return run;
  };
  const purgeInBackground = () => {
    if (waiting > 0) return;
    purgeUploads().catch((err) => report(`ferry serve: upload purge failed: ${String(err)}`));
  };
  purgeInBackground();
  const timer = setInterval(
    purgeInBackground,
    Math.min(60_000, Math.max(1000, Math.floor(opts.uploadMaxAgeMs / 2))),
  );
  timer.unref();

  let closing: Promise<void> | undefined;
  return {
    url: `http://${hostPort}`,
    host: hostPort,
    port,
    purgeUploads,
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        // First, so that requests waiting for a bcrypt check end now (503) instead of after it.
        await auth?.close();
        await Promise.allSettled([...inFlight]);
        await purges;
        await closed;
      })();
      return closing;
    },
  };
}

export type { Authenticator } from "./auth.ts";
export { EMULATED_REGISTRIES, type EmulatedRegistry } from "./emulate.ts";
export { RegistryError } from "./errors.ts";
export type { RegistryOptions } from "./options.ts";
