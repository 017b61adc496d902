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
import { ProxyError, type ProxySettings, proxyFromEnv } from "../shared/registry/http/proxy.ts";
import {
  certsDLookup,
  type RegistryTls,
  type RegistryTlsLookup,
  readCertDir,
  TlsError,
} from "../shared/registry/http/tls.ts";
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
  srcCertDir?: string;
  destCertDir?: string;
  certDir?: string;
  debug?: boolean;
  chunkSize?: string;
  registryKind?: string[];
  rateLimitReserve?: string;
}

/**
 * Adds the connection flags users know from skopeo and crane — only those the verb uses, so that its
 * `--help` offers nothing it ignores (test/integration/cli/newcomer.test.ts holds every verb to it):
 * `which` names the registries it talks to (their credential and certificate flags: a source, a
 * destination, both, or one registry: `--creds`, `--cert-dir`); `uploads`, when it uploads blobs: `rules`
 * adds `--registry-kind` (whose upload rules a host follows), `chunks` adds `--chunk-size` too.
 */
export function addConnectionFlags(
  cmd: Command,
  which: "src-dest" | "src" | "dest" | "single",
  uploads?: "rules" | "chunks",
): Command {
  const certDir =
    "TLS directory: *.crt CAs to trust, X.cert + X.key a client certificate (default: certs.d/<host:port>/)";
  if (which === "src-dest" || which === "src")
    cmd.option("--src-creds <user:password>", "credentials for the source registry");
  if (which === "src-dest" || which === "dest")
    cmd.option("--dest-creds <user:password>", "credentials for the destination registry");
  if (which === "src-dest" || which === "src")
    cmd.option("--src-cert-dir <dir>", `the source registry's ${certDir}`);
  if (which === "src-dest" || which === "dest")
    cmd.option("--dest-cert-dir <dir>", `the destination registry's ${certDir}`);
  if (which === "single") {
    cmd.option("--creds <user:password>", "credentials for the registry");
    cmd.option("--cert-dir <dir>", `the registry's ${certDir}`);
  }
  cmd
    .option(
      "--authfile <path>",
      "Docker config.json / containers auth.json to read credentials from (default: ~/.docker/config.json)",
    )
    .option(
      "--plain-http",
      "use http:// for every registry (loopback registries do unless they have a certificate directory)",
    )
    .option("--no-plain-http", "use https:// for every registry, loopback included")
    .option("--tls-verify <bool>", "verify TLS certificates (true|false)", parseBool, true)
    .option("--ca-file <path>", "extra CA certificates (PEM) to trust")
    .option(
      "--rate-limit-reserve <pulls>",
      "leave this many pulls of a registry's rate limit (Docker Hub's ratelimit-remaining) unused: stop before (default 0)",
    );
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
  return cmd.option("--debug", "log every HTTP exchange (redacted, and the proxy it went through) to stderr");
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
  const registryTls = certDirs(flags, registries);
  const proxy = proxySettings();
  const observer = flags.debug ? debugObserver : undefined;
  return new RegistryClient({
    credentials,
    ...(flags.plainHttp !== undefined ? { plainHttp: flags.plainHttp } : {}),
    tlsVerify: flags.tlsVerify !== false,
    ...(ca ? { ca } : {}),
    ...(registryTls ? { registryTls } : {}),
    ...(proxy ? { proxy } : {}),
    ...(chunkSize ? { chunkSize } : {}),
    ...(registryKinds ? { registryKinds } : {}),
    ...(observer ? { observer } : {}),
    ...(flags.rateLimitReserve !== undefined
      ? { rateBudget: { reserve: rateReserve(flags.rateLimitReserve) } }
      : {}),
  });
}

function rateReserve(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new FerryError("USAGE", `--rate-limit-reserve takes a whole number of pulls (got "${v}")`);
  return n;
}

/** --debug: one line per HTTP exchange, its URL redacted, naming the proxy it went through. */
export function debugObserver(e: RequestEvent): void {
  process.stderr.write(
    `ferry: ${e.op} ${e.method} ${e.url} → ${e.status || e.error} (${e.ms.toFixed(1)} ms${e.attempt ? `, retry ${e.attempt}` : ""}${e.proxy ? `, via proxy ${e.proxy}` : ""})\n`,
  );
}

/** HTTPS_PROXY / HTTP_PROXY / NO_PROXY of this process; a malformed one is a usage error naming it. */
function proxySettings(): ProxySettings | undefined {
  try {
    return proxyFromEnv(process.env);
  } catch (e) {
    if (e instanceof ProxyError) throw new FerryError("USAGE", e.message);
    throw e;
  }
}

/**
 * Per-registry TLS settings: --src-cert-dir / --dest-cert-dir / --cert-dir for their registries (read
 * now: a bad directory is a usage error before anything is sent), else the registry's certs.d directory
 * (http/tls.ts). With --plain-http nothing speaks TLS, so a directory given with it is a contradiction.
 */
function certDirs(
  flags: ConnectionFlags,
  registries: { src?: string; dest?: string; single?: string },
): RegistryTlsLookup | undefined {
  const given = new Map<string, RegistryTls>();
  const add = (flag: string, dir: string | undefined, registry: string | undefined) => {
    if (dir === undefined) return;
    if (flags.plainHttp === true)
      throw new FerryError("USAGE", `${flag} and --plain-http contradict each other: plain http has no TLS`);
    if (!registry) throw new FerryError("USAGE", `${flag}: this side of the command is not a registry`);
    let material: ReturnType<typeof readCertDir>;
    try {
      material = readCertDir(dir);
    } catch (e) {
      if (e instanceof TlsError) throw new FerryError("USAGE", `${flag}: ${e.message}`);
      throw e;
    }
    const previous = given.get(registry);
    if (previous && previous.source !== dir)
      throw new FerryError(
        "USAGE",
        `${registry} is both source and destination: give it one certificate directory, not ${previous.source} and ${dir}`,
      );
    given.set(registry, { source: dir, load: () => material });
  };
  add("--src-cert-dir", flags.srcCertDir, registries.src);
  add("--dest-cert-dir", flags.destCertDir, registries.dest);
  add("--cert-dir", flags.certDir, registries.single);
  if (flags.plainHttp === true) return undefined;
  const certsD = certsDLookup();
  return (registry) => given.get(registry) ?? certsD(registry);
}
