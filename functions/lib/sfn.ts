/**
 * Step Functions behind the triggers' `Executions` interface (shared/workflow/triggers.ts). The client is
 * imported by name, statically: esbuild keeps all of a package that is `import()`ed (see
 * shared/aws/credentials.ts).
 */
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import type { ExecutionDescription, Executions } from "../../shared/workflow/triggers.ts";
import { executionArnFor } from "../../shared/workflow/triggers.ts";

/** The few SFN client calls used, so tests can pass a fake with the same shape. */
export interface SfnLike {
  send(command: unknown): Promise<unknown>;
}

export async function sfnExecutions(client?: SfnLike): Promise<Executions> {
  const sfn: SfnLike = client ?? (new SFNClient({}) as SfnLike);
  return {
    async start({ stateMachineArn, name, input }) {
      try {
        const res = (await sfn.send(new StartExecutionCommand({ stateMachineArn, name, input }))) as {
          executionArn?: string;
        };
        return {
          executionArn: res.executionArn ?? executionArnFor(stateMachineArn, name),
          alreadyExists: false,
        };
      } catch (e) {
        if ((e as Error).name === "ExecutionAlreadyExists")
          return { executionArn: executionArnFor(stateMachineArn, name), alreadyExists: true };
        throw e;
      }
    },
    async describe(executionArn): Promise<ExecutionDescription | undefined> {
      try {
        const r = (await sfn.send(new DescribeExecutionCommand({ executionArn }))) as {
          status?: string;
          startDate?: Date;
          stopDate?: Date;
          output?: string;
          error?: string;
          cause?: string;
        };
        return {
          status: r.status ?? "UNKNOWN",
          ...(r.startDate ? { startDate: r.startDate.toISOString() } : {}),
          ...(r.stopDate ? { stopDate: r.stopDate.toISOString() } : {}),
          ...(r.output ? { output: r.output } : {}),
          ...(r.error ? { error: r.error } : {}),
          ...(r.cause ? { cause: r.cause } : {}),
        };
      } catch (e) {
        if ((e as Error).name === "ExecutionDoesNotExist") return undefined;
        throw e;
      }
    },
  };
}
