/** HTTP Basic credentials (RFC 7617), as registries and token endpoints take them. */
import type { Credential } from "./credentials.ts";

/** `Basic base64(user:password)`, or undefined when the credential has no username and password. */
export function basicAuthorization(cred: Credential): string | undefined {
  if (!cred.username || cred.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString("base64")}`;
}
