/**
 * Where registry credentials come from: explicit values, the environment, Docker's `config.json`
 * (`auths`, `credHelpers`, `credsStore`) or any other provider (AWS ones live outside shared/registry).
 * A credential is only ever sent to the registry it belongs to and never printed.
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { CredentialsError } from "../errors.ts";
import { DOCKER_HUB } from "../reference.ts";

export interface Credential {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (Docker's `identitytoken`), exchanged at the token endpoint. */
  identityToken?: string;
  /** A bearer token used as is. */
  registryToken?: string;
}

export interface CredentialProvider {
  /** Credentials for a registry host as users write it (`docker.io`, `localhost:5000`), or undefined. */
  get(registry: string): Promise<Credential | undefined>;
}

/** Parses `user:password` as given on the command line (`--src-creds`); the password may contain `:`. */
export function parseUserPass(value: string): Credential {
  const i = value.indexOf(":");
  if (i <= 0) throw new CredentialsError("credentials must be given as user:password");
  return { username: value.slice(0, i), password: value.slice(i + 1) };
}

/** Fixed credentials per registry. */
export class StaticCredentials implements CredentialProvider {
  private readonly map: Map<string, Credential>;
  constructor(entries: Record<string, Credential> | Map<string, Credential> = {}) {
    this.map = entries instanceof Map ? new Map(entries) : new Map(Object.entries(entries));
  }
  set(registry: string, cred: Credential): this {
    this.map.set(registry, cred);
    return this;
  }
  async get(registry: string): Promise<Credential | undefined> {
    return this.map.get(registry);
  }
}

/** Tries providers in order; the first that knows the registry wins. */
export class ChainCredentials implements CredentialProvider {
  private readonly providers: CredentialProvider[];
  constructor(...providers: CredentialProvider[]) {
    this.providers = providers;
  }
  async get(registry: string): Promise<Credential | undefined> {
    for (const p of this.providers) {
      const c = await p.get(registry);
      if (c) return c;
    }
    return undefined;
  }
}

interface DockerConfigFile {
  auths?: Record<
    string,
    { auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string }
  >;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** The keys Docker uses for a registry in `auths`/`credHelpers`. Docker Hub is stored under its legacy v1 URL. */
function configKeys(registry: string): string[] {
  if (registry === DOCKER_HUB) {
    return [
      "https://index.docker.io/v1/",
      "index.docker.io",
      "docker.io",
      "registry-1.docker.io",
      "https://index.docker.io/v1",
    ];
  }
  return [
    registry,
    `https://${registry}`,
    `http://${registry}`,
    `https://${registry}/v1/`,
    `https://${registry}/v2/`,
  ];
}

/**
 * Docker's `config.json` (or a containers `auth.json` with the same `auths` shape).
 * Path: explicit, else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. A missing file means
 * no credentials; a malformed one is an error that names the file.
 */
export class DockerConfigCredentials implements CredentialProvider {
  readonly path: string;
  private readonly explicit: boolean;
  private loaded?: Promise<DockerConfigFile | undefined>;
  private readonly runHelper: (helper: string, server: string) => Promise<string>;

  constructor(path?: string, opts: { runHelper?: (helper: string, server: string) => Promise<string> } = {}) {
    this.explicit = path !== undefined;
    this.path = path ?? join(process.env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json");
    this.runHelper = opts.runHelper ?? runCredentialHelper;
  }

  private load(): Promise<DockerConfigFile | undefined> {
    this.loaded ??= (async () => {
      let text: string;
      try {
        text = await readFile(this.path, "utf8");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT" && !this.explicit) return undefined;
        throw new CredentialsError(`cannot read credentials file ${this.path}: ${(e as Error).message}`);
      }
      try {
        const parsed = JSON.parse(text) as unknown;
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
          throw new Error("not a JSON object");
        return parsed as DockerConfigFile;
      } catch (e) {
        throw new CredentialsError(
          `credentials file ${this.path} is not valid JSON: ${(e as Error).message}`,
        );
      }
    })();
    return this.loaded;
  }

  async get(registry: string): Promise<Credential | undefined> {
    const cfg = await this.load();
    if (!cfg) return undefined;
    const keys = configKeys(registry);
    const helper = keys.map((k) => cfg.credHelpers?.[k]).find(Boolean);
    if (helper) return this.fromHelper(helper, keys[0]!);
    for (const k of keys) {
      const entry = cfg.auths?.[k];
      if (!entry) continue;
      if (entry.identitytoken) return { identityToken: entry.identitytoken, username: entry.username };
      if (entry.registrytoken) return { registryToken: entry.registrytoken };
      if (entry.username && entry.password) return { username: entry.username, password: entry.password };
      if (entry.auth) {
        const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
        const i = decoded.indexOf(":");
        if (i <= 0)
          throw new CredentialsError(
            `credentials file ${this.path}: the "auth" entry for ${k} is not base64 user:password`,
          );
        return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
      }
    }
    if (cfg.credsStore) return this.fromHelper(cfg.credsStore, keys[0]!);
    return undefined;
  }

  private async fromHelper(helper: string, server: string): Promise<Credential | undefined> {
    if (!/^[a-zA-Z0-9_.-]+$/.test(helper))
      throw new CredentialsError(`invalid credential helper name "${helper}" in ${this.path}`);
    const out = await this.runHelper(helper, server);
    if (out === "") return undefined;
    let parsed: { Username?: string; Secret?: string };
    try {
      parsed = JSON.parse(out);
    } catch {
      throw new CredentialsError(`credential helper docker-credential-${helper} returned malformed output`);
    }
    if (!parsed.Secret) return undefined;
    // Docker's convention: Username "<token>" means the secret is an identity (refresh) token.
    if (parsed.Username === "<token>") return { identityToken: parsed.Secret };
    return { username: parsed.Username ?? "", password: parsed.Secret };
  }
}

/** Runs `docker-credential-<helper> get` with the server URL on stdin. "credentials not found" yields "". */
export async function runCredentialHelper(helper: string, server: string): Promise<string> {
  // node:child_process (and dgram, net's socket lists) load only for a configured helper: not at start-up.
  const { execFile } = await import("node:child_process");
  return new Promise((resolve, reject) => {
    const child = execFile(
      `docker-credential-${helper}`,
      ["get"],
      { timeout: 30_000 },
      (err, stdout, stderr) => {
        if (err) {
          const text = `${stdout}${stderr}`;
          if (/credentials not found/i.test(text)) return resolve("");
          const code = (err as NodeJS.ErrnoException).code;
          if (code === "ENOENT") {
            return reject(
              new CredentialsError(
                `credential helper docker-credential-${helper} is not installed (named in Docker's config.json)`,
              ),
            );
          }
          return reject(
            new CredentialsError(`credential helper docker-credential-${helper} failed for ${server}`),
          );
        }
        resolve(stdout.trim());
      },
    );
    child.stdin?.end(server);
  });
}

/**
 * Credentials from the environment: `FERRY_USERNAME`/`FERRY_PASSWORD` for the registries named in
 * `FERRY_REGISTRY` (one, or several separated by commas) and no other. A username and password with no
 * registry named is an error, not "every registry": a password must not go to whichever host a
 * reference, redirect or token realm names.
 */
export class EnvCredentials implements CredentialProvider {
  private readonly credential?: Credential;
  private readonly registries: ReadonlySet<string>;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    const { FERRY_USERNAME: username, FERRY_PASSWORD: password, FERRY_REGISTRY: only } = env;
    const names = (only ?? "")
      .split(",")
      .map((r) => normaliseRegistryName(r))
      .filter(Boolean);
    this.registries = new Set(names);
    if (!username && !password) return;
    if (!username || !password) {
      throw new CredentialsError(
        `${username ? "FERRY_USERNAME" : "FERRY_PASSWORD"} is set but ${username ? "FERRY_PASSWORD" : "FERRY_USERNAME"} is not: set both, or neither`,
      );
    }
    if (names.length === 0) {
      throw new CredentialsError(
        "FERRY_USERNAME and FERRY_PASSWORD are set but FERRY_REGISTRY is not: name the registry they belong to " +
          "(e.g. FERRY_REGISTRY=registry.example.com, several separated by commas); ferry does not send them to every registry",
      );
    }
    this.credential = { username, password };
  }

  async get(registry: string): Promise<Credential | undefined> {
    return this.credential && this.registries.has(registry) ? this.credential : undefined;
  }
}

/** A registry as FERRY_REGISTRY may spell it (`https://host/`, `index.docker.io`) → as references name it. */
function normaliseRegistryName(text: string): string {
  const host = text
    .trim()
    .replace(/^[a-z]+:\/\//i, "")
    .replace(/\/.*$/, "")
    .toLowerCase();
  return host === "index.docker.io" || host === "registry-1.docker.io" ? DOCKER_HUB : host;
}
