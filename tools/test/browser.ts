/**
 * Headless Chromium for tests, driven by playwright-core with the system's
 * Debian `chromium` (never a downloaded browser). Without a browser the test
 * skips with a message, unless ORIGINWATCH_REQUIRE_BROWSER=1 (CI), where a
 * missing browser is a failure.
 */
import { existsSync } from "node:fs";
import type { Browser } from "playwright-core";

// ORIGINWATCH_CHROMIUM names the one browser to use (and nothing else).
const CANDIDATES = process.env.ORIGINWATCH_CHROMIUM ? [process.env.ORIGINWATCH_CHROMIUM] : ["/usr/bin/chromium", "/usr/bin/chromium-browser"];

export const CHROMIUM_FLAGS = [
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function findChromium(): string | undefined {
  return CANDIDATES.find((p) => existsSync(p));
}

/**
 * A fresh headless browser (playwright gives it a new temporary profile and
 * passes --headless and --no-sandbox), or undefined when none is installed
 * and none is required.
 */
export async function launchBrowser(): Promise<Browser | undefined> {
  const executablePath = findChromium();
  if (!executablePath) {
    if (process.env.ORIGINWATCH_REQUIRE_BROWSER === "1") throw new Error("ORIGINWATCH_REQUIRE_BROWSER=1 but no chromium found (apt-get install chromium)");
    process.stderr.write("SKIP browser test: no chromium installed (apt-get install chromium; ORIGINWATCH_REQUIRE_BROWSER=1 makes this a failure)\n");
    return undefined;
  }
  const { chromium } = await import("playwright-core");
  return chromium.launch({ executablePath, headless: true, chromiumSandbox: false, args: CHROMIUM_FLAGS, timeout: 60_000 });
}
