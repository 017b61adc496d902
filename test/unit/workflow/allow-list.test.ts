/**
 * Allow-list patterns (shared/workflow/allow-list.ts) and the policy checks over them (policy.ts): the
 * grammar, what `*` crosses in the host and in the repository, prefixes on path-segment boundaries, the
 * bulk locations' "could anything under it be allowed", and the module's promise to import nothing
 * (infra/ imports it for synth-time validation).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parsePattern, patternMatches, patternMayMatchUnder } from "../../../shared/workflow/allow-list.ts";
import {
  ALLOW_ANY,
  checkLocationAllowed,
  checkTransferAllowed,
  transferPolicy,
} from "../../../shared/workflow/policy.ts";

const matches = (pattern: string, repo: string) => {
  const slash = repo.indexOf("/");
  return patternMatches(parsePattern(pattern), repo.slice(0, slash), repo.slice(slash + 1));
};

describe("allow-list patterns", () => {
  it("a host alone allows every repository of that host, and only that host and port", () => {
    expect(matches("ghcr.io", "ghcr.io/a/b/c")).toBe(true);
    expect(matches("GHCR.io", "ghcr.io/a")).toBe(true); // hosts compare case-insensitively
    expect(matches("ghcr.io", "ghcr.io:443/a")).toBe(false);
    expect(matches("ghcr.io", "ghcr.io.evil.example/a")).toBe(false);
    expect(matches("ghcr.io", "xghcr.io/a")).toBe(false);
    expect(matches("registry.internal:5000", "registry.internal:5000/a")).toBe(true);
    expect(matches("registry.internal:5000", "registry.internal:5001/a")).toBe(false);
    expect(matches("registry.internal:5000", "registry.internal/a")).toBe(false);
    expect(matches("registry.internal:*", "registry.internal:5001/a")).toBe(true);
    expect(matches("[::1]:5000", "[::1]:5000/a")).toBe(true);
  });

  it("a repository is a prefix on path-segment boundaries", () => {
    expect(matches("ghcr.io/team", "ghcr.io/team")).toBe(true);
    expect(matches("ghcr.io/team", "ghcr.io/team/app")).toBe(true);
    expect(matches("ghcr.io/team", "ghcr.io/team/a/b")).toBe(true);
    expect(matches("ghcr.io/team", "ghcr.io/teamster")).toBe(false);
    expect(matches("ghcr.io/team/", "ghcr.io/team/app")).toBe(true); // a trailing slash is the same
    expect(matches("ghcr.io/team/app", "ghcr.io/team")).toBe(false);
  });

  it("in the repository `*` crosses `/` (as IAM and the ECR settings); in the host it stays in one label", () => {
    expect(matches("ghcr.io/team/*", "ghcr.io/team/app")).toBe(true);
    expect(matches("ghcr.io/team/*", "ghcr.io/team/a/b")).toBe(true);
    expect(matches("ghcr.io/team/*", "ghcr.io/team")).toBe(false);
    expect(matches("ghcr.io/team-*", "ghcr.io/team-web/x")).toBe(true);
    expect(matches("ghcr.io/team-*", "ghcr.io/other")).toBe(false);
    expect(matches("ghcr.io/*/app", "ghcr.io/a/b/app")).toBe(true);
    const ecr = "*.dkr.ecr.us-east-1.amazonaws.com/prod/*";
    expect(matches(ecr, "123456789012.dkr.ecr.us-east-1.amazonaws.com/prod/app")).toBe(true);
    expect(matches(ecr, "123456789012.dkr.ecr.us-west-2.amazonaws.com/prod/app")).toBe(false);
    expect(matches(ecr, "123456789012.dkr.ecr.us-east-1.amazonaws.com/dev/app")).toBe(false);
    // `*` never crosses a dot in the host: no bucket-named S3 website host under amazonaws.com matches
    expect(matches(ecr, "x.y.dkr.ecr.us-east-1.amazonaws.com/prod/app")).toBe(false);
    expect(matches("*.example.com", "a.b.example.com/x")).toBe(false);
    expect(matches("*.example.com", "a.example.com:5000/x")).toBe(false);
  });

  it("bad patterns are refused with a message saying what is wrong", () => {
    for (const [pattern, message] of [
      ["", /non-empty/],
      ["https://ghcr.io/team", /not a URL/],
      ["ghcr.io/team/app:v1", /not tags/],
      ["ghcr.io/team@sha256:abc", /not digests/],
      ["ghcr.io/Team", /repository part "Team" is not valid/],
      ["ghcr.io//team", /repository part "" is not valid/],
      ["ghcr io", /white space/],
      ["*", /below a fixed domain/],
      ["*.com", /below a fixed domain/],
      ["ghcr.*", /below a fixed domain/],
      ["10.0.0.*", /below a fixed domain/],
      ["ghcr.io:http", /bad port/],
      ["index.docker.io/library/ubuntu", /write Docker Hub as docker\.io/],
      ["[zz]:5000", /bad IPv6/],
      ["gh_cr.io", /bad registry host/],
    ] as const) {
      expect(() => parsePattern(pattern), pattern).toThrow(message);
    }
  });

  it("a location may be allowed when some repository under it could be; never refused when one is", () => {
    const under = (pattern: string, location: string) => {
      const slash = location.indexOf("/");
      return patternMayMatchUnder(
        parsePattern(pattern),
        slash < 0 ? location : location.slice(0, slash),
        slash < 0 ? "" : location.slice(slash + 1),
      );
    };
    expect(under("ghcr.io", "ghcr.io/anything")).toBe(true);
    expect(under("ghcr.io/team", "ghcr.io")).toBe(true); // the registry holds team/…
    expect(under("ghcr.io/team", "ghcr.io/team/sub")).toBe(true);
    expect(under("ghcr.io/team/app", "ghcr.io/team")).toBe(true);
    expect(under("ghcr.io/team", "ghcr.io/teamster")).toBe(false);
    expect(under("ghcr.io/team/app", "ghcr.io/team/apple")).toBe(false);
    expect(under("ghcr.io/team/*", "ghcr.io/team")).toBe(true);
    expect(under("ghcr.io/team/*", "ghcr.io/other")).toBe(false);
    expect(under("ghcr.io/te*", "ghcr.io/team/sub")).toBe(true);
    expect(under("ghcr.io/*/app", "ghcr.io/anything")).toBe(true);
    expect(under("quay.io/team", "ghcr.io/team")).toBe(false);
  });

  it("imports nothing (infra/ imports the pattern grammar and the names)", () => {
    for (const file of ["allow-list.ts", "names.ts"]) {
      const text = readFileSync(new URL(`../../../shared/workflow/${file}`, import.meta.url), "utf8");
      expect(text, file).not.toMatch(/^\s*import\s/m);
      expect(text, file).not.toMatch(/\bimport\(/);
    }
  });
});

describe("policy checks", () => {
  const policy = transferPolicy({
    sources: ["ghcr.io/team", "docker.io/library/*"],
    destinations: ["123456789012.dkr.ecr.eu-west-1.amazonaws.com/mirror"],
  });

  it("checks both references of a request, normalised as references are (Docker Hub)", () => {
    expect(() =>
      checkTransferAllowed(
        { source: "ubuntu:24.04", destination: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mirror/ubuntu" },
        policy,
      ),
    ).not.toThrow();
    expect(() =>
      checkTransferAllowed(
        { source: "ghcr.io/team/app@sha256:" + "a".repeat(64), destination: "ghcr.io/team/app" },
        policy,
      ),
    ).toThrow(
      /^destination "ghcr\.io\/team\/app" is not allowed: ghcr\.io\/team\/app matches no pattern of ALLOWED_DESTINATIONS/,
    );
    expect(() => checkTransferAllowed({ source: "bitnami/redis:7", destination: "x" }, policy)).toThrow(
      /source "bitnami\/redis:7" is not allowed: docker\.io\/bitnami\/redis/,
    );
    expect(() => checkTransferAllowed({ source: "Not A Ref", destination: "x" }, policy)).toThrow(
      /source "Not A Ref"/,
    );
  });

  it("empty lists allow nothing; ALLOW_ANY (local runs) allows everything", () => {
    const none = transferPolicy({ sources: [], destinations: [] });
    expect(() => checkTransferAllowed({ source: "ghcr.io/a:v1", destination: "ghcr.io/b" }, none)).toThrow(
      /ALLOWED_SOURCES is empty: this deployment allows no source \(deployment setting allowedSources\)/,
    );
    expect(() =>
      checkTransferAllowed({ source: "127.0.0.1:1/a:v1", destination: "169.254.169.254/b" }, ALLOW_ANY),
    ).not.toThrow();
  });

  it("bulk locations: host normalised, refused only when nothing under them could be allowed", () => {
    expect(() => checkLocationAllowed(policy, "sources", "registry-1.docker.io/library")).not.toThrow();
    expect(() => checkLocationAllowed(policy, "sources", "ghcr.io")).not.toThrow();
    expect(() => checkLocationAllowed(policy, "sources", "ghcr.io/other")).toThrow(
      /source "ghcr\.io\/other" is not allowed/,
    );
    expect(() => checkLocationAllowed(policy, "destinations", "quay.io")).toThrow(/ALLOWED_DESTINATIONS/);
  });

  it("a bad pattern names its list", () => {
    expect(() => transferPolicy({ sources: ["https://x.io"], destinations: [] })).toThrow(
      /^ALLOWED_SOURCES: "https:\/\/x\.io": give host\[\/repository\], not a URL/,
    );
  });
});
