/** What the construct logs: the retention of every log group, and what the state machines log. */
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import { LogLevel } from "aws-cdk-lib/aws-stepfunctions";
import { fail } from "./common.ts";

export interface LoggingSettings {
  /**
   * Retention of every log group the construct creates (functions, state machines, API access logs).
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * What the state machines log to CloudWatch Logs.
   * @default LogLevel.ERROR — failures only; ALL logs every state transition (cost: see README)
   */
  readonly stateMachineLogLevel?: LogLevel;
  /**
   * Whether those logs include each state's input and output. The workflows keep no secrets and no upload
   * session in their state, but the state names images and registries.
   * @default false
   */
  readonly logExecutionData?: boolean;
}

export interface ResolvedLogging {
  readonly logRetention: RetentionDays;
  readonly stateMachineLogLevel: LogLevel;
  readonly logExecutionData: boolean;
}

export function resolveLogging(props: LoggingSettings): ResolvedLogging {
  const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;
  if (!Object.values(RetentionDays).includes(logRetention)) {
    fail(`logRetention must be one of RetentionDays, got ${String(logRetention)}`);
  }

  const stateMachineLogLevel = props.stateMachineLogLevel ?? LogLevel.ERROR;
  if (!Object.values(LogLevel).includes(stateMachineLogLevel)) {
    fail(
      `stateMachineLogLevel must be one of ${Object.values(LogLevel).join(", ")}, got ${String(stateMachineLogLevel)}`,
    );
  }
  const logExecutionData = props.logExecutionData ?? false;
  if (typeof logExecutionData !== "boolean") fail("logExecutionData must be true or false");
  if (logExecutionData && stateMachineLogLevel === LogLevel.OFF)
    fail("logExecutionData needs a stateMachineLogLevel other than OFF");
  return { logRetention, stateMachineLogLevel, logExecutionData };
}
