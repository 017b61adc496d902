/** `ferry serve`: the embedded registry. */
import type { Command } from "commander";
import { FerryError } from "../../shared/registry/errors.ts";

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run ferry's embedded OCI registry (a scratch registry, an offline mirror target)")
    .option("--root <dir>", "storage directory", "./ferry-registry")
    .option("--port <n>", "port (0: any free port)", "5000")
    .option("--host <addr>", "address to listen on", "127.0.0.1")
    .option("--htpasswd <file>", "require basic auth with these bcrypt credentials")
    .option("--log", "log one line per request")
    .action(async (flags: { root: string; port: string; host: string; htpasswd?: string; log?: boolean }) => {
      const port = Number(flags.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new FerryError("USAGE", `--port must be 0–65535, got "${flags.port}"`);
      const { serveMain } = await import("../../serve/main.ts");
      await serveMain({
        root: flags.root,
        port,
        host: flags.host,
        ...(flags.htpasswd ? { htpasswd: flags.htpasswd } : {}),
        ...(flags.log ? { log: true } : {}),
      });
    });
}
