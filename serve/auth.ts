/**
 * Basic authentication against an htpasswd file of bcrypt hashes (`user:$2y$...`, as written by
 * `htpasswd -B`). bcrypt is slow on purpose, and clients send the header with every request, so a
 * check goes, in order:
 *
 * 1. no or malformed header → 401 with the challenge (free: the normal first step of a client);
 * 2. credentials verified before → admitted (a keyed hash in a bounded cache; even from a throttled
 *    address, since only someone who knows the password can hit it);
 * 3. the same credentials being checked right now → wait for that check (a client's parallel
 *    requests cost one bcrypt, not one each);
 * 4. the client's attempt budget spent → 429 TOOMANYREQUESTS with Retry-After, no bcrypt;
 * 5. bcrypt in a worker thread (bcrypt-pool.ts); every worker busy and the queue full → 503 with
 *    Retry-After. A success is cached and gives the attempt back; a failure → 401 and stays counted.
 */
import { createHmac, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { BcryptPool, PoolBusyError } from "./bcrypt-pool.ts";
import { RegistryError } from "./errors.ts";
import { AttemptLimiter } from "./limits.ts";

/** Checks the credentials of requests. */
export interface Authenticator {
  /**
   * Resolves when `authorization` (the header's value) carries valid credentials; otherwise throws
   * a RegistryError: 401 UNAUTHORIZED, 429 TOOMANYREQUESTS (`client` is over its attempt budget) or
   * 503 UNAVAILABLE (too many checks waiting).
   */
  check(authorization: string | undefined, client: string): Promise<void>;
  /** Stops the bcrypt workers. */
  close(): Promise<void>;
}

export interface AuthOptions {
  /** Unconfirmed attempts per client within `windowMs`. */
  attempts: number;
  windowMs: number;
  workers: number;
  queue: number;
  cacheSize: number;
  now: () => number;
}

/** Parses htpasswd text into user → bcrypt hash; other hash formats are refused. */
export function parseHtpasswd(text: string): Map<string, string> {
  const users = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error("htpasswd: malformed line (expected user:hash)");
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (!/^\$2[aby]?\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
      throw new Error(`htpasswd: user ${user} does not have a bcrypt hash (use htpasswd -B)`);
    }
    users.set(user, hash);
  }
  return users;
}

/** Loads an htpasswd file and returns the checker (its workers start with the first check). */
export async function loadHtpasswd(path: string, opts: AuthOptions): Promise<Authenticator> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new Error(`htpasswd: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return createAuthenticator(parseHtpasswd(text), opts);
}

function parseBasic(authorization: string | undefined): { user: string; password: string } | undefined {
  if (!authorization) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The checker over parsed htpasswd entries (user → bcrypt hash). */
export function createAuthenticator(users: Map<string, string>, opts: AuthOptions): Authenticator {
  const pool = new BcryptPool(opts.workers, opts.queue);
  const limiter = new AttemptLimiter(opts.attempts, opts.windowMs, opts.now);
  // Cache keys are HMACs under a key that never leaves this process: the cache holds neither a
  // password nor a plain hash of one that could be attacked offline. The stored bcrypt hash is part
  // of the input, so an entry stops matching if the user's hash changes.
  const secret = randomBytes(32);
  const verified = new Map<string, true>();
  const checking = new Map<string, Promise<boolean>>();
  // Unknown users are compared against a real hash (then refused), so that timing does not reveal
  // which users exist.
  const decoy: string | undefined = users.values().next().value;

  const unauthorized = () =>
    new RegistryError("UNAUTHORIZED", { headers: { "WWW-Authenticate": 'Basic realm="ferry"' } });

  const remember = (key: string) => {
    if (opts.cacheSize === 0) return;
    verified.delete(key);
    if (verified.size >= opts.cacheSize) verified.delete(verified.keys().next().value!);
    verified.set(key, true);
  };

  const verify = async (password: string, hash: string | undefined, client: string): Promise<boolean> => {
    let ok: boolean;
    try {
      if (hash !== undefined) ok = await pool.verify(password, hash);
      else {
        if (decoy !== undefined) await pool.verify(password, decoy);
        ok = false;
      }
    } catch (err) {
      // Not the client's failure: the attempt is given back.
      limiter.refund(client);
      if (err instanceof PoolBusyError) {
        throw new RegistryError("UNAVAILABLE", {
          message: err.closed
            ? "the registry is shutting down"
            : "too many authentication checks in progress",
          headers: { "Retry-After": "1" },
        });
      }
      throw err;
    }
    if (ok) limiter.refund(client);
    return ok;
  };

  return {
    async check(authorization, client) {
      const creds = parseBasic(authorization);
      if (!creds) throw unauthorized();
      const hash = users.get(creds.user);
      const key = createHmac("sha256", secret)
        .update(`${creds.user}\0${creds.password}\0${hash ?? ""}`)
        .digest("base64");
      if (verified.has(key)) {
        remember(key);
        return;
      }
      let pending = checking.get(key);
      if (!pending) {
        const waitMs = limiter.take(client);
        if (waitMs > 0) {
          throw new RegistryError("TOOMANYREQUESTS", {
            message: "too many failed authentication attempts from this address",
            headers: { "Retry-After": String(Math.max(1, Math.ceil(waitMs / 1000))) },
          });
        }
        pending = verify(creds.password, hash, client);
        checking.set(key, pending);
        const done = () => checking.delete(key);
        pending.then(done, done);
      }
      if (!(await pending)) throw unauthorized();
      remember(key);
    },
    close: () => pool.close(),
  };
}
