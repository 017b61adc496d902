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
import { createRouter } from "./router.ts";
import { openStorage } from "./storage/index.ts";

/** Options of {@link startRegistry}. */
export interface RegistryOptions {
  /** Storage directory; created when missing. */
  root: string;
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Path of an htpasswd file with bcrypt hashes; when set, every `/v2/` request needs Basic auth. */
  htpasswd?: string;
  /** Receives one line per request (and internal errors). Off by default. */
  log?: (line: string) => void;
  /** Incomplete upload sessions idle for longer are deleted. Default one hour. */
  uploadMaxAgeMs?: number;
}

/** A running registry. */
export interface RunningRegistry {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT`, the registry part of image references. */
  host: string;
  port: number;
  /** Stops listening, drops open connections (keep-alive ones too) and waits for in-flight requests. */
  close(): Promise<void>;
}

const DEFAULT_UPLOAD_MAX_AGE_MS = 60 * 60 * 1000;

/** Starts the registry and resolves once it is listening. */
export async function startRegistry(opts: RegistryOptions): Promise<RunningRegistry> {
  const storage = await openStorage(opts.root);
  const auth: Authenticator | undefined = opts.htpasswd ? await loadHtpasswd(opts.htpasswd) : undefined;
  const log = opts.log;
  const onInternalError = (err: unknown, req: IncomingMessage) => {
    const line = `ferry serve: error on ${req.method} ${req.url}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
    if (log) log(line);
    else process.stderr.write(`${line}\n`);
  };
  const handle = createRouter({ storage, ...(auth ? { auth } : {}), onInternalError });

  const inFlight = new Set<Promise<void>>();
  const server = createServer((req, res) => {
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
  });
  // Big layers can take longer than Node's default 5-minute request timeout.
  server.requestTimeout = 0;

  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostPort = `${host.includes(":") ? `[${host}]` : host}:${port}`;

  const maxAge = opts.uploadMaxAgeMs ?? DEFAULT_UPLOAD_MAX_AGE_MS;
  let purging: Promise<void> | undefined;
  const purge = () => {
    if (purging) return;
    purging = storage.uploads
      .purge(maxAge)
      .catch((err) => log?.(`ferry serve: upload purge failed: ${String(err)}`))
      .finally(() => {
        purging = undefined;
      });
  };
  purge();
  const timer = setInterval(purge, Math.min(60_000, Math.max(50, Math.floor(maxAge / 2))));
  timer.unref();

  let closing: Promise<void> | undefined;
  return {
    url: `http://${hostPort}`,
    host: hostPort,
    port,
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await Promise.allSettled([...inFlight]);
        await purging;
        await closed;
      })();
      return closing;
    },
  };
}

export type { Authenticator } from "./auth.ts";
export { RegistryError } from "./errors.ts";
