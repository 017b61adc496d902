/**
 * TLS settings per registry: extra CAs to trust and a client certificate to present, as skopeo, podman
 * and Docker take them from a certificate directory (containers-certs.d(5)):
 *   *.crt           CA certificates trusted for this registry, on top of the system's;
 *   X.cert + X.key  a client certificate and its key (Docker's `client.cert` / `client.key`).
 * Without a directory given on the command line, the first existing of
 *   $XDG_CONFIG_HOME/containers/certs.d/<host:port>/   (default ~/.config)
 *   /etc/containers/certs.d/<host:port>/
 *   /etc/docker/certs.d/<host:port>/
 * is used, as podman and skopeo do. On AWS the same material comes from Secrets Manager
 * (shared/aws/tls.ts). A registry with TLS settings is spoken to over https, loopback included.
 *
 * The settings apply to connections to that registry's own host and port only: a redirect to object
 * storage or a token realm on another host gets the defaults (system CAs, --ca-file) and no client
 * certificate — a client certificate is a credential, and credentials belong to an origin.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { FerryError } from "../errors.ts";

/** PEM material for one registry. */
export interface TlsMaterial {
  /** CA certificates trusted in addition to the system's. */
  readonly ca?: readonly (string | Buffer)[];
  /** Client certificate (chain) and its private key: both or neither. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

/** A registry's TLS settings: where they come from, and how to read them. */
export interface RegistryTls {
  /** Where the settings come from, for messages: a directory, a secret ARN — never the material. */
  readonly source: string;
  /** Reads the material; called when the first connection to the registry is made, once per client. */
  load(): TlsMaterial | Promise<TlsMaterial>;
}

/** Registry (`host` or `host:port`, as written in references) → its TLS settings, or undefined. */
export type RegistryTlsLookup = (registry: string) => RegistryTls | undefined;

/**
 * TLS could not be set up with a registry: its settings are unusable, or the handshake failed (unknown
 * CA, expired certificate, a client certificate required or refused). Never retried: trying again
 * cannot change a certificate.
 */
export class TlsError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("TLS", message, options);
    this.name = "TlsError";
  }
}

/**
 * Reads a certificate directory with skopeo's rules. Throws a TlsError naming the directory (and the
 * file) when it cannot be read, a client certificate has no key or a key no certificate, or it holds
 * more than one client pair. File contents are never part of a message.
 */
export function readCertDir(dir: string): TlsMaterial {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (e) {
    throw new TlsError(`cannot read the certificate directory ${dir}: ${(e as Error).message}`);
  }
  const read = (name: string) => {
    try {
      return readFileSync(join(dir, name));
    } catch (e) {
      throw new TlsError(`cannot read ${join(dir, name)}: ${(e as Error).message}`);
    }
  };
  const ca: Buffer[] = [];
  const pairs: string[] = [];
  for (const name of names) {
    if (name.endsWith(".crt")) ca.push(read(name));
    else if (name.endsWith(".cert")) {
      const key = `${name.slice(0, -".cert".length)}.key`;
      if (!names.includes(key))
        throw new TlsError(
          `${dir}: client certificate ${name} has no key ${key} (CA certificates take the extension .crt)`,
        );
      pairs.push(name.slice(0, -".cert".length));
    } else if (name.endsWith(".key")) {
      const cert = `${name.slice(0, -".key".length)}.cert`;
      if (!names.includes(cert)) throw new TlsError(`${dir}: key ${name} has no client certificate ${cert}`);
    }
  }
  if (pairs.length > 1)
    throw new TlsError(
      `${dir}: more than one client certificate (${pairs.map((p) => `${p}.cert`).join(", ")}); keep one`,
    );
  const pair = pairs[0];
  return {
    ...(ca.length ? { ca } : {}),
    ...(pair !== undefined ? { cert: read(`${pair}.cert`), key: read(`${pair}.key`) } : {}),
  };
}

/** A directory's TLS settings, read when first used. */
export function certDirTls(dir: string): RegistryTls {
  return { source: dir, load: () => readCertDir(dir) };
}

/** The certs.d roots searched, in order, for an environment. */
export function certsDRoots(env: Record<string, string | undefined> = process.env): string[] {
  const config = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return [join(config, "containers", "certs.d"), "/etc/containers/certs.d", "/etc/docker/certs.d"];
}

/**
 * The certs.d lookup: a registry's directory is `<root>/<host:port>/` in the first root that has one.
 * Directory names carry no scheme and no path, so a registry name that is not a plain `host[:port]`
 * finds nothing.
 */
export function certsDLookup(roots: readonly string[] = certsDRoots()): RegistryTlsLookup {
  return (registry) => {
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(registry)) return undefined;
    for (const root of roots) {
      const dir = join(root, registry);
      try {
        if (existsSync(dir) && statSync(dir).isDirectory()) return certDirTls(dir);
      } catch {
        // unreadable: as if absent, like the containers tools
      }
    }
    return undefined;
  };
}

/**
 * Handshake failures by error code → what they mean, for the one message a user sees. Node names
 * OpenSSL 3's alerts `ERR_SSL_SSL/TLS_ALERT_*` (OpenSSL 1.1: `ERR_SSL_SSLV3_ALERT_*`, `ERR_SSL_TLSV1_ALERT_*`):
 * alerts are matched by the part after `ALERT_`.
 */
const SERVER_CERT: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "its certificate is signed by an unknown authority",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "its certificate is signed by an unknown authority",
  UNABLE_TO_GET_ISSUER_CERT: "its certificate is signed by an unknown authority",
  SELF_SIGNED_CERT_IN_CHAIN: "its certificate is signed by an unknown authority (self-signed in the chain)",
  DEPTH_ZERO_SELF_SIGNED_CERT: "its certificate is self-signed and not trusted",
  CERT_HAS_EXPIRED: "its certificate has expired",
  CERT_NOT_YET_VALID: "its certificate is not valid yet",
  CERT_REVOKED: "its certificate is revoked",
  ERR_TLS_CERT_ALTNAME_INVALID: "its certificate is not valid for this host name",
};
/** Alerts the server sends about the client's certificate (Go's distribution sends "bad certificate" for a missing one). */
const CLIENT_ALERTS: Record<string, string> = {
  CERTIFICATE_REQUIRED: "it requires a client certificate",
  BAD_CERTIFICATE: "it requires a client certificate, or refused the one presented",
  UNKNOWN_CA: "it does not trust the client certificate (unknown CA)",
  CERTIFICATE_EXPIRED: "it refused the client certificate: expired",
  CERTIFICATE_UNKNOWN: "it refused the client certificate",
  CERTIFICATE_REVOKED: "it refused the client certificate: revoked",
  UNSUPPORTED_CERTIFICATE: "it refused the client certificate: unsupported",
  ACCESS_DENIED: "it refused the client certificate (access denied)",
  HANDSHAKE_FAILURE: "it refused the handshake (a client certificate may be required)",
};
const NOT_TLS: Record<string, string> = {
  ERR_SSL_WRONG_VERSION_NUMBER: "it does not speak TLS on this port (a plain-http registry?)",
  ERR_SSL_PACKET_LENGTH_TOO_LONG: "it does not speak TLS on this port (a plain-http registry?)",
  ERR_SSL_HTTP_REQUEST: "it does not speak TLS on this port (a plain-http registry?)",
};

/** Advice per kind of failure: where the user changes what was wrong. */
const HINT = {
  server:
    'trust its CA with --ca-file or a *.crt in its certificate directory (on AWS: "ca" in its TLS secret), or --tls-verify=false',
  client:
    'give a client certificate, X.cert + X.key in its certificate directory: --cert-dir, --src-cert-dir, --dest-cert-dir, or certs.d/<host:port>/ (on AWS: "cert" and "key" in its TLS secret)',
  plain: "use --plain-http for a registry that speaks plain http",
};

/**
 * What a TLS handshake failure means, or undefined when `err` (or its causes) is not one. `reason`
 * says what the registry or its certificate did; `hint` where to fix it.
 */
export function tlsFailure(err: unknown): { reason: string; hint: string; code: string } | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: string }).code;
    if (code) {
      if (SERVER_CERT[code]) return { reason: SERVER_CERT[code], hint: HINT.server, code };
      const alert = /^ERR_SSL_.*_ALERT_([A-Z_]+)$/.exec(code)?.[1];
      if (alert && CLIENT_ALERTS[alert]) return { reason: CLIENT_ALERTS[alert], hint: HINT.client, code };
      if (NOT_TLS[code]) return { reason: NOT_TLS[code], hint: HINT.plain, code };
      if (code.startsWith("ERR_SSL_"))
        return { reason: `the TLS handshake failed (${code})`, hint: HINT.server, code };
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
