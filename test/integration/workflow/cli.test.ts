/** `ferry workflow copy` and `ferry sync`: the definitions run locally from the command line. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { formatReference } from "../../../shared/registry/reference.ts";
import { ferry } from "../../helpers/ferry-cli.ts";
import { clientFor, registries, uniqueRepo } from "../../helpers/registry-client.ts";
import { MiB, pushSampleImage, removeTempDirs, skopeoDigest, tempDir } from "./helpers.ts";

const regs = registries();
const anon = clientFor(regs.anon);
afterAll(async () => {
  removeTempDirs();
  await anon.close();
});
// The sources, so the command is there even when dist/ferry.mjs predates it (npm test rebuilds it).
const env = { FERRY_FROM_SOURCE: "1" };
const creds = `${regs.token.username}:${regs.token.password}`;

describe("ferry workflow", () => {
  it("workflow copy: many small steps through a staging directory, digest intact", async () => {
    const src = { registry: regs.anon.host, repository: uniqueRepo("wf-cli"), tag: "v1" };
    const { index } = await pushSampleImage(anon, src, { bigSize: 1 * MiB, platforms: 1 });
    const dst = `${regs.token.host}/${uniqueRepo("wf-clidst")}:v1`;
    const staging = tempDir("ferry-cli-staging-");
    const r = await ferry(
      [
        "workflow",
        "copy",
        `docker://${formatReference(src)}`,
        dst,
        "--dest-creds",
        creds,
        "--staging",
        staging,
        "--step-bytes",
        "256KiB",
        "--part-size",
        "64KiB",
        "--chunk-size",
        "64KiB",
        "--direct-max",
        "128KiB",
        "--json",
      ],
      env,
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ digest: index.digest, upToDate: false });
    expect(await skopeoDigest(regs.token, dst)).toBe(index.digest);
  });

  it("sync <config.json>: a bulk migration from a JSON config", async () => {
    const ns = `clisync${process.pid}${Date.now().toString(36)}`;
    await pushSampleImage(
      anon,
      { registry: regs.anon.host, repository: `${ns}/a`, tag: "1.0.0" },
      { bigSize: 64 * 1024, platforms: 1 },
    );
    const config = join(tempDir("ferry-cli-sync-"), "sync.json");
    writeFileSync(
      config,
      JSON.stringify({
        source: `${regs.anon.host}/${ns}`,
        destination: `${regs.token.host}/m-${ns}`,
        tags: { semver: "^1" },
      }),
    );
    const r = await ferry(["sync", config, "--dest-creds", creds], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 image\(s\): 1 copied, 0 failed/);
    expect(r.stderr).toMatch(/enumerated: 1 image/);
  });

  it("usage errors exit 2 with a message; a failed workflow exits 1 with its cause", async () => {
    const bad = await ferry(["workflow", "copy", "oci:/tmp/x", "localhost:1/x", "--step-bytes", "1"], env);
    expect(bad.code).toBe(2);
    const size = await ferry(["workflow", "copy", "a.io/b:c", "d.io/e", "--step-bytes", "lots"], env);
    expect(size.code).toBe(2);
    expect(size.stderr).toMatch(/--step-bytes "lots"/);
    const yaml = await ferry(["sync", "migrate.yaml"], env);
    expect(yaml.code).toBe(2);
    expect(yaml.stderr).toMatch(/JSON/);
    const missing = await ferry(
      ["workflow", "copy", `${regs.anon.host}/${uniqueRepo("none")}:v1`, `${regs.anon.host}/x:v1`, "-q"],
      env,
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^ferry: RegistryError: .*404/);
  });
});
