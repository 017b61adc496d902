import type { Context } from "aws-lambda";
import type { ExecutionDescription, Executions } from "../../../shared/workflow/triggers.ts";
import { executionArnFor } from "../../../shared/workflow/triggers.ts";

/** A Lambda context good enough for middy and Powertools. */
export const context = {
  functionName: "ferry-test",
  functionVersion: "$LATEST",
  invokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:ferry-test",
  memoryLimitInMB: "1024",
  awsRequestId: "00000000-0000-0000-0000-000000000000",
  logGroupName: "/aws/lambda/ferry-test",
  logStreamName: "test",
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 60_000,
  done: () => {},
  fail: () => {},
  succeed: () => {},
} as unknown as Context;

/** A fake Step Functions: names are unique per state machine, as on AWS. */
export function fakeExecutions(): Executions & {
  started: { stateMachineArn: string; name: string; input: unknown }[];
  set(arn: string, d: ExecutionDescription): void;
} {
  const started: { stateMachineArn: string; name: string; input: unknown }[] = [];
  const known = new Map<string, ExecutionDescription>();
  return {
    started,
    set(arn, d) {
      known.set(arn, d);
    },
    async start({ stateMachineArn, name, input }) {
      const executionArn = executionArnFor(stateMachineArn, name);
      if (known.has(executionArn)) return { executionArn, alreadyExists: true };
      started.push({ stateMachineArn, name, input: JSON.parse(input) });
      known.set(executionArn, { status: "RUNNING", startDate: new Date(0).toISOString() });
      return { executionArn, alreadyExists: false };
    },
    async describe(arn) {
      return known.get(arn);
    },
  };
}

export const COPY_ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:ferry-copy-image";
export const BULK_ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:ferry-bulk-migrate";
