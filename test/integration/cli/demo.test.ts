import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ferry } from "../../helpers/ferry-cli.ts";
import { SKOPEO, skopeoMissing } from "../../helpers/skopeo.ts";
import { tmpDir } from "../../helpers/tmp.ts";

describe("README's main-job command", () => {
  it("ferry demo (npm run demo) runs end to end and verifies what it copied", async () => {
    const res = await ferry(["demo"], { FERRY_SKOPEO: SKOPEO });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/3\. copied again: already up to date, 0 blob bytes moved ✓/);
    expect(res.stdout).toMatch(/Step Functions workflow .* same digest ✓/);
    expect(res.stdout).toMatch(/tmp\/scratch\.txt removed by the upper layer's whiteout ✓/);
    expect(res.stdout).toMatch(/every digest matches/);
    // skopeo's reading is one of the checks whenever skopeo is there (CI installs it)
    if (!skopeoMissing()) expect(res.stdout).toMatch(/skopeo \(an independent client\) reads .* ✓/);
    expect(res.stdout).not.toContain("✗");
    expect(res.stdout).toMatch(/done: no Docker daemon or client was used/);
  }, 60_000);

  it("a failed check (✗) makes the demo exit 1 with one line naming it", async () => {
    // a "skopeo" that reads a manifest other than the one ferry copied
    const fake = join(tmpDir("ferry-demo-skopeo-"), "skopeo");
    writeFileSync(fake, '#!/bin/sh\nprintf \'{"schemaVersion":2,"manifests":[]}\'\n');
    chmodSync(fake, 0o755);
    const res = await ferry(["demo"], { FERRY_SKOPEO: fake });
    expect(res.stdout).toMatch(/skopeo \(an independent client\) reads .* ✗/);
    expect(res.stdout).not.toMatch(/done: no Docker daemon or client was used/);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split("\n")).toEqual([
      "ferry: 1 check(s) failed (✗ above): skopeo reads another digest",
    ]);
  }, 60_000);
});
