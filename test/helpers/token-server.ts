/**
 * A small token server for tests, implementing the Docker registry token authentication spec
 * (distribution docs/spec/auth/token.md) well enough for CNCF distribution 2.8.
 *
 * - GET /token?service=S&scope=repository:NAME:pull,push&scope=registry:catalog:*
 *   with optional Basic credentials. A valid user gets every requested action; an anonymous
 *   request gets only the `pull` actions; a wrong password (or unknown user) gets 401.
 * - GET /requests answers the recorded requests as JSON (so tests running in a worker can look at
 *   the token server started by the global setup); DELETE /requests resets them.
 *
 * Tokens are ES256 JWTs whose header carries an `x5c` chain (one self-signed certificate). The
 * registry is configured with that certificate as `rootcertbundle`, so it can verify the chain and
 * then the signature. Nothing here logs secrets (passwords or tokens).
 */
import { execFileSync } from "node:child_process";
import { randomUUID, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { importPKCS8, SignJWT } from "jose";

/** The JSON-serialisable facts a client needs about a token server. */
export interface TokenServerInfo {
  /** The realm the registry advertises, e.g. "http://127.0.0.1:41234/token". */
  realm: string;
  /** The `service` the registry advertises and the token's `aud`. */
  service: string;
  /** The token's `iss`, which the registry checks. */
  issuer: string;
  /** GET: the recorded requests as JSON; DELETE: reset them. */
  requestsUrl: string;
}

/** One request to the token endpoint, as recorded. Never holds a password or token. */
export interface TokenRequest {
  /** The `scope` parameters, in order (a parameter holding several space-separated scopes is split). */
  scopes: string[];
  /** The Basic-auth user, if credentials were sent (even wrong ones). */
  user?: string;
  /** The `service` parameter, if any. */
  service?: string;
  /** The HTTP status answered: 200, 400 (bad service/scope) or 401 (bad credentials). */
  status: number;
  /** What was granted (only for 200). */
  granted?: AccessEntry[];
}

export interface AccessEntry {
  type: string;
  /** The resource class, e.g. "plugin" in "repository(plugin):name:pull". */
  class?: string;
  name: string;
  actions: string[];
}

export interface TokenServer extends TokenServerInfo {
  /** The server's base URL, "http://127.0.0.1:PORT". */
  url: string;
  /** PEM file with the certificate the registry must trust (`auth.token.rootcertbundle`). */
  rootCertPath: string;
  /** Every request to /token since start or the last reset(). */
  readonly requests: TokenRequest[];
  /** Lifetime of new tokens (`exp - iat` and `expires_in`). Mutable, for refresh tests. */
  ttlSeconds: number;
  /**
   * Added to the signed `exp` only, not to `expires_in`: a negative value issues tokens the client
   * believes valid for `ttlSeconds` while the registry stops accepting them sooner (distribution allows
   * 60 s of leeway past `exp`). Mutable, for tests of tokens that expire mid-transfer.
   */
  expOffsetSeconds: number;
  /** The last token issued (in-process only, never served over HTTP). */
  readonly lastToken: string | undefined;
  reset(): void;
  close(): Promise<void>;
}

export interface TokenServerOptions {
  /** user → password. Every listed user gets every action it asks for. */
  users: Record<string, string>;
  /** Default 300. */
  ttlSeconds?: number;
  /** Default "ferry-test-registry". */
  service?: string;
  /** Default "ferry-test-token-issuer". */
  issuer?: string;
  /** Directory for the key and certificate; a temp dir (removed on close) if absent. */
  dir?: string;
  /** Anonymous requests get pull actions (true, default) or 401 (false). */
  allowAnonymous?: boolean;
}

interface KeyMaterial {
  keyPath: string;
  certPath: string;
  /** base64 (standard, not URL) DER of the certificate, for the `x5c` header. */
  x5c: string;
}

/** EC P-256 key and a self-signed certificate, made with the openssl CLI. */
function makeKeyMaterial(dir: string): KeyMaterial {
  const keyPath = join(dir, "token-signing.key");
  const certPath = join(dir, "token-signing.crt");
  const openssl = process.env.FERRY_OPENSSL_BIN ?? "openssl";
  try {
    execFileSync(
      openssl,
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        keyPath,
        "-out",
        certPath,
        "-days",
        "2",
        "-subj",
        "/CN=ferry-test-token-signer",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? "";
    throw new Error(
      `could not create the token server's key and certificate with '${openssl}' ` +
        `(install it with: apt-get install -y openssl): ${(err as Error).message}\n${stderr}`,
    );
  }
  const x5c = new X509Certificate(readFileSync(certPath)).raw.toString("base64");
  return { keyPath, certPath, x5c };
}

/**
 * Parses "type:name:actions" (type may carry a "(class)" suffix; name may contain ':' — the actions
 * are after the last ':'). Returns undefined for malformed scopes.
 */
export function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || last === first || last === scope.length - 1) return undefined;
  const typeAndClass = /^([^()]+)(?:\(([^()]*)\))?$/.exec(scope.slice(0, first));
  if (!typeAndClass) return undefined;
  const type = typeAndClass[1]!;
  const resourceClass = typeAndClass[2];
  const name = scope.slice(first + 1, last);
  const actions = scope
    .slice(last + 1)
    .split(",")
    .map((a) => a.trim())
    .filter((a) => a !== "");
  if (name === "" || actions.length === 0) return undefined;
  return resourceClass ? { type, class: resourceClass, name, actions } : { type, name, actions };
}

type Credentials = { user: string; password: string } | undefined;

function parseBasic(header: string | undefined): Credentials | "malformed" {
  if (header === undefined) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return "malformed";
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return "malformed";
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(data),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(data);
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const service = opts.service ?? "ferry-test-registry";
  const issuer = opts.issuer ?? "ferry-test-token-issuer";
  const allowAnonymous = opts.allowAnonymous ?? true;
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "ferry-token-"));
  const material = makeKeyMaterial(dir);
  const privateKey = await importPKCS8(readFileSync(material.keyPath, "utf8"), "ES256");

  const requests: TokenRequest[] = [];
  const state: { ttlSeconds: number; expOffsetSeconds: number; lastToken?: string } = {
    ttlSeconds: opts.ttlSeconds ?? 300,
    expOffsetSeconds: 0,
  };

  async function handleToken(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const rawScopes = url.searchParams
      .getAll("scope")
      .flatMap((s) => s.split(" "))
      .filter((s) => s !== "");
    const serviceParam = url.searchParams.get("service") ?? undefined;
    const creds = parseBasic(req.headers.authorization);
    const record: TokenRequest = { scopes: rawScopes, status: 0 };
    if (serviceParam !== undefined) record.service = serviceParam;
    if (creds !== undefined && creds !== "malformed") record.user = creds.user;
    requests.push(record);

    const fail = (status: number, code: string, message: string) => {
      record.status = status;
      const headers: Record<string, string> =
        status === 401 ? { "www-authenticate": `Basic realm="ferry-test-token"` } : {};
      sendJson(res, status, { errors: [{ code, message }], details: message }, headers);
    };

    if (serviceParam !== undefined && serviceParam !== service) {
      return fail(
        400,
        "INVALID_REQUEST",
        `unknown service ${JSON.stringify(serviceParam)}; expected ${service}`,
      );
    }
    if (creds === "malformed") return fail(401, "UNAUTHORIZED", "malformed Basic credentials");
    let authenticated = false;
    if (creds !== undefined) {
      const expected = Object.hasOwn(opts.users, creds.user) ? opts.users[creds.user] : undefined;
      if (expected === undefined || expected !== creds.password) {
        return fail(401, "UNAUTHORIZED", "invalid username or password");
      }
      authenticated = true;
    } else if (!allowAnonymous) {
      return fail(401, "UNAUTHORIZED", "authentication required");
    }

    const granted: AccessEntry[] = [];
    for (const scope of rawScopes) {
      const entry = parseScope(scope);
      if (entry === undefined)
        return fail(400, "INVALID_REQUEST", `malformed scope ${JSON.stringify(scope)}`);
      const actions = authenticated ? entry.actions : entry.actions.filter((a) => a === "pull");
      if (actions.length > 0) granted.push({ ...entry, actions: [...new Set(actions)] });
    }

    const now = Math.floor(Date.now() / 1000);
    const ttl = state.ttlSeconds;
    const token = await new SignJWT({ access: granted })
      .setProtectedHeader({ alg: "ES256", typ: "JWT", x5c: [material.x5c] })
      .setIssuer(issuer)
      .setSubject(authenticated && creds ? creds.user : "")
      // A plain string: distribution 2.8 declares `aud` as a string in its claim set.
      .setAudience(service)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + ttl + state.expOffsetSeconds)
      .setJti(randomUUID())
      .sign(privateKey);
    record.status = 200;
    record.granted = granted;
    state.lastToken = token;
    sendJson(res, 200, {
      token,
      access_token: token,
      expires_in: ttl,
      issued_at: new Date(now * 1000).toISOString(),
    });
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname === "/token" && req.method === "GET") {
      handleToken(req, res, url).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { errors: [{ code: "UNKNOWN", message: String(err) }] });
        else res.destroy();
      });
      return;
    }
    if (url.pathname === "/requests") {
      if (req.method === "GET") return sendJson(res, 200, requests);
      if (req.method === "DELETE") {
        requests.length = 0;
        res.writeHead(204).end();
        return;
      }
    }
    sendJson(res, 404, { errors: [{ code: "NOT_FOUND", message: `${req.method} ${url.pathname}` }] });
  });
  // Do not let idle keep-alive sockets hold close() up.
  server.keepAliveTimeout = 1000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  let closed = false;

  return {
    url: base,
    realm: `${base}/token`,
    requestsUrl: `${base}/requests`,
    service,
    issuer,
    rootCertPath: material.certPath,
    requests,
    get ttlSeconds() {
      return state.ttlSeconds;
    },
    set ttlSeconds(v: number) {
      state.ttlSeconds = v;
    },
    get expOffsetSeconds() {
      return state.expOffsetSeconds;
    },
    set expOffsetSeconds(v: number) {
      state.expOffsetSeconds = v;
    },
    get lastToken() {
      return state.lastToken;
    },
    reset() {
      requests.length = 0;
    },
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
