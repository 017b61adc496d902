import { RemovalPolicy, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import * as kms from "aws-cdk-lib/aws-kms";
import * as s3 from "aws-cdk-lib/aws-s3";
import { describe, expect, it } from "vitest";
import { FerryStack } from "../../infra/stack.ts";
import { logicalId, synth, testApp } from "./helpers.ts";

describe("staging bucket", () => {
  const { stack, template } = synth();
  const bucketId = logicalId(stack, stack.transfer.stagingBucket);

  it("is encrypted, private, SSL-only, ACL-free and unversioned", () => {
    template.hasResourceProperties("AWS::S3::Bucket", {
      BucketName: Match.absent(),
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] },
      VersioningConfiguration: Match.absent(),
      LoggingConfiguration: { DestinationBucketName: Match.anyValue(), LogFilePrefix: "staging/" },
    });
    template.hasResourceProperties("AWS::S3::BucketPolicy", {
      Bucket: { Ref: bucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: "Deny",
            Action: "s3:*",
            Principal: { AWS: "*" },
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          }),
          Match.objectLike({
            Effect: "Deny",
            Condition: { NumericLessThan: { "s3:TlsVersion": 1.2 } },
          }),
        ]),
      },
    });
  });

  it("expires staged objects and aborts incomplete multipart uploads after a day", () => {
    const bucket = template.toJSON().Resources[bucketId];
    expect(bucket.Properties.LifecycleConfiguration.Rules).toEqual([
      {
        Id: "expire-staged-objects",
        Status: "Enabled",
        ExpirationInDays: 1,
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
      },
    ]);
  });

  it("is retained by default (documented), and destroyable on request", () => {
    template.hasResource("AWS::S3::Bucket", {
      Properties: Match.objectLike({ LoggingConfiguration: Match.anyValue() }),
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
    });
    const destroyed = synth({
      removalPolicy: RemovalPolicy.DESTROY,
      autoDeleteObjects: true,
      stagingExpirationDays: 3,
    });
    const id = logicalId(destroyed.stack, destroyed.stack.transfer.stagingBucket);
    const bucket = destroyed.json.Resources[id]!;
    expect(bucket.DeletionPolicy).toBe("Delete");
    expect(bucket.Properties?.LifecycleConfiguration).toMatchObject({ Rules: [{ ExpirationInDays: 3 }] });
    destroyed.template.resourceCountIs("Custom::S3AutoDeleteObjects", 2); // staging + its log bucket
  });

  it("sends access logs to a dedicated private bucket through a bucket policy, not an ACL", () => {
    const logsId = logicalId(stack, stack.transfer.accessLogsBucket!);
    template.hasResourceProperties("AWS::S3::Bucket", {
      LoggingConfiguration: { DestinationBucketName: { Ref: logsId } },
    });
    const logs = template.toJSON().Resources[logsId];
    expect(logs.Properties.AccessControl).toBeUndefined();
    expect(logs.Properties.OwnershipControls).toEqual({
      Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }],
    });
    expect(logs.Properties.LifecycleConfiguration.Rules[0]).toMatchObject({ ExpirationInDays: 90 });
    template.hasResourceProperties("AWS::S3::BucketPolicy", {
      Bucket: { Ref: logsId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: "Allow",
            Action: "s3:PutObject",
            Principal: { Service: "logging.s3.amazonaws.com" },
            Condition: { ArnLike: { "aws:SourceArn": { "Fn::GetAtt": [bucketId, "Arn"] } } },
          }),
        ]),
      },
    });
  });

  it("can log to an existing bucket, or not at all", () => {
    const app = testApp();
    const shared = new Stack(app, "Shared");
    new kms.Key(shared, "Key", { enableKeyRotation: true }); // (a stack needs one resource)
    const external = s3.Bucket.fromBucketName(shared, "Logs", "my-logs");
    const withExternal = new FerryStack(app, "Ferry", { transfer: { accessLogsBucket: external } });
    expect(withExternal.transfer.accessLogsBucket).toBeUndefined();
    const t = Template.fromStack(withExternal);
    t.resourceCountIs("AWS::S3::Bucket", 1);
    t.hasResourceProperties("AWS::S3::Bucket", {
      LoggingConfiguration: { DestinationBucketName: "my-logs", LogFilePrefix: "staging/" },
    });
    const none = synth({ accessLogsBucket: false });
    none.template.resourceCountIs("AWS::S3::Bucket", 1);
    none.template.hasResourceProperties("AWS::S3::Bucket", { LoggingConfiguration: Match.absent() });
  });

  it("uses a customer-managed KMS key with S3 Bucket Keys when given one", () => {
    const app = testApp();
    const stack = new Stack(app, "Keys");
    const key = new kms.Key(stack, "Key", { enableKeyRotation: true });
    const ferry = new FerryStack(app, "Ferry", { transfer: { encryptionKey: key } });
    Template.fromStack(ferry).hasResourceProperties("AWS::S3::Bucket", {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms" } },
        ],
      },
    });
  });
});
