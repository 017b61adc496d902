/** The staging bucket: how long staged objects live, what happens to the bucket, its logs and its key. */
import { RemovalPolicy } from "aws-cdk-lib";
import type * as kms from "aws-cdk-lib/aws-kms";
import type * as s3 from "aws-cdk-lib/aws-s3";
import { fail } from "./common.ts";

export interface StagingSettings {
  /**
   * Days after which staged objects expire. Incomplete multipart uploads are always aborted after 1 day.
   * @default 1
   */
  readonly stagingExpirationDays?: number;
  /**
   * Removal policy of the staging bucket. It only holds transient copies that expire, so `DESTROY` is
   * safe; `RETAIN` (the default) keeps it after `cdk destroy` and its lifecycle rule empties it.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Empty the staging bucket when the stack is deleted (a CDK custom resource; needs `DESTROY`).
   * @default false
   */
  readonly autoDeleteObjects?: boolean;
  /**
   * Where the staging bucket's S3 server access logs go. `false` disables them (cdk-nag S1 is then
   * suppressed with that reason).
   * @default a dedicated, encrypted, SSL-only log bucket whose objects expire after 90 days
   */
  readonly accessLogsBucket?: s3.IBucket | false;
  /**
   * Customer-managed KMS key for the staging bucket.
   * @default SSE-S3 (S3-managed keys)
   */
  readonly encryptionKey?: kms.IKey;
}

export interface ResolvedStaging {
  readonly stagingExpirationDays: number;
  readonly removalPolicy: RemovalPolicy;
  readonly autoDeleteObjects: boolean;
  readonly accessLogsBucket: s3.IBucket | false | undefined;
  readonly encryptionKey: kms.IKey | undefined;
}

export function resolveStaging(props: StagingSettings): ResolvedStaging {
  const stagingExpirationDays = props.stagingExpirationDays ?? 1;
  if (!Number.isInteger(stagingExpirationDays) || stagingExpirationDays < 1) {
    fail(`stagingExpirationDays must be a whole number of days >= 1, got ${stagingExpirationDays}`);
  }

  const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
  const autoDeleteObjects = props.autoDeleteObjects ?? false;
  if (autoDeleteObjects && removalPolicy !== RemovalPolicy.DESTROY) {
    fail("autoDeleteObjects needs removalPolicy: RemovalPolicy.DESTROY");
  }
  return {
    stagingExpirationDays,
    removalPolicy,
    autoDeleteObjects,
    accessLogsBucket: props.accessLogsBucket,
    encryptionKey: props.encryptionKey,
  };
}
