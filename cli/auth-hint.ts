/**
 * What to do about a registry's 401/403, added to the error line by cli/main.ts. A bare "401
 * Unauthorized" does not tell a wrong password from none at all; the transport records on the error
 * whether the user's credentials went with the request (RegistryError.credentialsSent), and this module
 * knows, from the client the command built, which flag gives credentials for which registry.
 */
import { RegistryError } from "../shared/registry/errors.ts";

/** Registry → the flag that gives its credentials in the running command (set by makeClient). */
const flagOf = new Map<string, string>();

/** Records which credential flag belongs to which registry (the CLI runs one command per process). */
export function noteCredentialFlags(registries: { src?: string; dest?: string; single?: string }): void {
  const add = (registry: string | undefined, flag: string) => {
    if (!registry) return;
    const had = flagOf.get(registry);
    flagOf.set(registry, had && had !== flag ? `${had} or ${flag}` : flag);
  };
  add(registries.src, "--src-creds");
  add(registries.dest, "--dest-creds");
  add(registries.single, "--creds");
}

/** The registry's 401/403 in `err` (or its causes), if any. */
function refusal(err: unknown): RegistryError | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    if (e instanceof RegistryError && (e.status === 401 || e.status === 403)) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Advice for an authentication failure: how to give credentials when none were sent, what to check when
 * they were refused. Undefined for any other error. Never contains a credential (only flag names).
 */
export function authHint(err: unknown): string | undefined {
  const e = refusal(err);
  if (!e) return undefined;
  const registry = e.registry ?? hostOf(e.url);
  const flag = flagOf.get(registry) ?? ([...new Set(flagOf.values())].join(" or ") || "--creds");
  if (!e.credentialsSent) {
    return (
      `no credentials were sent to ${registry}: give them with ${flag} USER:PASSWORD, ` +
      `--authfile FILE (a Docker config.json), \`docker login ${registry}\` (ferry reads ~/.docker/config.json), ` +
      `or FERRY_REGISTRY=${registry} with FERRY_USERNAME and FERRY_PASSWORD`
    );
  }
  if (e.status === 403)
    return `the credentials sent to ${registry} were accepted but are not allowed to do this: check the account's permissions on the repository`;
  return (
    `the credentials sent to ${registry} were refused: check the user name and password ` +
    `(from ${flag}, --authfile or ~/.docker/config.json, or FERRY_USERNAME/FERRY_PASSWORD, in that order)`
  );
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "the registry";
  }
}
