/** Lambda configuration from the environment, checked once, with messages that name the variable. */
import { FerryError } from "../../shared/registry/errors.ts";

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
  const v = env.REGISTRY_SECRETS;
  if (!v) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    throw new ConfigError(
      'REGISTRY_SECRETS must be a JSON object: {"registry.example.com": "arn:aws:secretsmanager:..."}',
    );
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
    throw new ConfigError("REGISTRY_SECRETS must be a JSON object of registry → secret ARN");
  for (const [k, arn] of Object.entries(parsed)) {
    if (typeof arn !== "string" || !arn)
      throw new ConfigError(`REGISTRY_SECRETS["${k}"] must be a secret ARN`);
  }
  return parsed as Record<string, string>;
}
