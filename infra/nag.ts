import { Stack, Validations } from "aws-cdk-lib";
import type { IConstruct } from "constructs";

/**
 * One cdk-nag acknowledgement: the rule id, the reason, and for rules that report several findings per
 * resource (IAM5, IAM4) the exact findings acknowledged (`Resource::*`, `Resource::<Bucket.Arn>/*`).
 * cdk-nag 3 matches findings exactly (no regex, no prefix): see `resourceFinding`.
 */
export type Suppression = readonly [id: string, reason: string, findings?: readonly string[]];

/**
 * Acknowledges cdk-nag rules on a construct and everything below it (cdk-nag 3 uses CDK's
 * `Validations.of(...).acknowledge`). Every acknowledgement in ferry goes through here, so
 * `grep -n "suppress(" -A3 infra` lists them all with their reasons.
 */
export function suppress(construct: IConstruct, suppressions: readonly Suppression[]): void {
  const validations = Validations.of(construct);
  for (const [id, reason, findings] of suppressions) {
    if (findings === undefined) {
      validations.acknowledge({ id, reason });
    } else {
      for (const finding of new Set(findings)) validations.acknowledge({ id: `${id}[${finding}]`, reason });
    }
  }
}

/**
 * The IAM5 finding cdk-nag reports for a policy resource: the ARN as the template will hold it,
 * flattened the way cdk-nag flattens references (`<LogicalId.Arn>`, `<AWS::Region>`). Computing it from
 * the same value the policy uses keeps an acknowledgement tied to exactly that resource.
 */
export function resourceFinding(scope: IConstruct, resource: string): string {
  return `Resource::${flatten(Stack.of(scope).resolve(resource))}`;
}

/**
 * cdk-nag's flattenCfnReference (cdk-nag/lib/utils/flatten-cfn-reference.js, not exported): a resolved
 * CloudFormation value as one string, `<LogicalId.Arn>` for GetAtt and `<AWS::Region>` for Ref.
 */
export function flatten(node: unknown): string {
  if (node === undefined) return "";
  if (typeof node === "string") return node.replace(/\$\{/g, "<").replace(/\}/g, ">");
  const o = node as Record<string, unknown>;
  if (o["Fn::Join"]) {
    const [delimiter, items] = o["Fn::Join"] as [string, unknown[]];
    return items.map(flatten).join(delimiter);
  }
  if (o["Fn::Sub"]) return flatten(o["Fn::Sub"]);
  if (o["Fn::GetAtt"]) {
    const [resource, attribute] = o["Fn::GetAtt"] as [unknown, unknown];
    return `<${flatten(resource)}.${flatten(attribute)}>`;
  }
  if (o["Fn::ImportValue"]) return flatten(o["Fn::ImportValue"]);
  if (o.Ref) return `<${flatten(o.Ref)}>`;
  return JSON.stringify(node);
}

/**
 * Actions that IAM only grants on `Resource: "*"` (the services have no resource-level permissions for
 * them), used by the negative IAM tests and named in the IAM5 acknowledgements.
 */
export const RESOURCE_STAR_ACTIONS: readonly string[] = [
  // ECR: the registry token is account-wide (https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html).
  "ecr:GetAuthorizationToken",
  // X-Ray tracing from Lambda and Step Functions.
  "xray:PutTraceSegments",
  "xray:PutTelemetryRecords",
  "xray:GetSamplingRules",
  "xray:GetSamplingTargets",
  // Step Functions logging to CloudWatch Logs goes through vended-log deliveries.
  "logs:CreateLogDelivery",
  "logs:GetLogDelivery",
  "logs:UpdateLogDelivery",
  "logs:DeleteLogDelivery",
  "logs:ListLogDeliveries",
  "logs:PutResourcePolicy",
  "logs:DescribeResourcePolicies",
  "logs:DescribeLogGroups",
];
