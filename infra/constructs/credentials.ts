import { Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import { suppress } from "../nag.ts";
import type { RegistryCredentials } from "./props/registries.ts";

/** Reading images: manifests, layer download URLs, layer existence. */
export const ECR_PULL_ACTIONS = [
  "ecr:BatchGetImage",
  "ecr:GetDownloadUrlForLayer",
  "ecr:BatchCheckLayerAvailability",
];
/** Writing images, plus the reads a push needs (skip present layers, HEAD the destination manifest). */
export const ECR_PUSH_ACTIONS = [
  "ecr:BatchCheckLayerAvailability",
  "ecr:BatchGetImage",
  "ecr:InitiateLayerUpload",
  "ecr:UploadLayerPart",
  "ecr:CompleteLayerUpload",
  "ecr:PutImage",
];
/** Listing repositories and tags, for bulk migrations. */
export const ECR_LIST_ACTIONS = ["ecr:DescribeRepositories", "ecr:ListImages", "ecr:DescribeImages"];

const COMPLETE_SECRET_ARN = /-[A-Za-z0-9]{6}$/;

/**
 * One Secrets Manager secret per registry host: existing ones imported by ARN, missing ones created
 * (holding a placeholder to replace with `{"username","password"}` after deploying). The handlers get
 * the map host → ARN as REGISTRY_SECRETS and read a secret only when that registry asks for credentials.
 * Registries with TLS settings (`tls.secretArn`, always an existing secret) are mapped as REGISTRY_TLS,
 * read when the first connection to that registry is made.
 */
export class RegistrySecrets extends Construct {
  public readonly secrets: ReadonlyMap<string, secretsmanager.ISecret>;
  /** Secrets of registries' TLS settings ({"ca","cert","key"}), by host. */
  public readonly tlsSecrets: ReadonlyMap<string, secretsmanager.ISecret>;
  /** Hosts whose secret this construct created (the others were given by ARN). */
  public readonly created = new Set<string>();
  /** Customer-managed keys of existing secrets. */
  private readonly keyArns: string[] = [];

  constructor(scope: Construct, id: string, registries: Readonly<Record<string, RegistryCredentials>>) {
    super(scope, id);
    const secrets = new Map<string, secretsmanager.ISecret>();
    let index = 0;
    const tlsSecrets = new Map<string, secretsmanager.ISecret>();
    const imported = (id: string, arn: string) =>
      COMPLETE_SECRET_ARN.test(arn)
        ? secretsmanager.Secret.fromSecretAttributes(this, id, { secretCompleteArn: arn })
        : secretsmanager.Secret.fromSecretAttributes(this, id, { secretPartialArn: arn });
    for (const [host, creds] of Object.entries(registries)) {
      const cid = `Registry${index++}`;
      if (creds.tls) {
        tlsSecrets.set(host, imported(`${cid}Tls`, creds.tls.secretArn));
        if (creds.tls.encryptionKeyArn) this.keyArns.push(creds.tls.encryptionKeyArn);
      }
      if (creds.secretArn !== undefined) {
        secrets.set(host, imported(cid, creds.secretArn));
        if (creds.encryptionKeyArn) this.keyArns.push(creds.encryptionKeyArn);
      } else if (creds.tls) {
        // listed for its TLS settings alone: no credentials secret
      } else {
        const secret = new secretsmanager.Secret(this, cid, {
          description: `ferry: credentials for ${host} as {"username","password"}; replace the placeholder after deploying`,
          generateSecretString: {
            secretStringTemplate: JSON.stringify({ username: "REPLACE_ME" }),
            generateStringKey: "password",
          },
        });
        suppress(secret, [
          [
            "AwsSolutions-SMG4",
            `Credentials for ${host} are issued by that registry (a token or password created in its own UI); Secrets Manager cannot rotate them. Rotate at the registry and put-secret-value.`,
          ],
        ]);
        secrets.set(host, secret);
        this.created.add(host);
      }
    }
    this.secrets = secrets;
    this.tlsSecrets = tlsSecrets;
  }

  /** REGISTRY_SECRETS: JSON map registry host → secret ARN. */
  public environmentValue(): string {
    const map: Record<string, string> = {};
    for (const [host, secret] of this.secrets) map[host] = secret.secretArn;
    return Stack.of(this).toJsonString(map);
  }

  /** REGISTRY_TLS (JSON map registry host → TLS secret ARN), or nothing when no registry has TLS settings. */
  public tlsEnvironment(): Record<string, string> {
    if (this.tlsSecrets.size === 0) return {};
    const map: Record<string, string> = {};
    for (const [host, secret] of this.tlsSecrets) map[host] = secret.secretArn;
    return { REGISTRY_TLS: Stack.of(this).toJsonString(map) };
  }

  /**
   * GetSecretValue/DescribeSecret on each secret, and kms:Decrypt on customer-managed keys through
   * Secrets Manager only (kms:ViaService). The key grant is written out: CDK's grant on an imported key
   * of another environment adds nothing to the role.
   */
  public grantRead(grantee: iam.IGrantable): void {
    for (const secret of [...this.secrets.values(), ...this.tlsSecrets.values()]) secret.grantRead(grantee);
    if (this.keyArns.length > 0) {
      grantee.grantPrincipal.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ["kms:Decrypt"],
          resources: [...this.keyArns],
          conditions: {
            StringEquals: { "kms:ViaService": `secretsmanager.${Stack.of(this).region}.amazonaws.com` },
          },
        }),
      );
    }
  }
}

/** Repository names in this account (or another, for promotion sources), or ARNs as given. */
export function ecrRepositoryArns(
  scope: Construct,
  repositories: readonly string[],
  account?: string,
): string[] {
  const stack = Stack.of(scope);
  return repositories.map((repo) =>
    repo.startsWith("arn:")
      ? repo
      : stack.formatArn({
          service: "ecr",
          resource: "repository",
          resourceName: repo,
          ...(account ? { account } : {}),
        }),
  );
}
