/**
 * What ferry's package exports for CDK apps (`import { ImageTransfer } from "ferry/infra"`): the construct,
 * the forwarder that carries ECR push events from other accounts, and the types of their props. The
 * package ships this module as JavaScript (dist/infra/index.mjs, built by scripts/build.js) with its
 * declarations (dist/types/): Node does not strip types under node_modules.
 */
export { EcrEventForwarder, type EcrEventForwarderProps } from "./constructs/ecr-events.ts";
export { ImageTransfer } from "./constructs/image-transfer.ts";
export type {
  EcrAccess,
  EcrRepositoryCreation,
  ImageTransferProps,
  MigrationSchedule,
  PromotionProps,
  ProxyProps,
  RegistryCredentials,
  RegistryTlsSecret,
} from "./constructs/props.ts";
