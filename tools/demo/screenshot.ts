/**
 * `npm run screenshot`: regenerates docs/dashboard.png (the README's picture)
 * from a local fleet during an ISP fault, in headless Chromium.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFleet } from "../fleet/fleet.js";
import { ROOT } from "../test/proc.js";
import { launchBrowser } from "../test/browser.js";

const dir = await mkdtemp(join(tmpdir(), "ow-shot-"));
const fleet = await startFleet({ dataDir: join(dir, "central"), isps: ["isp-a", "isp-b", "isp-c"], regions: ["eu", "us"], perCell: 1, origins: ["shop.example", "img.example"], ratePerNode: 10, sidecar: { firstByteTimeoutMs: 5000 } });
const browser = await launchBrowser();
try {
  if (!browser) throw new Error("no chromium");
  fleet.startTraffic();
  const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
  await page.goto(`http://${fleet.central.address}/#origin=shop.example`);
  await page.waitForSelector('#origins tr[data-origin="shop.example"][data-state="HEALTHY"]', { timeout: 90_000 });
  await new Promise((r) => setTimeout(r, 20_000));
  await fleet.setIsp("isp-b", { kind: "blackhole" });
  await page.waitForSelector("#incidents tr[data-open='true']", { timeout: 90_000 });
  await new Promise((r) => setTimeout(r, 10_000));
  const out = join(ROOT, "docs", "dashboard.png");
  await page.screenshot({ path: out });
  process.stdout.write(`wrote ${out}\n`);
} finally {
  await browser?.close();
  await fleet.close();
  await rm(dir, { recursive: true, force: true });
}
