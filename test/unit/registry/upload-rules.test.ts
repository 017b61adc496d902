/** Per-registry upload rules: which kind a registry is, and what `chunkSize` / `monolithicMax` mean. */
import { describe, expect, it } from "vitest";
import {
  type ClientOptions,
  type RegistryKind,
  registryKindOf,
  registryRules,
  resolveOptions,
} from "../../../shared/registry/options.ts";

const MiB = 1024 * 1024;
const rules = (opts: ClientOptions, registry: string) => resolveOptions(opts).uploadRules(registry);

describe("registryKindOf", () => {
  it.each<[string, RegistryKind]>([
    ["ghcr.io", "ghcr"],
    ["GHCR.io:443", "ghcr"],
    ["123456789012.dkr.ecr.eu-west-1.amazonaws.com", "ecr"],
    ["123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "ecr"],
    ["europe-west1-docker.pkg.dev", "gar"],
    ["gcr.io", "gar"],
    ["eu.gcr.io", "gar"],
    ["docker.io", "oci"],
    ["127.0.0.1:5000", "oci"],
    ["ecr.example.com", "oci"],
  ])("%s is %s", (host, kind) => {
    expect(registryKindOf(host)).toBe(kind);
  });
});

describe("uploadRules", () => {
  it("without options: each kind's own rules", () => {
    expect(rules({}, "ghcr.io")).toEqual(registryRules("ghcr"));
    expect(rules({}, "1.dkr.ecr.us-east-1.amazonaws.com")).toEqual(registryRules("ecr"));
    expect(rules({}, "us-docker.pkg.dev")).toEqual(registryRules("gar"));
    expect(rules({}, "127.0.0.1:5000")).toMatchObject({ monolithicMax: 64 * MiB, monolithicOnly: false });
  });

  it("a chunk size means chunks whatever the blob size: monolithicMax becomes 0", () => {
    expect(rules({ chunkSize: MiB }, "127.0.0.1:5000")).toMatchObject({ chunkSize: MiB, monolithicMax: 0 });
    expect(rules({ chunkSize: () => 2 * MiB }, "ghcr.io")).toMatchObject({
      chunkSize: 2 * MiB,
      monolithicMax: 0,
    });
  });

  it("monolithic-only registries stay monolithic with a chunk size", () => {
    expect(rules({ chunkSize: MiB }, "us-docker.pkg.dev")).toMatchObject({
      monolithicOnly: true,
      monolithicMax: Number.POSITIVE_INFINITY,
    });
  });

  it("an explicit monolithicMax is kept beside a chunk size", () => {
    expect(rules({ chunkSize: MiB, monolithicMax: 10 * MiB }, "127.0.0.1:5000")).toMatchObject({
      chunkSize: MiB,
      monolithicMax: 10 * MiB,
    });
    expect(rules({ monolithicMax: 0 }, "127.0.0.1:5000").chunkSize).toBe(Number.POSITIVE_INFINITY);
  });

  it("the registry's bounds win: ECR raises a chunk to 5 MiB, GHCR caps it at 4 MiB", () => {
    expect(rules({ chunkSize: MiB }, "1.dkr.ecr.us-east-1.amazonaws.com").chunkSize).toBe(5 * MiB);
    expect(rules({ chunkSize: 64 * MiB }, "1.dkr.ecr.us-east-1.amazonaws.com").chunkSize).toBe(64 * MiB);
    expect(rules({ chunkSize: 8 * MiB }, "ghcr.io").chunkSize).toBe(4 * MiB);
    expect(rules({ chunkSize: MiB }, "ghcr.io").chunkSize).toBe(MiB);
  });
});

describe("registryKinds", () => {
  const kinds = { "registry.example.com": "ecr", "127.0.0.1:5000": "gar", "GHCR.IO": "oci" } as const;

  it("applies a kind to a listed host:port, to a listed host on any port, case-insensitively", () => {
    expect(rules({ registryKinds: kinds }, "127.0.0.1:5000")).toEqual(registryRules("gar"));
    expect(rules({ registryKinds: kinds }, "127.0.0.1:5001")).toEqual(registryRules("oci"));
    expect(rules({ registryKinds: kinds }, "Registry.Example.com:8443")).toEqual(registryRules("ecr"));
    expect(rules({ registryKinds: kinds }, "registry.example.com")).toEqual(registryRules("ecr"));
  });

  it("overrides what a host name implies; unlisted hosts keep theirs", () => {
    expect(rules({ registryKinds: kinds }, "ghcr.io")).toEqual(registryRules("oci"));
    expect(rules({ registryKinds: kinds }, "us-docker.pkg.dev")).toEqual(registryRules("gar"));
  });

  it("is kept, validated, on the resolved options", () => {
    expect(resolveOptions({ registryKinds: kinds }).registryKinds).toEqual({
      "registry.example.com": "ecr",
      "127.0.0.1:5000": "gar",
      "ghcr.io": "oci",
    });
    expect(resolveOptions({}).registryKinds).toBeUndefined();
  });

  it.each([
    [
      { registryKinds: { "127.0.0.1": "quay" as RegistryKind } },
      /"quay" for 127.0.0.1 is not one of ecr, ghcr, gar, oci/,
    ],
    [{ registryKinds: { "https://x": "ecr" as RegistryKind } }, /"https:\/\/x" is not a registry host/],
    [{ registryKinds: { "": "ecr" as RegistryKind } }, /"" is not a registry host/],
    [{ monolithicMax: -1 }, /monolithicMax must be/],
    [{ chunkSize: 0 }, /chunkSize must be a positive number/],
  ])("refuses %j", (opts, message) => {
    expect(() => resolveOptions(opts)).toThrow(message);
  });
});
