import { CfnOutput, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { type FerryConfig, toTransferProps } from "./config.ts";
import { EcrEventForwarder, type EcrEventForwarderProps } from "./constructs/ecr-events.ts";
import { ImageTransfer } from "./constructs/image-transfer.ts";
import type { ImageTransferProps } from "./constructs/props.ts";

export interface FerryStackProps extends StackProps {
  /**
   * ferry's configuration.
   * @default every ImageTransfer default: API and workflows, no promotion, no schedules
   */
  readonly transfer?: ImageTransferProps;
  /**
   * The same settings as JSON-friendly values (cdk.json context or a file); converted in this stack's
   * scope (imported buckets, keys, topics). Exclusive with `transfer`.
   * @default none
   */
  readonly config?: FerryConfig;
}

/**
 * The whole of ferry in one stack. It has no `env` and makes no lookups, so `cdk synth` needs no
 * credentials; `cdk deploy` binds it to the account and region of the credentials in use.
 */
export class FerryStack extends Stack {
  public readonly transfer: ImageTransfer;

  constructor(scope: Construct, id: string, props: FerryStackProps = {}) {
    super(scope, id, {
      description: "ferry: copy container images between registries with Lambda and Step Functions",
      ...props,
    });
    if (props.transfer && props.config) {
      throw new Error(
        "FerryStack: give either transfer (construct props) or config (JSON settings), not both",
      );
    }
    this.transfer = new ImageTransfer(
      this,
      "Transfer",
      props.transfer ?? toTransferProps(this, props.config ?? {}),
    );

    new CfnOutput(this, "ApiUrl", {
      description: "Base URL of the transfers API (SigV4, execute-api): POST transfers, GET transfers/{id}",
      value: this.transfer.api.url,
    });
    new CfnOutput(this, "StagingBucketName", {
      description: "Staging bucket (transient blob copies, bulk item lists and results)",
      value: this.transfer.stagingBucket.bucketName,
    });
    new CfnOutput(this, "CopyImageStateMachineArn", {
      description: "Copy-image state machine",
      value: this.transfer.copyImage.stateMachineArn,
    });
    new CfnOutput(this, "BulkMigrateStateMachineArn", {
      description: "Bulk-migrate state machine",
      value: this.transfer.bulkMigrate.stateMachineArn,
    });
    // Secrets created for registries: fill them with {"username","password"} after deploying.
    let index = 0;
    for (const [host, secret] of this.transfer.registrySecrets.secrets) {
      if (!this.transfer.registrySecrets.created.has(host)) continue;
      new CfnOutput(this, `RegistrySecret${index++}`, {
        description: `Secret to fill with the credentials of ${host} ({"username","password"})`,
        value: secret.secretArn,
      });
    }
    if (this.transfer.benchFanout) {
      new CfnOutput(this, "BenchFanoutStateMachineArn", {
        description: "Load-test fan-out state machine (ferry bench)",
        value: this.transfer.benchFanout.stateMachineArn,
      });
    }
    if (this.transfer.operations.dashboard) {
      new CfnOutput(this, "DashboardName", { value: this.transfer.operations.dashboard.dashboardName });
    }
  }
}

export interface EcrForwarderStackProps extends StackProps {
  readonly forwarder: EcrEventForwarderProps;
}

/** Deployed in a source account: forwards its ECR push events to ferry's account (cross-account promotion). */
export class EcrForwarderStack extends Stack {
  constructor(scope: Construct, id: string, props: EcrForwarderStackProps) {
    super(scope, id, {
      description: "ferry: forward ECR push events to the account that promotes them",
      ...props,
    });
    new EcrEventForwarder(this, "Forwarder", props.forwarder);
  }
}
