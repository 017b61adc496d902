/**
 * Streaming, measured: a layer generated on the fly (never a buffer) goes through rootfs extraction
 * (gzip and plain tar), a docker-archive sink and back out of the archive, and an OCI layout sink and
 * back. Each scenario runs in its own child process (test/fixtures/archive/memory-probe.ts) once with a
 * small layer and once with a layer 16 times larger; the kernel's peak-RSS high-water mark of the two
 * processes (process.resourceUsage().maxRSS) may differ by well under the difference in layer size.
 * A control scenario that holds the layer in memory shows that the measurement sees such a layer.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tmpDir } from "../../helpers/tmp.ts";

const PROBE = fileURLToPath(new URL("../../fixtures/archive/memory-probe.ts", import.meta.url));
const SMALL_MIB = 4;
const LARGE_MIB = 64;
const MiB = 1024 * 1024;
/**
 * Allowed growth of the peak from the small layer to the large one: half the difference. Streaming grows
 * by ~4 MiB on a quiet machine and up to ~15 MiB on a loaded one (buffers fill while a consumer waits for
 * the CPU); a copy that holds the layer grows by all of it (the control, below, must exceed 3/4).
 */
const BUDGET = ((LARGE_MIB - SMALL_MIB) / 2) * MiB;

async function peakRss(scenario: string, mib: number): Promise<number> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--expose-gc", PROBE, tmpDir("ferry-archive-mem-"), scenario, String(mib)],
    { timeout: 120_000 },
  );
  const r = JSON.parse(stdout.trim().split("\n").at(-1)!) as { scenario: string; maxRSS: number };
  expect(r.scenario).toBe(scenario);
  expect(r.maxRSS).toBeGreaterThan(0);
  return r.maxRSS;
}

/** Peak RSS growth from the small layer to the large one (the two probes run one after the other). */
async function growth(scenario: string): Promise<number> {
  const small = await peakRss(scenario, SMALL_MIB);
  const large = await peakRss(scenario, LARGE_MIB);
  return large - small;
}

describe("memory stays flat with layer size", () => {
  it("the measurement sees a layer held in memory (control: a naive buffering copy)", async () => {
    expect((await growth("buffered")) / MiB).toBeGreaterThan((LARGE_MIB - SMALL_MIB) * 0.75);
  });

  for (const scenario of ["extractGzip", "extractTar", "dockerArchive", "ociLayout"]) {
    it(`${scenario}: peak RSS grows by under ${BUDGET / MiB} MiB when the layer grows from ${SMALL_MIB} to ${LARGE_MIB} MiB`, async () => {
      const g = await growth(scenario);
      expect({ scenario, growthMiB: Math.round((g / MiB) * 10) / 10 }).toEqual({
        scenario,
        growthMiB: expect.toSatisfy((v: number) => v * MiB < BUDGET),
      });
    });
  }
});
