export type { Registries, RegistryInfo } from "./context.ts";
export {
  type AuthMode,
  DEFAULT_REGISTRY_BIN,
  type DistributionOptions,
  type RunningDistribution,
  registryBinary,
  startDistribution,
  toRegistryInfo,
} from "./distribution.ts";
export { removeTmpDir, tmpDir } from "./tmp.ts";
export {
  type AccessEntry,
  parseScope,
  startTokenServer,
  type TokenRequest,
  type TokenServer,
  type TokenServerInfo,
  type TokenServerOptions,
} from "./token-server.ts";
