/**
 * A rate-limit budget (shared/registry/http/rate-budget.ts): a source that says, as Docker Hub does, how
 * many pulls are left (`ratelimit-remaining`, one pull per manifest GET) makes a bulk run stop cleanly
 * before the limit — the images it could not start fail at once, into the failure list — instead of
 * collecting 429s; the report says what the run used.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { imageOf, seededBlob, writeSample } from "../../../shared/sample/image.ts";
import { parseCopyList } from "../../../shared/transfer/copy-list.ts";
import { RegistrySink } from "../../../shared/transfer/registry-endpoints.ts";
import { startFaultProxy } from "../../helpers/fault-proxy.ts";
import { ferry } from "../../helpers/ferry-cli.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { removeTmpDir, tmpDir } from "../../helpers/tmp.ts";

const regs = registries();
const dir = tmpDir("ferry-rate-");
afterAll(() => removeTmpDir(dir));

describe("a registry's rate limit", () => {
  it("a bulk run stops before the limit: no 429, the rest in the failure list, the budget reported", async () => {
    const anon = clientFor(regs.anon);
    const repos: string[] = [];
    for (let i = 0; i < 8; i++) {
      const repository = uniqueRepo("rate");
      const layer = await seededBlob(`rate-${repository}`, 2_000);
      const img = imageOf([{ blob: layer, diffId: layer.desc.digest }], {
        os: "linux",
        architecture: "amd64",
      });
      await writeSample(
        new RegistrySink(anon, { registry: regs.anon.host, repository }),
        [img],
        undefined,
        "v1",
      );
      repos.push(repository);
    }
    await anon.close();

    // The source's limit: 10 pulls per 6 h, 5 left; every manifest GET takes one; beyond: 429.
    let left = 5;
    let tooMany = 0;
    const source = await startFaultProxy(regs.anon.url, (r) => {
      const counted = r.method === "GET" && r.url.includes("/manifests/");
      if (counted && left <= 0) {
        tooMany++;
        return {
          kind: "status",
          status: 429,
          headers: { "ratelimit-limit": "10;w=21600", "ratelimit-remaining": "0;w=21600" },
          body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}',
        };
      }
      if (counted) left--;
      const now = left;
      return {
        kind: "rewrite-response",
        headers: (h) => ({ ...h, "ratelimit-limit": "10;w=21600", "ratelimit-remaining": `${now};w=21600` }),
      };
    });
    try {
      const list = join(dir, "list.txt");
      const failed = join(dir, "failed.txt");
      writeFileSync(list, repos.map((r) => `${source.host}/${r}:v1 ${regs.serve.host}/${r}:v1`).join("\n"));
      const out = await ferry(["copy", "--from-file", list, "--failures", failed, "--json"]);
      expect(out.code).toBe(1);
      const json = JSON.parse(out.stdout) as {
        images: unknown[];
        rateLimits: { registry: string; used: number; remaining: number; limit: number }[];
      };
      // five images copied with the five pulls left; the three others never sent a counted request
      expect(json.images).toHaveLength(5);
      expect(tooMany).toBe(0);
      expect(json.rateLimits).toEqual([
        expect.objectContaining({
          registry: source.host,
          used: 5,
          remainingAtStart: 5,
          remaining: 0,
          limit: 10,
        }),
      ]);
      const retry = parseCopyList(readFileSync(failed, "utf8"), failed);
      expect(retry).toHaveLength(3);
      expect(readFileSync(failed, "utf8")).toMatch(/rate limit has 0 pull\(s\) left of 10 per 6 h/);
      // the failed lines are exactly the images not at the destination
      const check = clientFor(regs.serve);
      try {
        const missing = [];
        for (const r of repos)
          if (!(await check.headManifest({ registry: regs.serve.host, repository: r, tag: "v1" })))
            missing.push(r);
        expect(retry.map((p) => p.source.replace(`${source.host}/`, "").replace(/:v1$/, "")).sort()).toEqual(
          missing.sort(),
        );
      } finally {
        await check.close();
      }
    } finally {
      await source.close();
    }
  });
});
