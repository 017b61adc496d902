import type { TestProject } from "vitest/node";
import { startRegistry } from "../../serve/index.ts";
import type { Registries } from "../helpers/context.ts";
import { type RunningDistribution, startDistribution, toRegistryInfo } from "../helpers/distribution.ts";
import { removeTmpDir, tmpDir } from "../helpers/tmp.ts";

/**
 * Starts three real distribution registries (anonymous, htpasswd basic auth, token auth) for the
 * whole run, plus one `ferry serve`, and provides them to tests as `inject("registries")`.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const major = Number(process.versions.node.split(".")[0]);
  if (!(major >= 22)) {
    throw new Error(
      `ferry's tests need Node >= 22 but this is Node ${process.versions.node} (${process.execPath}): ` +
        "run tests through `npm test`, which uses the Node 22 from node_modules/.bin " +
        "(or put node_modules/.bin first on PATH).",
    );
  }

  const started = await Promise.allSettled([
    startDistribution({ auth: "none" }),
    startDistribution({ auth: "basic" }),
    startDistribution({ auth: "token" }),
  ]);
  const running = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const stopAll = async () => {
    await Promise.allSettled(running.map((r) => r.stop()));
  };
  const failures = started.flatMap((s) => (s.status === "rejected" ? [s.reason as unknown] : []));
  if (failures.length > 0) {
    await stopAll();
    const message = failures.map((f) => (f instanceof Error ? f.message : String(f))).join("\n\n");
    throw new Error(`global setup could not start the test registries:\n${message}`);
  }

  // ferry's own embedded registry, a second independent server for the client suite.
  const serveRoot = tmpDir("ferry-serve-");
  const serve = await startRegistry({ root: serveRoot });

  const [anon, basic, token] = running as [RunningDistribution, RunningDistribution, RunningDistribution];
  const registries: Registries = {
    anon: toRegistryInfo(anon),
    basic: toRegistryInfo(basic),
    token: toRegistryInfo(token),
    serve: { host: serve.host, url: serve.url, auth: "none", storageDir: serveRoot },
  };
  project.provide("registries", registries);
  return async () => {
    await serve.close();
    removeTmpDir(serveRoot);
    await stopAll();
  };
}
