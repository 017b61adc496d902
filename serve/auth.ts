/**
 * Basic authentication against an htpasswd file of bcrypt hashes (`user:$2y$...`, as written by
 * `htpasswd -B`). Successful checks are cached (by a sha256 of the credentials) because bcrypt is
 * slow on purpose and clients send the header with every request.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";

/** Checks an `Authorization` header value. */
export type Authenticator = (authorization: string | undefined) => Promise<boolean>;

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

/** Loads an htpasswd file and returns the checker. */
export async function loadHtpasswd(path: string): Promise<Authenticator> {
  const users = parseHtpasswd(await readFile(path, "utf8"));
  // Loaded only when auth is configured.
  const bcrypt = (await import("bcryptjs")).default;
  const verified = new Set<string>();
  // Compared against for unknown users (at the cost of the real hashes), so that timing does not
  // reveal which users exist.
  const cost = Number(/^\$2[aby]?\$(\d\d)\$/.exec(users.values().next().value ?? "")?.[1] ?? 10);
  const dummy = await bcrypt.hash("ferry-dummy-password", cost);

  return async (authorization) => {
    if (!authorization) return false;
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
    if (!m) return false;
    const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const hash = users.get(user);
    const key = createHash("sha256")
      .update(`${user}\0${password}\0${hash ?? ""}`)
      .digest("hex");
    if (verified.has(key)) return true;
    const ok = await bcrypt.compare(password, hash ?? dummy);
    if (ok && hash) {
      verified.add(key);
      return true;
    }
    return false;
  };
}
