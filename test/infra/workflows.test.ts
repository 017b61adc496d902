import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Match } from "aws-cdk-lib/assertions";
import { LogLevel } from "aws-cdk-lib/aws-stepfunctions";
import { afterAll, describe, expect, it } from "vitest";
import { LAMBDA_DIR } from "../../infra/bundling/layout.ts";
import { REPOSITORY_ROOT } from "../../infra/constructs/props.ts";
import { allStates, placeholdersOf, substitute as substituteText } from "../../infra/definitions.ts";
import { flatten } from "../../infra/nag.ts";
import { fanoutDefinition, LOCAL_ARNS } from "../../load/fanout.ts";
import {
  bulkMigrateDefinition,
  copyImageDefinition,
  DEFINITION_FILES,
  fakeSubstitutions,
  substitute,
} from "../../shared/workflow/definitions.ts";
import {
  acknowledgements,
  asList,
  aslValidator,
  FULL,
  logicalId,
  nagFindings,
  roleStatements,
  synth,
} from "./helpers.ts";

const { stack, json, template } = synth(FULL);
const t = stack.transfer;

interface StateMachineProps {
  StateMachineName: string;
  StateMachineType: string;
  DefinitionString: string;
  DefinitionSubstitutions: Record<string, unknown>;
  LoggingConfiguration: unknown;
  TracingConfiguration: unknown;
  RoleArn: unknown;
}
const machine = (construct: typeof t.copyImage) =>
  json.Resources[logicalId(stack, construct)]!.Properties as unknown as StateMachineProps;

/** The template's definition with every placeholder replaced by `values` (what CloudFormation does). */
const deployed = (construct: typeof t.copyImage, values: Record<string, string>) =>
  JSON.parse(substituteText(machine(construct).DefinitionString, values)) as Record<string, unknown>;

describe("state machines", () => {
  it("copy-image and bulk-migrate: STANDARD, named, logging errors only without execution data, X-Ray traced", () => {
    for (const [construct, name] of [
      [t.copyImage, "Ferry-Transfer-copy-image"],
      [t.bulkMigrate, "Ferry-Transfer-bulk-migrate"],
      [t.benchFanout!, "Ferry-Transfer-bench-fanout"],
    ] as const) {
      const logGroupId = logicalId(stack, construct.node.scope!.node.findChild(`${construct.node.id}Logs`));
      expect(machine(construct)).toMatchObject({
        StateMachineName: name,
        StateMachineType: "STANDARD",
        LoggingConfiguration: {
          Level: "ERROR",
          IncludeExecutionData: false,
          Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { "Fn::GetAtt": [logGroupId, "Arn"] } } }],
        },
        TracingConfiguration: { Enabled: true },
      });
      expect(json.Resources[logGroupId]?.Properties).toEqual({
        LogGroupName: `/aws/vendedlogs/states/${name}`,
        RetentionInDays: 30,
      });
    }
    template.resourceCountIs("AWS::StepFunctions::StateMachine", 3);
    expect(synth().stack.transfer.benchFanout).toBeUndefined();
  });

  it("the log level and execution data are settings; below ALL, cdk-nag's SF1 is acknowledged with a reason", () => {
    const sf1 = (s: ReturnType<typeof synth>) =>
      acknowledgements(s.stack).filter((a) => a.id.endsWith("AwsSolutions-SF1"));
    expect(sf1(synth(FULL)).length).toBe(3);
    for (const a of sf1(synth(FULL))) expect(a.reason).toMatch(/ERROR.*stateMachineLogLevel/);
    const all = synth({ stateMachineLogLevel: LogLevel.ALL, logExecutionData: true });
    expect(
      all.json.Resources[logicalId(all.stack, all.stack.transfer.copyImage)]!.Properties!
        .LoggingConfiguration,
    ).toMatchObject({ Level: "ALL", IncludeExecutionData: true });
    expect(sf1(all)).toEqual([]);
    expect(nagFindings(all.stack)).toEqual([]);
    const fatal = synth({ stateMachineLogLevel: LogLevel.FATAL });
    expect(
      fatal.json.Resources[logicalId(fatal.stack, fatal.stack.transfer.bulkMigrate)]!.Properties!
        .LoggingConfiguration,
    ).toMatchObject({ Level: "FATAL", IncludeExecutionData: false });
  });

  it("embeds the shared definition files verbatim (no S3 asset) and substitutes exactly their placeholders", () => {
    const files = {
      copy: fs.readFileSync(DEFINITION_FILES.copyImage, "utf8"),
      bulk: fs.readFileSync(DEFINITION_FILES.bulkMigrate, "utf8"),
      bench: fs.readFileSync(path.join(REPOSITORY_ROOT, "load/fanout.asl.json"), "utf8"),
    };
    expect(machine(t.copyImage).DefinitionString).toBe(files.copy);
    expect(machine(t.bulkMigrate).DefinitionString).toBe(files.bulk);
    expect(machine(t.benchFanout!).DefinitionString).toBe(files.bench);
    template.hasResourceProperties("AWS::StepFunctions::StateMachine", {
      DefinitionS3Location: Match.absent(),
    });

    const fn = (name: string) => ({
      "Fn::GetAtt": [logicalId(stack, t.functions[name as "resolve"]!.function), "Arn"],
    });
    expect(machine(t.copyImage).DefinitionSubstitutions).toEqual({
      ResolveFunctionArn: fn("resolve"),
      StageBlobFunctionArn: fn("stageBlob"),
      UploadBlobFunctionArn: fn("uploadBlob"),
      PutManifestsFunctionArn: fn("putManifests"),
      CleanupFunctionArn: fn("cleanup"),
    });
    expect(machine(t.bulkMigrate).DefinitionSubstitutions).toEqual({
      EnumerateFunctionArn: fn("enumerate"),
      SummarizeFunctionArn: fn("summarize"),
      CopyImageStateMachineArn: { Ref: logicalId(stack, t.copyImage) },
      StagingBucket: { Ref: logicalId(stack, t.stagingBucket) },
    });
    expect(machine(t.benchFanout!).DefinitionSubstitutions).toEqual({
      BenchWorkerFunctionArn: fn("benchWorker"),
      BenchAggregateFunctionArn: fn("benchAggregate"),
    });
    for (const c of [t.copyImage, t.bulkMigrate, t.benchFanout!]) {
      expect([...placeholdersOf(machine(c).DefinitionString)].sort()).toEqual(
        Object.keys(machine(c).DefinitionSubstitutions).sort(),
      );
    }
  });

  it("after substitution with fake ARNs, the deployed definitions pass asl-validator", () => {
    const fakes = fakeSubstitutions();
    for (const [name, def] of [
      ["copy-image", deployed(t.copyImage, fakes)],
      ["bulk-migrate", deployed(t.bulkMigrate, fakes)],
      ["bench-fanout", deployed(t.benchFanout!, LOCAL_ARNS)],
    ] as const) {
      const result = aslValidator(structuredClone(def), { checkArn: true, checkPaths: true });
      expect(result.errors, `${name}: ${result.errorsText?.("\n")}`).toEqual([]);
      expect(result.isValid).toBe(true);
    }
  });

  it("are the very definitions the local runners execute (shared/workflow/definitions.ts, load/fanout.ts)", () => {
    const fakes = fakeSubstitutions();
    expect(deployed(t.copyImage, fakes)).toEqual(substitute(copyImageDefinition(), fakes));
    expect(deployed(t.bulkMigrate, fakes)).toEqual(substitute(bulkMigrateDefinition(), fakes));
    expect(deployed(t.benchFanout!, LOCAL_ARNS)).toEqual(fanoutDefinition(LOCAL_ARNS));
  });

  it("runs the bulk migration's Distributed Map children as STANDARD executions", () => {
    const bulk = deployed(t.bulkMigrate, fakeSubstitutions());
    const distributed = allStates(bulk).filter(
      ([, s]) =>
        (s.ItemProcessor as { ProcessorConfig?: { Mode?: string } } | undefined)?.ProcessorConfig?.Mode ===
        "DISTRIBUTED",
    );
    expect(distributed.length).toBeGreaterThan(0);
    for (const [, state] of distributed) {
      expect(state.ItemProcessor).toMatchObject({ ProcessorConfig: { ExecutionType: "STANDARD" } });
      expect(JSON.stringify(state.ItemReader)).toContain("ferry-staging-local");
      expect(JSON.stringify(state.ResultWriter)).toContain("ferry-staging-local");
    }
  });

  it("each machine may invoke exactly the functions its Task states name", () => {
    for (const construct of [t.copyImage, t.bulkMigrate, t.benchFanout!]) {
      const subs = machine(construct).DefinitionSubstitutions;
      const named = new Set(
        allStates(JSON.parse(machine(construct).DefinitionString))
          .map(([, s]) => s.Resource)
          .filter((r): r is string => typeof r === "string" && /^\$\{\w+FunctionArn\}$/.test(r))
          .map((r) => JSON.stringify(subs[r.slice(2, -1)])),
      );
      const role = logicalId(stack, construct.role);
      const invokable = new Set(
        roleStatements(json, role)
          .filter((s) => asList(s.Action).includes("lambda:InvokeFunction"))
          .flatMap((s) => asList(s.Resource).map((r) => JSON.stringify(r))),
      );
      expect(named.size, construct.node.id).toBeGreaterThan(0);
      expect(invokable, construct.node.id).toEqual(named);
    }
  });

  it("the bench fan-out runs its workers as a Distributed Map (not 40 at a time) and may run its own children", () => {
    const bench = deployed(t.benchFanout!, LOCAL_ARNS);
    const [, workers] = allStates(bench).find(([name]) => name === "Workers")!;
    expect(workers.ItemProcessor).toMatchObject({
      ProcessorConfig: { Mode: "DISTRIBUTED", ExecutionType: "STANDARD" },
    });
    expect(workers.MaxConcurrency).toBe(0);
    const statements = roleStatements(json, logicalId(stack, t.benchFanout!.role)).map(
      (s) => `${asList(s.Action).join(",")} on ${asList(s.Resource).map(flatten).join(",")}`,
    );
    const here = "<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>";
    expect(statements).toEqual(
      expect.arrayContaining([
        `states:StartExecution on arn:${here}:stateMachine:Ferry-Transfer-bench-fanout`,
        `states:DescribeExecution,states:StopExecution on arn:${here}:execution:Ferry-Transfer-bench-fanout/*:*`,
      ]),
    );
  });

  it("the bulk machine may run copy-image children (.sync) and its own Distributed Map children", () => {
    const role = logicalId(stack, t.bulkMigrate.role);
    const statements = roleStatements(json, role).map(
      (s) => `${asList(s.Action).join(",")} on ${asList(s.Resource).map(flatten).join(",")}`,
    );
    const here = "<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>";
    expect(statements).toEqual(
      expect.arrayContaining([
        `states:StartExecution on <${logicalId(stack, t.copyImage)}>`,
        `states:DescribeExecution,states:StopExecution on arn:${here}:execution:Ferry-Transfer-copy-image:*`,
        "events:PutTargets,events:PutRule,events:DescribeRule on arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule",
        `states:StartExecution on arn:${here}:stateMachine:Ferry-Transfer-bulk-migrate`,
        `states:DescribeExecution,states:StopExecution,states:RedriveExecution on arn:${here}:execution:Ferry-Transfer-bulk-migrate/*:*`,
        `s3:GetObject,s3:PutObject,s3:AbortMultipartUpload,s3:ListMultipartUploadParts on <${logicalId(stack, t.stagingBucket)}.Arn>/bulk/*`,
      ]),
    );
  });
});

describe("definition contract errors are synth-time errors", () => {
  const roots: string[] = [];
  afterAll(() => {
    for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
  });
  /** A package root that is the repository's (its built Lambda code) except for the files given. */
  const rootWith = (files: Record<string, string | null>) => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-infra-"));
    roots.push(root);
    fs.mkdirSync(path.join(root, "dist"));
    fs.symlinkSync(path.join(REPOSITORY_ROOT, LAMBDA_DIR), path.join(root, LAMBDA_DIR));
    fs.copyFileSync(path.join(REPOSITORY_ROOT, "package.json"), path.join(root, "package.json"));
    fs.mkdirSync(path.join(root, "shared/workflow"), { recursive: true });
    for (const f of ["copy-image.asl.json", "bulk-migrate.asl.json"]) {
      fs.copyFileSync(
        path.join(REPOSITORY_ROOT, "shared/workflow", f),
        path.join(root, "shared/workflow", f),
      );
    }
    for (const [file, text] of Object.entries(files)) {
      if (text === null) fs.rmSync(path.join(root, file));
      else fs.writeFileSync(path.join(root, file), text);
    }
    return root;
  };
  const placeholder = (name: string) => `\${${name}}`;
  const copyText = () => fs.readFileSync(DEFINITION_FILES.copyImage, "utf8");
  const bulkText = () => fs.readFileSync(DEFINITION_FILES.bulkMigrate, "utf8");

  it("a missing definition file", () => {
    const sourceRoot = rootWith({ "shared/workflow/copy-image.asl.json": null });
    expect(() => synth({ sourceRoot })).toThrow(/copy-image\.asl\.json does not exist .*issue 4/);
  });

  it("a placeholder the app does not provide", () => {
    const sourceRoot = rootWith({
      "shared/workflow/copy-image.asl.json": copyText().replace(
        placeholder("CleanupFunctionArn"),
        placeholder("TidyFunctionArn"),
      ),
    });
    expect(() => synth({ sourceRoot })).toThrow(
      /uses \$\{TidyFunctionArn\}, which the CDK app does not provide/,
    );
  });

  it("invalid JSON", () => {
    const sourceRoot = rootWith({ "shared/workflow/bulk-migrate.asl.json": `${bulkText()} }` });
    expect(() => synth({ sourceRoot })).toThrow(/bulk-migrate\.asl\.json is not valid JSON/);
  });

  it("Distributed Map children that are not STANDARD", () => {
    const sourceRoot = rootWith({
      "shared/workflow/bulk-migrate.asl.json": bulkText().replace(
        '"ExecutionType": "STANDARD"',
        '"ExecutionType": "EXPRESS"',
      ),
    });
    expect(() => synth({ sourceRoot })).toThrow(/must run STANDARD child executions/);
  });

  it("missing Lambda code: the error says to build it", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-infra-"));
    roots.push(root);
    fs.copyFileSync(path.join(REPOSITORY_ROOT, "package.json"), path.join(root, "package.json"));
    expect(() => synth({ sourceRoot: root })).toThrow(
      /the code of the resolve function \(dist\/lambda\/resolve\/index\.mjs\) is missing .*run `npm run build`/,
    );
  });
});
