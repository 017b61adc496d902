/**
 * The `ferry bench --html` report in a real browser (headless Chromium): one page load of a report built
 * from known per-second data. Every chart spans the whole run (0 to its 5.1 s), the legends show the
 * whole run's figures at rest and, hovering a second, that second's values — read from the DOM and
 * checked against the data — up to the run's last instant, the partial last second included. A
 * screenshot of the hovered page is kept in test/.results/ for people to look at.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseBenchConfig } from "../../../load/config.ts";
import { renderHtml } from "../../../load/html.ts";
import { OpRecorder } from "../../../load/metrics.ts";
import { type BenchReport, buildReport } from "../../../load/report.ts";
import { mergeWorkerResults, type WorkerResult } from "../../../load/runner.ts";
import { describeWithChromium, launchChromium } from "../../helpers/chromium.ts";
import { tmpDir } from "../../helpers/tmp.ts";

const DURATION_MS = 5100; // seconds 0-4 whole, second 5 a tenth inside the run
const SECONDS = 6;

/** Second s: 10 + s blob GETs of s + 1 ms (1 MB each), one failing in second 2; 5 pulls of 2(s + 1) ms. */
function report(): BenchReport {
  const blobs = new OpRecorder();
  const pulls = new OpRecorder();
  for (let s = 0; s < SECONDS; s++) {
    for (let i = 0; i < 10 + s; i++) {
      blobs.record(s, 1000 * (s + 1), false, "200");
      blobs.addBytes(s, 1e6);
    }
    if (s === 2) blobs.record(s, undefined, true, "500", "HTTP_500");
    for (let i = 0; i < 5; i++) pulls.record(s, 2000 * (s + 1), false);
  }
  const worker = {
    workers: 1,
    startedAt: Date.UTC(2026, 0, 1),
    durationMs: DURATION_MS,
    requests: { "blob.get": blobs.serialise() },
    iterations: { pull: pulls.serialise() },
    counters: {},
    errorSamples: {},
    created: [],
  } as unknown as WorkerResult;
  const config = parseBenchConfig("localhost:5000", { scenario: "pull" });
  return buildReport(config, mergeWorkerResults([worker]), { images: [] });
}

/** `actual` (as the legend prints it, 3 significant digits) is `expected`. */
function near(actual: string | undefined, expected: number): void {
  const n = Number(actual);
  expect(Number.isFinite(n), `legend value "${actual}"`).toBe(true);
  expect(Math.abs(n - expected)).toBeLessThanOrEqual(Math.abs(expected) * 0.006 + 0.001);
}

describeWithChromium("ferry bench HTML report in Chromium", () => {
  let browser: Browser;
  let page: Page;
  const r = report();

  beforeAll(async () => {
    const file = join(tmpDir("ferry-html-"), "report.html");
    writeFileSync(file, renderHtml(r));
    browser = await launchChromium();
    // tall enough that every chart is on screen: the mouse moves without scrolling
    page = await browser.newPage({ viewport: { width: 1200, height: 2000 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`file://${file}`);
    await page.waitForSelector("body[data-rendered=true]");
    expect(errors).toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
  });

  const legend = (id: string) => page.locator(`#${id} .u-legend .u-value`).allTextContents();

  /** Moves the mouse to second `x` of chart `id` and waits until its legend names the step `label`. */
  async function hover(id: string, x: number, label: string): Promise<string[]> {
    const at = await page.evaluate(
      ([chartId, sec]) => {
        const u = (globalThis as unknown as InPage).ferryCharts[chartId]!;
        const box = u.over.getBoundingClientRect();
        return { x: box.left + u.valToPos(sec, "x"), y: box.top + box.height / 2 };
      },
      [id, x] as const,
    );
    await page.mouse.move(at.x, at.y);
    await page.waitForFunction(
      ([chartId, want]) =>
        (globalThis as unknown as InPage).document.querySelector(`#${chartId} .u-legend .u-value`)
          ?.textContent === want,
      [id, label] as const,
    );
    return legend(id);
  }

  it("every chart spans the whole run; at rest the legends show the whole run's figures", async () => {
    const ids = ["lat", "tput", "bytes", "errs"];
    const scales = await page.evaluate(
      (list) =>
        list.map((id) => {
          const u = (globalThis as unknown as InPage).ferryCharts[id];
          return u ? [u.scales.x.min, u.scales.x.max] : undefined;
        }),
      ids,
    );
    expect(scales).toEqual(ids.map(() => [0, DURATION_MS / 1000]));

    const pull = r.iterations.byKind.find((o) => o.name === "pull")!;
    const blob = r.requests.find((o) => o.name === "blob.get")!;
    const lat = await legend("lat");
    expect(lat[0]).toBe("whole run");
    const whole = [pull.latency!.p50, pull.latency!.p90, pull.latency!.p99, pull.latency!.max];
    expect(lat).toHaveLength(5);
    for (const [i, v] of lat.slice(1).entries()) near(v, whole[i]!);
    const tput = await legend("tput");
    expect(tput[0]).toBe("whole run");
    near(tput[1], pull.opsPerSec);
    near(tput[2], blob.opsPerSec);
    near((await legend("bytes"))[1], blob.bytesPerSec / 1e6);
    near((await legend("errs"))[1], 1 / (DURATION_MS / 1000));
  });

  it("hovering shows that second's values in every chart, up to the run's last instant", async () => {
    // second 2: [2, 3)
    const lat = await hover("lat", 2.5, "2–3");
    expect(lat).toHaveLength(5); // the second, p50, p90, p99, max
    for (const v of lat.slice(1)) near(v, 6);
    const tput = await hover("tput", 2.5, "2–3");
    near(tput[1], 5);
    near(tput[2], 13); // 12 answered + 1 failed
    near((await hover("bytes", 2.5, "2–3"))[1], 12);
    near((await hover("errs", 2.5, "2–3"))[1], 1);

    // the last instant: second 5 is a tenth inside the run; for rates it joins second 4 (4 to 5.1 s)
    const end = DURATION_MS / 1000 - 0.01;
    const latEnd = await hover("lat", end, "5–5.1");
    expect(latEnd).toHaveLength(5);
    for (const v of latEnd.slice(1)) near(v, 12);
    const tputEnd = await hover("tput", end, "4–5.1");
    near(tputEnd[1], 10 / 1.1);
    near(tputEnd[2], (14 + 15) / 1.1);
    near((await hover("bytes", end, "4–5.1"))[1], (14 + 15) / 1.1);
    near((await hover("errs", end, "4–5.1"))[1], 0);

    // for people: the page with the throughput chart hovered
    await hover("tput", 1.5, "1–2");
    const png = await page.screenshot({ fullPage: true });
    expect(png.subarray(1, 4).toString("latin1")).toBe("PNG");
    const out = join(import.meta.dirname, "..", "..", ".results");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "bench-report-hovered.png"), png);
  });
});

/** What the tests use of the page's globals (this project's TypeScript has no DOM types). */
interface InPage {
  document: { querySelector(selector: string): { textContent: string | null } | null };
  /** The uPlot instances, by chart element id (load/html.ts). */
  ferryCharts: Record<
    string,
    {
      over: { getBoundingClientRect(): { left: number; top: number; height: number } };
      valToPos(v: number, scale: string): number;
      scales: { x: { min: number; max: number } };
    }
  >;
}
