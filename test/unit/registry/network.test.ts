/** The address classification behind the Lambda functions' network policy (shared/registry/http/network.ts). */
import { describe, expect, it } from "vitest";
import { nonPublicKind } from "../../../shared/registry/http/network.ts";

describe("nonPublicKind", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["169.254.169.254", "link-local"],
    ["100.64.0.1", "shared (CGNAT)"],
    ["0.0.0.0", "reserved"],
    ["224.0.0.1", "multicast"],
    ["255.255.255.255", "reserved"],
    ["::1", "loopback"],
    ["::", "unspecified"],
    ["fd00:ec2::254", "unique-local"],
    ["fe80::1", "link-local"],
    ["ff02::1", "multicast"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:169.254.169.254", "link-local"],
    ["64:ff9b::a9fe:a9fe", "link-local"],
    ["2002:0a00:0001::", "private"],
    ["not-an-ip", "malformed"],
  ])("%s is %s", (address, kind) => {
    expect(nonPublicKind(address)).toBe(kind);
  });

  it.each(["8.8.8.8", "172.32.0.1", "100.128.0.1", "52.94.1.1", "2600:1f18::1", "::ffff:52.94.1.1"])(
    "%s is public",
    (address) => {
      expect(nonPublicKind(address)).toBeUndefined();
    },
  );
});
