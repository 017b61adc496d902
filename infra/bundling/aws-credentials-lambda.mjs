// Stands in for @aws-sdk/credential-provider-node in the Lambda code (infra/bundling/options.ts aliases
// it here): the AWS SDK clients' default credentials, as Lambda provides them. The SDK's own default
// chain also tries AWS_PROFILE and ~/.aws files, SSO, `credential_process`, web identity tokens and the
// new console login, each loaded on first use but all bundled — with the STS, SSO, SSO-OIDC and Signin
// clients they call (~90 KiB of every function's code). In a Lambda function none of those apply: the
// runtime puts the role's credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
// which is the chain's first link. The container endpoint and instance metadata (its last link,
// remoteProvider) stay as the fallback, as the SDK does them.
//
// `defaultProvider` keeps the SDK's contract: options in, a memoised provider out, refreshed 5 minutes
// before an expiration. The path of memoizeChain is relative because the alias also captures subpaths of
// the package (credential-provider-node 3.972's; test/infra/bundles.test.ts imports this file).
import { fromEnv } from "@aws-sdk/credential-provider-env";
import { fromHttp } from "@aws-sdk/credential-provider-http";
import { CredentialsProviderError, chain } from "@smithy/core/config";
import {
  ENV_CMDS_FULL_URI,
  ENV_CMDS_RELATIVE_URI,
  fromContainerMetadata,
  fromInstanceMetadata,
} from "@smithy/credential-provider-imds";
import { memoizeChain } from "../../node_modules/@aws-sdk/credential-provider-node/dist-es/runtime/memoize-chain.js";

const FIVE_MINUTES = 300_000;

/**
 * credential-provider-node's remoteProvider, with static imports: its `import()`s made esbuild keep both
 * packages whole and unshaken, with the @smithy/core modules they reach (~18 KiB, ~5 ms of every cold
 * start). The same order: the container endpoint when one is set, else instance metadata unless disabled.
 */
function remoteProvider(init) {
  if (process.env[ENV_CMDS_RELATIVE_URI] || process.env[ENV_CMDS_FULL_URI])
    return chain(fromHttp(init), fromContainerMetadata(init));
  const disabled = process.env.AWS_EC2_METADATA_DISABLED;
  if (disabled && disabled !== "false")
    return async () => {
      throw new CredentialsProviderError("EC2 Instance Metadata Service access disabled", {
        logger: init.logger,
      });
    };
  return fromInstanceMetadata(init);
}

export const defaultProvider = (init = {}) =>
  memoizeChain(
    [
      async () => fromEnv(init)(),
      async () => remoteProvider(init)(),
      async () => {
        throw new CredentialsProviderError(
          "Could not load credentials from the environment (AWS_ACCESS_KEY_ID) nor the container or instance endpoint",
          { tryNextLink: false, logger: init.logger },
        );
      },
    ],
    (credentials) =>
      credentials?.expiration !== undefined && credentials.expiration.getTime() - Date.now() < FIVE_MINUTES,
  );
