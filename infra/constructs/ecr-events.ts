import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import { Construct } from "constructs";

/** A pattern value: exact match, or EventBridge `wildcard` matching when it contains `*`. */
const matcher = (value: string): unknown => (value.includes("*") ? { wildcard: value } : value);

/**
 * The event pattern of successful ECR pushes to the named repositories (and tags). ECR emits
 * `source: aws.ecr`, `detail-type: ECR Image Action` with `action-type`, `result`, `repository-name`,
 * `image-tag` and `image-digest` (https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-eventbridge.html).
 * Without a tag list, only pushes that carry a tag match: a digest-only push has nothing to promote to.
 */
export function ecrPushPattern(
  repositories: readonly string[],
  tags: readonly string[] | undefined,
  accounts?: readonly string[],
): events.EventPattern {
  return {
    source: ["aws.ecr"],
    detailType: ["ECR Image Action"],
    ...(accounts && accounts.length > 0 ? { account: [...accounts] } : {}),
    detail: {
      "action-type": ["PUSH"],
      result: ["SUCCESS"],
      "repository-name": repositories.map(matcher),
      "image-tag": tags && tags.length > 0 ? tags.map(matcher) : [{ exists: true }],
    },
  };
}

export interface EcrEventForwarderProps {
  /**
   * ARN of the event bus in ferry's account that receives the events, usually its default bus:
   * `arn:aws:events:<region>:<ferry account>:event-bus/default`. ferry's stack must list this account in
   * `promotion.sourceAccounts` so that the bus policy lets it put events.
   */
  readonly targetEventBusArn: string;
  /** ECR repository names whose pushes are forwarded (`*` wildcards allowed). */
  readonly repositories: readonly string[];
  /**
   * Tags whose pushes are forwarded.
   * @default every tagged push
   */
  readonly tags?: readonly string[];
}

const EVENT_BUS_ARN = /^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/[A-Za-z0-9._\-/]+$/;

/**
 * Deploy in the account whose ECR pushes should be promoted by ferry running in another account:
 * EventBridge cannot start a state machine in another account, so a rule here forwards the push
 * events to ferry's event bus, where ferry's own promotion rule picks them up (platform-notes, AWS).
 */
export class EcrEventForwarder extends Construct {
  public readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: EcrEventForwarderProps) {
    super(scope, id);
    if (!EVENT_BUS_ARN.test(props.targetEventBusArn)) {
      throw new Error(
        `EcrEventForwarder: targetEventBusArn is not an event bus ARN: ${props.targetEventBusArn}`,
      );
    }
    if (props.repositories.length === 0) {
      throw new Error("EcrEventForwarder: repositories must name at least one ECR repository");
    }
    this.rule = new events.Rule(this, "Rule", {
      description: "ferry: forward ECR push events to the account that promotes them",
      eventPattern: ecrPushPattern(props.repositories, props.tags),
    });
    // The target creates a role allowed to events:PutEvents on that bus only.
    this.rule.addTarget(
      new targets.EventBus(events.EventBus.fromEventBusArn(this, "TargetBus", props.targetEventBusArn), {}),
    );
  }
}
