import { describe, expect, it } from "vitest";
import {
  apiHost,
  formatReference,
  isLoopbackHost,
  parseReference,
} from "../../../shared/registry/reference.ts";

const D = `sha256:${"a".repeat(64)}`;

describe("parseReference", () => {
  it.each([
    ["ubuntu", "docker.io", "library/ubuntu", "latest", undefined],
    ["ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", undefined],
    ["library/ubuntu", "docker.io", "library/ubuntu", "latest", undefined],
    ["docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", undefined],
    ["index.docker.io/foo/bar:1", "docker.io", "foo/bar", "1", undefined],
    ["user/app", "docker.io", "user/app", "latest", undefined],
    ["localhost/app", "localhost", "app", "latest", undefined],
    ["localhost:5000/a/b/c:v1", "localhost:5000", "a/b/c", "v1", undefined],
    ["127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", undefined],
    ["ghcr.io/org/app:1.2.3", "ghcr.io", "org/app", "1.2.3", undefined],
    [`ghcr.io/org/app@${D}`, "ghcr.io", "org/app", undefined, D],
    [`ghcr.io/org/app:v1@${D}`, "ghcr.io", "org/app", "v1", D],
    ["Registry.Example.com/app", "Registry.Example.com", "app", "latest", undefined],
    ["[::1]:5000/app", "[::1]:5000", "app", "latest", undefined],
    ["a/b__c/d-e.f_g", "docker.io", "a/b__c/d-e.f_g", "latest", undefined],
  ])("%s", (input, registry, repository, tag, digest) => {
    const ref = parseReference(input);
    expect(ref.registry).toBe(registry);
    expect(ref.repository).toBe(repository);
    expect(ref.tag).toBe(tag);
    expect(ref.digest).toBe(digest);
  });

  it.each([
    ["", /empty/],
    ["app/UPPER", /must be lowercase/],
    ["app:", /tag/],
    ["app:-bad", /tag/],
    [`app:${"x".repeat(129)}`, /tag/],
    ["app@sha256:123", /64 lowercase hex/],
    ["app@md5:abc", /unsupported digest algorithm/],
    ["a//b", /repository component ""/],
    ["a/../b", /repository component/],
    ["host:99999/app", /port/],
    ["https://ghcr.io/app", /not a URL/],
    ["app name", /white space/],
    [`${"a".repeat(256)}`, /longer than 255/],
  ])("rejects %j", (input, message) => {
    expect(() => parseReference(input)).toThrowError(message);
    try {
      parseReference(input);
    } catch (e) {
      expect((e as Error).name).toBe("InvalidReferenceError");
    }
  });

  it("maps Docker Hub to its API host and formats back", () => {
    expect(apiHost("docker.io")).toBe("registry-1.docker.io");
    expect(apiHost("localhost:5000")).toBe("localhost:5000");
    expect(formatReference(parseReference("ubuntu"))).toBe("docker.io/library/ubuntu:latest");
  });

  it("knows loopback hosts", () => {
    expect(isLoopbackHost("localhost:5000")).toBe(true);
    expect(isLoopbackHost("127.0.0.1:1234")).toBe(true);
    expect(isLoopbackHost("[::1]:5000")).toBe(true);
    expect(isLoopbackHost("ghcr.io")).toBe(false);
    expect(isLoopbackHost("localhost.example.com")).toBe(false);
  });
});
