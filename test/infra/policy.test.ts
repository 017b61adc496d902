/**
 * The allow-lists and network setting as deployed: which values the functions get (ALLOWED_SOURCES,
 * ALLOWED_DESTINATIONS, PRIVATE_REGISTRIES), the defaults derived from the configuration, and what the
 * functions' own policy (shared/aws/env.ts, from those very values) then allows and refuses.
 */
import { describe, expect, it } from "vitest";
import type { ImageTransferProps } from "../../infra/constructs/props.ts";
import { policyFromEnv, privateRegistries } from "../../shared/aws/env.ts";
import { POLICY_ENV } from "../../shared/workflow/names.ts";
import { checkTransferAllowed } from "../../shared/workflow/policy.ts";
import { deployedString, FULL, logicalId, REGISTRY_FUNCTIONS, type Synthesised, synth } from "./helpers.ts";

/** A function's policy variables as deployed in account 123456789012, eu-west-1. */
function deployedEnv(s: Synthesised, name: string): Record<string, string> {
  const fn = (s.stack.transfer.functions as Record<string, { function: object } | undefined>)[name];
  const vars = (
    s.json.Resources[logicalId(s.stack, fn!.function as never)]!.Properties!.Environment as {
      Variables: Record<string, unknown>;
    }
  ).Variables;
  return Object.fromEntries(
    Object.entries(vars)
      .filter(([k]) => (Object.values(POLICY_ENV) as string[]).includes(k))
      .map(([k, v]) => [k, deployedString(v)]),
  );
}

const ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

describe("allow-lists in the deployed functions", () => {
  const full = synth(FULL);

  it("default sources: the registries, ECR pull and promotion repositories (each source account), migration sources", () => {
    const env = deployedEnv(full, "resolve");
    expect(JSON.parse(env.ALLOWED_SOURCES!)).toEqual([
      "ghcr.io",
      "docker.io",
      "quay.io",
      `${ECR}/mirror/base`,
      `${ECR}/app`,
      `${ECR}/team-*`,
      "111111111111.dkr.ecr.eu-west-1.amazonaws.com/app",
      "111111111111.dkr.ecr.eu-west-1.amazonaws.com/team-*",
      "ghcr.io/acme",
      "quay.io/acme",
    ]);
  });

  it("default destinations: ECR push repositories, the promotion and migration destinations — not the registries", () => {
    const env = deployedEnv(full, "resolve");
    expect(JSON.parse(env.ALLOWED_DESTINATIONS!)).toEqual([
      `${ECR}/prod/*`,
      `${ECR}/prod`,
      `${ECR}/acme`,
      "ghcr.io/acme",
    ]);
  });

  it("every function that starts or runs a copy gets the same lists", () => {
    const reference = deployedEnv(full, "resolve");
    for (const name of [
      "stageBlob",
      "uploadBlob",
      "putManifests",
      "cleanup",
      "enumerate",
      "api",
      "event",
      "schedule",
    ]) {
      const env = deployedEnv(full, name);
      expect(env.ALLOWED_SOURCES, name).toBe(reference.ALLOWED_SOURCES);
      expect(env.ALLOWED_DESTINATIONS, name).toBe(reference.ALLOWED_DESTINATIONS);
    }
    for (const name of ["summarize", "benchWorker", "benchAggregate"])
      expect(deployedEnv(full, name).ALLOWED_SOURCES, name).toBeUndefined();
  });

  it("what the functions then allow: configured flows pass; exfiltration and overwrites are refused", () => {
    const policy = policyFromEnv(deployedEnv(full, "api"));
    const allowed = (source: string, destination: string) => {
      try {
        checkTransferAllowed({ source, destination }, policy);
        return true;
      } catch {
        return false;
      }
    };
    expect(allowed(`${ECR}/app:v1`, `${ECR}/prod/app:v1`)).toBe(true); // promotion
    expect(allowed("ghcr.io/acme/web:1", `${ECR}/acme/web:1`)).toBe(true); // migration
    expect(allowed("docker.io/library/alpine:3", `${ECR}/prod/alpine:3`)).toBe(true);
    // a registry whose secret the stack holds is a source, never a destination unless named
    expect(allowed(`${ECR}/mirror/base:1`, "ghcr.io/someone/else:1")).toBe(false);
    expect(allowed(`${ECR}/mirror/base:1`, "docker.io/attacker/loot:1")).toBe(false);
    expect(allowed("ghcr.io/private/app:1", "evil.example/loot:1")).toBe(false);
    // an outside image over the deployment's own repositories
    expect(allowed("evil.example/malware:1", `${ECR}/prod/app:1`)).toBe(false);
    // private ECR repositories that are not sources
    expect(allowed(`${ECR}/secrets:1`, `${ECR}/prod/secrets:1`)).toBe(false);
  });

  it("with nothing configured both lists are empty: the functions refuse every copy", () => {
    const env = deployedEnv(synth(), "api");
    expect(env.ALLOWED_SOURCES).toBe("[]");
    expect(env.ALLOWED_DESTINATIONS).toBe("[]");
    expect(() =>
      checkTransferAllowed({ source: "ghcr.io/a:v1", destination: "ghcr.io/b" }, policyFromEnv(env)),
    ).toThrow(/ALLOWED_SOURCES is empty/);
  });

  it("given lists replace the defaults; ECR repository ARNs become their registry's patterns", () => {
    const props: ImageTransferProps = {
      registries: { "ghcr.io": {} },
      ecr: {
        pullRepositories: ["arn:aws:ecr:us-west-2:210987654321:repository/base/*"],
        pushRepositories: ["arn:aws-cn:ecr:cn-north-1:210987654321:repository/out"],
      },
    };
    const derived = deployedEnv(synth(props), "resolve");
    expect(JSON.parse(derived.ALLOWED_SOURCES!)).toEqual([
      "ghcr.io",
      "210987654321.dkr.ecr.us-west-2.amazonaws.com/base/*",
    ]);
    expect(JSON.parse(derived.ALLOWED_DESTINATIONS!)).toEqual([
      "210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn/out",
    ]);
    const given = deployedEnv(
      synth({ ...props, allowedSources: ["ghcr.io/team"], allowedDestinations: [] }),
      "resolve",
    );
    expect(JSON.parse(given.ALLOWED_SOURCES!)).toEqual(["ghcr.io/team"]);
    expect(JSON.parse(given.ALLOWED_DESTINATIONS!)).toEqual([]);
  });

  it("PRIVATE_REGISTRIES: [] unless registries are declared private, for every function with a registry client", () => {
    expect(deployedEnv(full, "resolve").PRIVATE_REGISTRIES).toBe("[]");
    const s = synth({ privateRegistries: ["registry.internal:5000", "10.0.0.5"], benchWorkers: true });
    for (const name of REGISTRY_FUNCTIONS) {
      const env = deployedEnv(s, name);
      expect(privateRegistries(env), name).toEqual(["registry.internal:5000", "10.0.0.5"]);
    }
    for (const name of ["api", "schedule", "summarize"])
      expect(deployedEnv(s, name).PRIVATE_REGISTRIES, name).toBeUndefined();
  });
});
