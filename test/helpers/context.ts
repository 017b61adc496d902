import type { AuthMode } from "./distribution.ts";

/** The JSON-serialisable facts about one registry started by the global setup. */
export interface RegistryInfo {
  /** "127.0.0.1:PORT" */
  host: string;
  /** "http://127.0.0.1:PORT" */
  url: string;
  auth: AuthMode;
  /** For "basic" and "token". */
  username?: string;
  /** For "basic" and "token". */
  password?: string;
  /** The registry's filesystem storage root (read-only use, please: the registry is shared). */
  storageDir: string;
  /** For "token". */
  token?: {
    realm: string;
    service: string;
    issuer: string;
    /** GET: JSON array of TokenRequest (scopes, user, service, status, granted); DELETE: reset. */
    requestsUrl: string;
  };
}

export interface Registries {
  anon: RegistryInfo;
  basic: RegistryInfo;
  token: RegistryInfo;
  /** ferry's own embedded registry (serve/), anonymous. */
  serve: RegistryInfo;
}

declare module "vitest" {
  export interface ProvidedContext {
    registries: Registries;
  }
}
