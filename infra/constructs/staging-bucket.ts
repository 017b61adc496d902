import { Duration } from "aws-cdk-lib";
import * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import { suppress } from "../nag.ts";
import type { ResolvedStaging } from "./props/staging.ts";

/**
 * The key prefixes the workflow writes under (shared/workflow/keys.ts: `transfers/<id>/...` for copies,
 * `bulk/<id>/...` for migrations; load/results.ts: `bench/<runId>/...` for load-test results).
 * IAM grants are scoped to one of them per function; a test checks these against the code.
 */
export const STAGING_PREFIXES = { transfers: "transfers/", bulk: "bulk/", bench: "bench/" } as const;
export type StagingArea = keyof typeof STAGING_PREFIXES;

/** Access logs are kept this long (the staged data itself lives a day). */
const ACCESS_LOG_RETENTION = Duration.days(90);

/**
 * Where blobs too big for one Lambda step are staged (S3 multipart, then ranged GETs), and where bulk
 * migrations keep their item lists and results. Private, encrypted, SSL-only, and self-emptying: objects
 * expire after `stagingExpirationDays` and incomplete multipart uploads are aborted after a day.
 *
 * Removal: RETAIN by default (CDK's default for data): after `cdk destroy` the bucket stays and its
 * lifecycle rule empties it within a day or two; delete it then. DESTROY (+ autoDeleteObjects) removes
 * it with the stack.
 */
export class StagingBucket extends Construct {
  public readonly bucket: s3.Bucket;
  /** The bucket receiving server access logs, when this construct created it. */
  public readonly accessLogsBucket: s3.Bucket | undefined;

  constructor(scope: Construct, id: string, props: ResolvedStaging) {
    super(scope, id);
    // Deliver access logs through a bucket policy, not the legacy LogDeliveryWrite ACL (ACLs are
    // disabled here: BUCKET_OWNER_ENFORCED). Set on this node so the construct does not depend on the
    // app's cdk.json.
    this.node.setContext("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", true);

    let logsTarget: s3.IBucket | undefined;
    if (props.accessLogsBucket === undefined) {
      this.accessLogsBucket = new s3.Bucket(this, "AccessLogs", {
        encryption: s3.BucketEncryption.S3_MANAGED, // server access logs cannot be delivered to SSE-KMS buckets
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        minimumTLSVersion: 1.2,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycleRules: [
          {
            id: "expire-access-logs",
            expiration: ACCESS_LOG_RETENTION,
            abortIncompleteMultipartUploadAfter: Duration.days(1),
          },
        ],
        removalPolicy: props.removalPolicy,
        autoDeleteObjects: props.autoDeleteObjects,
      });
      suppress(this.accessLogsBucket, [
        [
          "AwsSolutions-S1",
          "This bucket receives the staging bucket's server access logs; logging it too would only log the logging.",
        ],
      ]);
      logsTarget = this.accessLogsBucket;
    } else if (props.accessLogsBucket !== false) {
      logsTarget = props.accessLogsBucket;
    }

    this.bucket = new s3.Bucket(this, "Bucket", {
      encryption: props.encryptionKey ? s3.BucketEncryption.KMS : s3.BucketEncryption.S3_MANAGED,
      encryptionKey: props.encryptionKey,
      // With a KMS key, S3 Bucket Keys cut KMS requests (and their cost) for every part uploaded.
      bucketKeyEnabled: props.encryptionKey !== undefined,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: false, // scratch space: every object is re-creatable from its registry
      serverAccessLogsBucket: logsTarget,
      serverAccessLogsPrefix: logsTarget ? "staging/" : undefined,
      lifecycleRules: [
        {
          id: "expire-staged-objects",
          expiration: Duration.days(props.stagingExpirationDays),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy: props.removalPolicy,
      autoDeleteObjects: props.autoDeleteObjects,
    });
    if (logsTarget === undefined) {
      suppress(this.bucket, [
        [
          "AwsSolutions-S1",
          "Server access logs disabled by the accessLogsBucket: false prop: the bucket holds transient copies of registry blobs, written and read only by ferry's own roles (CloudTrail data events can record them instead).",
        ],
      ]);
    }
  }
}
