/**
 * The one place that finds a browser for the tests: FERRY_CHROMIUM, else Debian's /usr/bin/chromium
 * (.ci/run installs it), driven by playwright-core (a devDependency that downloads no browser of its own).
 * As with skopeo (skopeo.ts): under CI a missing browser fails the suite with the reason; on a developer's
 * machine the suite is skipped, and its name says why.
 */
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";
import { describe } from "vitest";

export const CHROMIUM = process.env.FERRY_CHROMIUM || "/usr/bin/chromium";

export function chromiumMissing(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  return `chromium not found at ${CHROMIUM} (apt-get install -y chromium, or set FERRY_CHROMIUM to its path)`;
}

export function describeWithChromium(name: string, fn: () => void): void {
  const missing = chromiumMissing();
  if (missing && process.env.CI) throw new Error(`${name}: ${missing}; CI must run the browser tests`);
  if (missing) describe.skip(`${name} — skipped: ${missing}`, fn);
  else describe(name, fn);
}

/** Headless Chromium with nothing that reaches the network on its own (updates, sync, first-run pages). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}
