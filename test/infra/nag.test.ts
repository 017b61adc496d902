import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { App, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import * as kms from "aws-cdk-lib/aws-kms";
import * as s3 from "aws-cdk-lib/aws-s3";
import nag from "cdk-nag";
import { afterAll, describe, expect, it } from "vitest";
import { REPOSITORY_ROOT } from "../../infra/constructs/props.ts";
import { EcrForwarderStack, FerryStack } from "../../infra/stack.ts";
import { acknowledgements, CDK_CONTEXT, FULL, nagFindings, synth, testApp } from "./helpers.ts";

describe("cdk-nag AwsSolutions", () => {
  it("no unacknowledged findings with the defaults", () => {
    expect(nagFindings(synth().stack)).toEqual([]);
  });

  it("no unacknowledged findings with everything on (promotion, schedules, secrets, ECR, bench)", () => {
    expect(nagFindings(synth(FULL).stack)).toEqual([]);
  });

  it("no unacknowledged findings with a KMS key, no access logs, and a destroyable bucket", () => {
    const app = testApp();
    const keys = new Stack(app, "Keys");
    const key = new kms.Key(keys, "Key", { enableKeyRotation: true });
    const ferry = new FerryStack(app, "Ferry", {
      transfer: {
        encryptionKey: key,
        accessLogsBucket: false,
        removalPolicy: RemovalPolicy.DESTROY,
        autoDeleteObjects: true,
      },
    });
    expect(nagFindings(ferry)).toEqual([]);
  });

  it("no findings in the source-account forwarder stack", () => {
    const app = new App({ context: CDK_CONTEXT });
    const stack = new EcrForwarderStack(app, "Fwd", {
      forwarder: {
        targetEventBusArn: "arn:aws:events:us-east-1:123456789012:event-bus/default",
        repositories: ["app"],
      },
    });
    expect(nagFindings(stack)).toEqual([]);
  });

  it("every acknowledgement names its finding and gives a reason", () => {
    const acks = acknowledgements(synth(FULL).stack);
    expect(acks.length).toBeGreaterThan(10);
    for (const a of acks) {
      expect(a.reason.length, `${a.id} at ${a.path}`).toBeGreaterThanOrEqual(40);
      // Multi-finding rules are acknowledged per finding, never wholesale.
      if (/AwsSolutions-(IAM5|IAM4)/.test(a.id))
        expect(a.id, a.path).toMatch(/\[(Resource|Action|Policy)::.+\]$/);
    }
    // The only Resource::* acknowledgements are on roles that need X-Ray, log delivery or ECR tokens.
    const star = acks.filter((a) => a.id.endsWith("[Resource::*]"));
    for (const a of star) expect(a.reason, a.path).toMatch(/X-Ray|xray/);
  });
});

describe("the CDK app (infra/app.ts), as `cdk synth` runs it", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  /** Runs the app like the CLI: CDK_OUTDIR and CDK_CONTEXT_JSON, bundling skipped; returns the out dir. */
  const runApp = (context: Record<string, unknown>) => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-cdk-out-"));
    dirs.push(out);
    execFileSync(process.execPath, ["infra/app.ts"], {
      cwd: REPOSITORY_ROOT,
      env: {
        ...process.env,
        CDK_OUTDIR: out,
        CDK_CONTEXT_JSON: JSON.stringify({ ...CDK_CONTEXT, "aws:cdk:bundling-stacks": [], ...context }),
      },
      stdio: "pipe",
    });
    return out;
  };

  it("synthesises with no credentials and no findings; reads settings from a file; adds the forwarder stack", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ferry-config-"));
    dirs.push(dir);
    const file = path.join(dir, "ferry.config.json");
    fs.writeFileSync(
      file,
      JSON.stringify({
        stepThroughputMiBps: 10,
        promotion: { destination: "ghcr.io/acme", repositories: ["app"] },
        migrations: [
          {
            name: "nightly",
            schedule: "rate(1 day)",
            config: { source: "ghcr.io/a", destination: "quay.io/a" },
          },
        ],
      }),
    );
    const out = runApp({
      ferryConfig: file,
      ferryForwarder: JSON.stringify({
        targetEventBusArn: "arn:aws:events:us-east-1:123456789012:event-bus/default",
        repositories: ["app"],
      }),
    });
    const template = JSON.parse(fs.readFileSync(path.join(out, "Ferry.template.json"), "utf8"));
    const types = Object.values(template.Resources as Record<string, { Type: string }>).map((r) => r.Type);
    expect(types.length).toBeGreaterThan(50);
    expect(types).toContain("AWS::Scheduler::Schedule");
    expect(types).toContain("AWS::Events::Rule");
    expect(fs.existsSync(path.join(out, "FerryEcrForwarder.template.json"))).toBe(true);
    const report = JSON.parse(fs.readFileSync(path.join(out, "validation-report.json"), "utf8"));
    expect(JSON.stringify(report)).not.toMatch(/"status":\s*"failure"/);
  });

  it("an unacknowledged finding fails synthesis (the plugin is wired as app.ts wires it)", () => {
    const app = new App();
    new s3.Bucket(new Stack(app, "Bare"), "Bucket");
    Validations.of(app).addPlugins(new nag.AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow(/AwsSolutions-S1/);
  });
});
