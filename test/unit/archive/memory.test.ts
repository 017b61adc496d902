/**
 * Streaming, measured: a 64 MiB layer generated on the fly (never a buffer) goes through rootfs
 * extraction (gzip and plain tar), a docker-archive sink and back out of the archive, and an OCI
 * layout sink and back, while the resident memory grows by well under the layer size.
 *
 * The measurement runs in a child process (test/fixtures/archive/memory-probe.ts) started with
 * --expose-gc: a clean heap and a forced GC before each scenario make RSS meaningful, which it is
 * not inside a busy test worker.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tmpDir } from "../../helpers/tmp.ts";

const PROBE = fileURLToPath(new URL("../../fixtures/archive/memory-probe.ts", import.meta.url));
const LAYER_MIB = 64;
/** Allowed peak RSS growth per scenario: a quarter of the layer (observed: 0.1–8 MiB, for 64 or 256 MiB alike). */
const BUDGET = (LAYER_MIB / 4) * 1024 * 1024;

describe("memory stays flat with layer size", () => {
  it(`moves a ${LAYER_MIB} MiB generated layer through extraction and both sinks with little RSS growth`, async () => {
    const dir = tmpDir("ferry-archive-mem-");
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--expose-gc", PROBE, dir, String(LAYER_MIB)],
      {
        timeout: 60_000,
      },
    );
    const growth = JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, number>;
    expect(Object.keys(growth)).toEqual(["extractGzip", "extractTar", "dockerArchive", "ociLayout"]);
    for (const [scenario, bytes] of Object.entries(growth)) {
      expect({ scenario, growthMiB: Math.round((bytes / 1048576) * 10) / 10 }).toEqual({
        scenario,
        growthMiB: expect.toSatisfy((v: number) => v * 1048576 < BUDGET),
      });
    }
  });
});
