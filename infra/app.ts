// The CDK app: `npx cdk synth` (cdk.json builds the functions' code, dist/lambda, then runs
// `node infra/app.ts`; Node 22 strips the types). No env, no lookups: synthesis needs no AWS credentials
// and no Docker. The functions deploy the code in dist/lambda, as from an installed package.
//
//   npx cdk synth                                  # defaults
//   npx cdk synth -c ferryConfig=ferry.config.json # settings from a file (see infra/config.ts)
//   npx cdk synth FerryEcrForwarder -c ferryForwarder='{"targetEventBusArn": "...", "repositories": ["app"]}'
import { App, Validations } from "aws-cdk-lib";
import nag from "cdk-nag";
import { readFerryConfig, readForwarderConfig } from "./config.ts";
import { EcrForwarderStack, FerryStack } from "./stack.ts";

const app = new App();
const stackName = (app.node.tryGetContext("ferryStackName") as string | undefined) ?? "Ferry";

new FerryStack(app, stackName, { config: readFerryConfig(app) });

const forwarder = readForwarderConfig(app);
if (forwarder) new EcrForwarderStack(app, "FerryEcrForwarder", { forwarder });

// cdk-nag's AwsSolutions pack on every stack (cdk-nag 3 is a CDK policy-validation plugin): an
// unacknowledged finding fails synthesis (report: cdk.out/validation-report.json).
Validations.of(app).addPlugins(new nag.AwsSolutionsChecks(app, { verbose: true }));

app.synth();
