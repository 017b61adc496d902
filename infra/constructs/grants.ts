import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";

/**
 * SSE-KMS for S3 needs kms:GenerateDataKey to write (multipart parts too) and kms:Decrypt to read or to
 * complete a multipart upload. Written out because CDK's key grants use `kms:GenerateDataKey*` and
 * `kms:ReEncrypt*` wildcards. (A key whose policy delegates to IAM, as CDK's Key does, needs nothing more.)
 */
export function grantStagingKey(role: iam.IGrantable, key: kms.IKey, write: boolean): void {
  role.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: write ? ["kms:Decrypt", "kms:GenerateDataKey"] : ["kms:Decrypt"],
      resources: [key.keyArn],
    }),
  );
}
