import { describe, expect, it } from "vitest";
import { ferry } from "../../helpers/ferry-cli.ts";

describe("README's main-job command", () => {
  it("ferry demo (npm run demo) runs end to end and verifies what it copied", async () => {
    const res = await ferry(["demo"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/3\. copied again: already up to date, 0 blob bytes moved/);
    expect(res.stdout).toMatch(/Step Functions workflow .* same digest ✓/);
    expect(res.stdout).toMatch(/tmp\/scratch\.txt removed by the upper layer's whiteout/);
    expect(res.stdout).toMatch(/every digest matches/);
    expect(res.stdout).toMatch(/done: no Docker daemon or client was used/);
  }, 60_000);
});
