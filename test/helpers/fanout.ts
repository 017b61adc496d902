/**
 * `ferry bench --state-machine` in the tests: only the Step Functions control plane is stood in for.
 * StartExecution runs the deployed fan-out definition locally (load/fanout.ts, aws-local-stepfunctions)
 * with the real Lambda handlers, which hand their results over in a real S3 server (s3rver); the process
 * environment is the one those handlers get on AWS.
 */
import { executeFanout, type FanoutInput } from "../../load/fanout.ts";
import { aggregateHandler, workerHandler } from "../../load/lambda.ts";
import type { startS3 } from "./s3.ts";

export const FANOUT_ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:ferry-bench-fanout";

/** A Step Functions client whose StartExecution runs the fan-out here; it records every command. */
export function localFanout() {
  const commands: { name: string; input: Record<string, unknown> }[] = [];
  let execution: Promise<unknown> | undefined;
  let output: string | undefined;
  return {
    commands,
    /** The execution's output once it succeeded. */
    output: () => output,
    /** Waits for the execution StartExecution began. */
    settled: () => execution,
    sfn: {
      async send(command: { input: unknown }) {
        const name = command.constructor.name;
        const input = command.input as Record<string, unknown>;
        commands.push({ name, input });
        if (name === "StartExecutionCommand") {
          // the execution input exactly as the CLI sent it, through the definition, to the Lambda handlers
          const started = JSON.parse(input.input as string) as FanoutInput;
          execution = executeFanout(started, workerHandler, aggregateHandler).then((o) => {
            output = JSON.stringify(o);
          });
          execution.catch(() => undefined);
          return { executionArn: `${FANOUT_ARN.replace(":stateMachine:", ":execution:")}:${input.name}` };
        }
        return output ? { status: "SUCCEEDED", output } : { status: "RUNNING" };
      },
    },
  };
}

/**
 * Sets the environment the bench functions get on AWS — the staging bucket (the S3 server), its
 * credentials, and `privateRegistry` declared private (the functions connect to public addresses only,
 * and the test registry is on loopback) — and returns what restores the previous one.
 */
export function fanoutEnvironment(
  s3: Awaited<ReturnType<typeof startS3>>,
  privateRegistry: string,
): () => void {
  const saved = { ...process.env };
  Object.assign(process.env, {
    STAGING_BUCKET: s3.bucket,
    STAGING_ENDPOINT: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    PRIVATE_REGISTRIES: JSON.stringify([privateRegistry]),
  });
  return () => {
    process.env = saved;
  };
}
