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
import { CredentialsError, FerryError } from "../shared/registry/errors.ts";
import {
  isRegistryHost,
  REGISTRY_KINDS,
  type RegistryKind,
  type RequestEvent,
} from "../shared/registry/options.ts";
import { noteCredentialFlags } from "./auth-hint.ts";

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
  registryKind?: string[];
}

/**
 * Adds the connection flags users know from skopeo and crane — only those the verb uses, so that its
 * `--help` offers nothing it ignores (test/integration/cli/newcomer.test.ts holds every verb to it):
 * `which` names the registries it talks to (their credential flags: a source, a destination, both, or
 * one registry: `--creds`); `uploads`, when it uploads blobs: `rules` adds `--registry-kind` (whose
 * upload rules a host follows), `chunks` adds `--chunk-size` too.
 */
export function addConnectionFlags(
  cmd: Command,
  which: "src-dest" | "src" | "dest" | "single",
  uploads?: "rules" | "chunks",
): Command {
  if (which === "src-dest" || which === "src")
    cmd.option("--src-creds <user:password>", "credentials for the source registry");
  if (which === "src-dest" || which === "dest")
    cmd.option("--dest-creds <user:password>", "credentials for the destination registry");
  if (which === "single") cmd.option("--creds <user:password>", "credentials for the registry");
  cmd
    .option(
      "--authfile <path>",
      "Docker config.json / containers auth.json to read credentials from (default: ~/.docker/config.json)",
    )
    .option("--plain-http", "use http:// for every registry (loopback registries always do)")
    .option("--tls-verify <bool>", "verify TLS certificates (true|false)", parseBool, true)
    .option("--ca-file <path>", "extra CA certificates (PEM) to trust");
  if (uploads === "chunks")
    cmd.option(
      "--chunk-size <bytes>",
      "upload every blob in PATCH chunks of this size (e.g. 8MiB), within the registry's bounds; default per registry",
    );
  if (uploads)
    cmd.option(
      "--registry-kind <host=kind>",
      `apply a registry's upload rules to HOST (${REGISTRY_KINDS.join("|")}), e.g. ECR behind a custom domain; repeatable`,
      collect,
    );
  return cmd.option("--debug", "log every HTTP exchange (redacted) to stderr");
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `--registry-kind host=kind` (repeatable) → ClientOptions.registryKinds. */
export function parseRegistryKinds(values: readonly string[]): Record<string, RegistryKind> {
  const kinds: Record<string, RegistryKind> = {};
  for (const v of values) {
    const at = v.lastIndexOf("=");
    const host = v.slice(0, at).trim();
    const kind = v
      .slice(at + 1)
      .trim()
      .toLowerCase() as RegistryKind;
    if (at < 1 || !isRegistryHost(host))
      throw new FerryError(
        "USAGE",
        `--registry-kind "${v}": expected HOST=KIND, e.g. registry.example.com=ecr`,
      );
    if (!REGISTRY_KINDS.includes(kind))
      throw new FerryError(
        "USAGE",
        `--registry-kind "${v}": the kind must be one of ${REGISTRY_KINDS.join(", ")}`,
      );
    kinds[host] = kind;
  }
  return kinds;
}

/** `--chunk-size` → bytes, or a usage error naming the flag. */
function chunkSizeFlag(v: string): number {
  let n: number;
  try {
    n = parseSize(v);
  } catch {
    n = 0;
  }
  if (!(n > 0))
    throw new FerryError(
      "USAGE",
      `--chunk-size "${v}": expected a positive size such as 8MiB, 512KiB, 1048576`,
    );
  return n;
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
  // Usage first: a bad flag is reported before anything else is looked at.
  const chunkSize = flags.chunkSize ? chunkSizeFlag(flags.chunkSize) : undefined;
  const registryKinds = flags.registryKind?.length ? parseRegistryKinds(flags.registryKind) : undefined;
  noteCredentialFlags(registries);
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
    ...(chunkSize ? { chunkSize } : {}),
    ...(registryKinds ? { registryKinds } : {}),
    ...(observer ? { observer } : {}),
  });
}
