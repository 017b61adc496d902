/**
 * Per-registry TLS settings for the Lambda functions, from Secrets Manager: REGISTRY_TLS maps a registry
 * host to a secret whose JSON is `{"ca": PEM, "cert": PEM, "key": PEM}` — `ca` the CAs to trust for that
 * registry (on top of the system's), `cert` + `key` a client certificate; each part optional, `cert` and
 * `key` together. The same settings a certificate directory gives the CLI (shared/registry/http/tls.ts);
 * a secret is read when the first connection to its registry is made, once per Lambda container (a
 * rotated certificate reaches new containers). Messages name the secret, never its contents.
 */
import type { RegistryTlsLookup, TlsMaterial } from "../registry/http/tls.ts";
import { TlsError } from "../registry/http/tls.ts";
import { type SecretReader, sdkSecretReader } from "./credentials.ts";

const PEM = /-----BEGIN [A-Z0-9 ]+-----/;

/** `registry → secret ARN` as a RegistryTlsLookup for the registry client. */
export function secretsManagerTls(opts: {
  secrets: Record<string, string>;
  reader?: SecretReader;
}): RegistryTlsLookup | undefined {
  const secrets = opts.secrets;
  if (Object.keys(secrets).length === 0) return undefined;
  let reader = opts.reader;
  return (registry) => {
    const arn = secrets[registry];
    if (!arn) return undefined;
    return {
      source: `secret ${arn}`,
      load: async () => {
        reader ??= sdkSecretReader();
        let text: string | undefined;
        try {
          text = await reader.getSecretString(arn);
        } catch (e) {
          throw new TlsError(
            `cannot read the TLS settings of ${registry} from Secrets Manager (${arn}): ${(e as Error).name ?? "Error"}: ${(e as Error).message}`,
          );
        }
        return parseTlsSecret(text, registry, arn);
      },
    };
  };
}

/** `{"ca","cert","key"}` → TlsMaterial, or a TlsError naming the secret and the field. */
export function parseTlsSecret(text: string | undefined, registry: string, arn: string): TlsMaterial {
  const what = `secret ${arn} (TLS settings of ${registry})`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text ?? "");
  } catch {
    throw new TlsError(`${what} is not JSON {"ca", "cert", "key"}`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
    throw new TlsError(`${what} is not JSON {"ca", "cert", "key"}`);
  const fields = parsed as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !["ca", "cert", "key"].includes(k));
  if (unknown.length) throw new TlsError(`${what}: unknown field(s) ${unknown.join(", ")} (ca, cert, key)`);
  for (const k of ["ca", "cert", "key"] as const) {
    const v = fields[k];
    if (v !== undefined && (typeof v !== "string" || !PEM.test(v)))
      throw new TlsError(`${what}: "${k}" must be PEM text (-----BEGIN ...)`);
  }
  const { ca, cert, key } = fields as { ca?: string; cert?: string; key?: string };
  if ((cert === undefined) !== (key === undefined))
    throw new TlsError(`${what}: "cert" and "key" go together (one is missing)`);
  if (ca === undefined && cert === undefined) throw new TlsError(`${what} holds neither "ca" nor "cert"`);
  return { ...(ca !== undefined ? { ca: [ca] } : {}), ...(cert !== undefined ? { cert, key } : {}) };
}
