/** Lambda configuration from the environment, checked once, with messages that name the variable. */
import { FerryError } from "../registry/errors.ts";
import { POLICY_ENV } from "../workflow/names.ts";
import { type TransferPolicy, transferPolicy } from "../workflow/policy.ts";
import { type RepositorySettings, repositorySettingsFromEnv } from "../workflow/repository-settings.ts";

export class ConfigError extends FerryError {
  constructor(message: string) {
    super("CONFIG", message);
    this.name = "ConfigError";
  }
}

export type Env = Record<string, string | undefined>;

export function requireEnv(env: Env, name: string): string {
  const v = env[name];
  if (!v) throw new ConfigError(`environment variable ${name} is not set`);
  return v;
}

/** A byte count: `2147483648`, `2GiB`, `512MiB`, `64KiB`. Undefined when unset. */
export function bytesEnv(env: Env, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === "") return undefined;
  const m = /^(\d+)\s*(b|kib|k|mib|m|gib|g)?$/i.exec(v.trim());
  if (!m) throw new ConfigError(`${name}=${JSON.stringify(v)}: expected bytes, e.g. 2GiB, 512MiB, 1048576`);
  const unit = (m[2] ?? "b").toLowerCase()[0]!;
  const mult = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
  return Number(m[1]) * mult;
}

/** `REGISTRY_SECRETS`: a JSON object mapping registry host → Secrets Manager secret ARN. */
export function registrySecrets(env: Env): Record<string, string> {
  return secretMap(env, "REGISTRY_SECRETS");
}

/**
 * `REGISTRY_TLS`: a JSON object mapping registry host → the ARN of a secret holding that registry's TLS
 * settings, `{"ca", "cert", "key"}` in PEM (shared/aws/tls.ts).
 */
export function registryTlsSecrets(env: Env): Record<string, string> {
  return secretMap(env, "REGISTRY_TLS");
}

/** A JSON object of registry host → secret ARN in variable `name`; absent → {}. */
function secretMap(env: Env, name: string): Record<string, string> {
  const v = env[name];
  if (!v) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    throw new ConfigError(
      `${name} must be a JSON object: {"registry.example.com": "arn:aws:secretsmanager:..."}`,
    );
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
    throw new ConfigError(`${name} must be a JSON object of registry → secret ARN`);
  for (const [k, arn] of Object.entries(parsed)) {
    if (typeof arn !== "string" || !arn) throw new ConfigError(`${name}["${k}"] must be a secret ARN`);
  }
  return parsed as Record<string, string>;
}

/** A JSON array of strings; absent or empty → []. */
function stringList(env: Env, name: string, example: string): string[] {
  const v = env[name];
  if (v === undefined || v.trim() === "") return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    throw new ConfigError(`${name} must be a JSON array of strings, e.g. ${example}`);
  }
  if (!Array.isArray(parsed) || parsed.some((x) => typeof x !== "string" || x === ""))
    throw new ConfigError(`${name} must be a JSON array of non-empty strings, e.g. ${example}`);
  return parsed as string[];
}

/**
 * The copy policy of a deployed function: ALLOWED_SOURCES and ALLOWED_DESTINATIONS, JSON arrays of
 * `host[/repository]` patterns (shared/workflow/allow-list.ts). Fails closed: a variable that is missing
 * or `[]` allows nothing on its side (every copy is refused, naming the variable); a malformed one is a
 * ConfigError. There is no "allow everything" value: that exists only for local runs (ALLOW_ANY).
 */
export function policyFromEnv(env: Env): TransferPolicy {
  const example = '["ghcr.io/team", "*.dkr.ecr.us-east-1.amazonaws.com/prod/*"]';
  try {
    return transferPolicy({
      sources: stringList(env, POLICY_ENV.sources, example),
      destinations: stringList(env, POLICY_ENV.destinations, example),
    });
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError((e as Error).message);
  }
}

/**
 * PRIVATE_REGISTRIES: registries (`host` or `host:port`) the functions may reach on private, loopback or
 * link-local addresses. Absent or `[]`: public addresses only.
 */
export function privateRegistries(env: Env): string[] {
  return stringList(env, POLICY_ENV.privateRegistries, '["registry.internal:5000"]');
}

/**
 * ECR_CREATE_REPOSITORIES: the settings of ECR repositories the functions create when a destination
 * repository is missing (JSON, shared/workflow/repository-settings.ts). Absent: they never create one.
 */
export function repositorySettings(env: Env): RepositorySettings | undefined {
  try {
    return repositorySettingsFromEnv(env);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
}
