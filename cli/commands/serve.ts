/** `ferry serve`: the embedded registry. */
import type { Command } from "commander";
import { FerryError } from "../../shared/registry/errors.ts";

interface ServeFlags {
  root: string;
  port: string;
  host: string;
  htpasswd?: string;
  log?: boolean;
  idleTimeout: string;
  maxUploads: string;
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run ferry's embedded OCI registry (a scratch registry, an offline mirror target)")
    .option("--root <dir>", "storage directory", "./ferry-registry")
    .option("--port <n>", "port (0: any free port)", "5000")
    .option("--host <addr>", "address to listen on", "127.0.0.1")
    .option("--htpasswd <file>", "require basic auth with these bcrypt credentials")
    .option("--log", "log one line per request")
    .option(
      "--idle-timeout <seconds>",
      "close a connection silent this long in the middle of a request",
      "60",
    )
    .option("--max-uploads <n>", "upload sessions open at once; beyond it new ones get 429", "1000")
    .action(async (flags: ServeFlags) => {
      const port = Number(flags.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new FerryError("USAGE", `--port must be 0–65535, got "${flags.port}"`);
      const idleSeconds = Number(flags.idleTimeout);
      if (!(idleSeconds >= 0.001 && idleSeconds <= 2_000_000))
        throw new FerryError(
          "USAGE",
          `--idle-timeout must be a number of seconds > 0, got "${flags.idleTimeout}"`,
        );
      const maxUploads = Number(flags.maxUploads);
      if (!Number.isInteger(maxUploads) || maxUploads < 1)
        throw new FerryError("USAGE", `--max-uploads must be a whole number ≥ 1, got "${flags.maxUploads}"`);
      const { serveMain } = await import("../../serve/main.ts");
      await serveMain({
        root: flags.root,
        port,
        host: flags.host,
        idleTimeoutMs: Math.round(idleSeconds * 1000),
        maxUploadSessions: maxUploads,
        ...(flags.htpasswd ? { htpasswd: flags.htpasswd } : {}),
        ...(flags.log ? { log: true } : {}),
      });
    });
}
