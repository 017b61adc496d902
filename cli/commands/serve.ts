/** `ferry serve`: the embedded registry. */
import type { Command } from "commander";
import { EMULATED_REGISTRIES as EMULATED, type EmulatedRegistry } from "../../serve/emulate.ts";
import { FerryError } from "../../shared/registry/errors.ts";
import { parseSize } from "../client-options.ts";

interface ServeFlags {
  root: string;
  port: string;
  host: string;
  htpasswd?: string;
  log?: boolean;
  idleTimeout: string;
  maxUploads: string;
  emulate?: string;
  chunkMinLength?: string;
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
    .option(
      "--emulate <registry>",
      `behave like this registry on uploads, to test clients against its rules (${EMULATED.join("|")})`,
    )
    .option(
      "--chunk-min-length <bytes>",
      "announce OCI-Chunk-Min-Length and refuse uploads with smaller non-final chunks (e.g. 5MiB)",
    )
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
      const emulate = flags.emulate?.toLowerCase();
      if (emulate !== undefined && !(EMULATED as readonly string[]).includes(emulate))
        throw new FerryError(
          "USAGE",
          `--emulate must be one of ${EMULATED.join(", ")}, got "${flags.emulate}"`,
        );
      let chunkMinLength: number | undefined;
      if (flags.chunkMinLength !== undefined) {
        try {
          chunkMinLength = parseSize(flags.chunkMinLength);
        } catch {
          chunkMinLength = 0;
        }
        if (!(chunkMinLength >= 1 && Number.isSafeInteger(chunkMinLength)))
          throw new FerryError(
            "USAGE",
            `--chunk-min-length must be a size of at least 1 byte (e.g. 5MiB), got "${flags.chunkMinLength}"`,
          );
      }
      const { serveMain } = await import("../../serve/main.ts");
      await serveMain({
        root: flags.root,
        port,
        host: flags.host,
        idleTimeoutMs: Math.round(idleSeconds * 1000),
        maxUploadSessions: maxUploads,
        ...(flags.htpasswd ? { htpasswd: flags.htpasswd } : {}),
        ...(flags.log ? { log: true } : {}),
        ...(emulate ? { emulate: emulate as EmulatedRegistry } : {}),
        ...(chunkMinLength ? { chunkMinLength } : {}),
      });
    });
}
