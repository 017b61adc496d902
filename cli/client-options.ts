/** Command-line connection options → one RegistryClient for the whole command. */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import {
  ChainCredentials,
  type CredentialProvider,
  DockerConfigCredentials,
  EnvCredentials,
  parseUserPass,
  StaticCredentials,
} from "../shared/registry/auth/credentials.ts";
import { RegistryClient } from "../shared/registry/client.ts";
import { CredentialsError } from "../shared/registry/errors.ts";
import type { RequestEvent } from "../shared/registry/options.ts";

export interface ConnectionFlags {
  srcCreds?: string;
  destCreds?: string;
  creds?: string;
  authfile?: string;
  plainHttp?: boolean;
  tlsVerify?: boolean;
  caFile?: string;
  debug?: boolean;
  chunkSize?: string;
}

/** Adds the connection flags users know from skopeo and crane. */
export function addConnectionFlags(cmd: Command, which: "src-dest" | "single"): Command {
  if (which === "src-dest") {
    cmd.option("--src-creds <user:password>", "credentials for the source registry");
    cmd.option("--dest-creds <user:password>", "credentials for the destination registry");
  } else {
    cmd.option("--creds <user:password>", "credentials for the registry");
  }
  return cmd
    .option(
      "--authfile <path>",
      "Docker config.json / containers auth.json to read credentials from (default: ~/.docker/config.json)",
    )
    .option("--plain-http", "use http:// for every registry (loopback registries always do)")
    .option("--tls-verify <bool>", "verify TLS certificates (true|false)", parseBool, true)
    .option("--ca-file <path>", "extra CA certificates (PEM) to trust")
    .option("--chunk-size <bytes>", "chunk size for chunked uploads (e.g. 8MiB); default per registry")
    .option("--debug", "log every HTTP exchange (redacted) to stderr");
}

export function parseBool(v: string): boolean {
  if (/^(true|1|yes)$/i.test(v)) return true;
  if (/^(false|0|no)$/i.test(v)) return false;
  throw new CredentialsError(`expected true or false, got "${v}"`);
}

/** `8MiB`, `512k`, `1048576` → bytes. */
export function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(v.trim());
  if (!m) throw new CredentialsError(`invalid size "${v}" (e.g. 8MiB, 512KiB, 1048576)`);
  const unit = (m[2] ?? "b").toLowerCase()[0]!;
  const mult = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
  return Math.round(Number(m[1]) * mult);
}

/**
 * Builds the client. Credentials, first match wins: --src-creds/--dest-creds/--creds for their
 * registries, then the auth file (Docker's config.json by default), then FERRY_USERNAME/FERRY_PASSWORD.
 */
export function makeClient(
  flags: ConnectionFlags,
  registries: { src?: string; dest?: string; single?: string },
): RegistryClient {
  const explicit = new StaticCredentials();
  if (flags.srcCreds && registries.src) explicit.set(registries.src, parseUserPass(flags.srcCreds));
  if (flags.destCreds && registries.dest) explicit.set(registries.dest, parseUserPass(flags.destCreds));
  if (flags.creds && registries.single) explicit.set(registries.single, parseUserPass(flags.creds));
  const credentials: CredentialProvider = new ChainCredentials(
    explicit,
    new DockerConfigCredentials(flags.authfile),
    new EnvCredentials(),
  );
  let ca: Buffer | undefined;
  if (flags.caFile) {
    try {
      ca = readFileSync(flags.caFile);
    } catch (e) {
      throw new CredentialsError(`cannot read --ca-file ${flags.caFile}: ${(e as Error).message}`);
    }
  }
  const observer = flags.debug
    ? (e: RequestEvent) =>
        process.stderr.write(
          `ferry: ${e.op} ${e.method} ${e.url} → ${e.status || e.error} (${e.ms.toFixed(1)} ms${e.attempt ? `, retry ${e.attempt}` : ""})\n`,
        )
    : undefined;
  return new RegistryClient({
    credentials,
    ...(flags.plainHttp ? { plainHttp: true } : {}),
    tlsVerify: flags.tlsVerify !== false,
    ...(ca ? { ca } : {}),
    ...(flags.chunkSize ? { chunkSize: parseSize(flags.chunkSize) } : {}),
    ...(observer ? { observer } : {}),
  });
}
