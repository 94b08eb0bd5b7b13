/**
 * The dashboard in headless Chromium against a real fleet: the page loads,
 * shows the origin HEALTHY with its ISP × region matrix and charts, and turns
 * it DOWN on screen after the origin fails (with the state change arriving
 * through WatchEvents), then back. The central requires operator tokens, so
 * the page first asks for one. Skips without chromium unless
 * ORIGINWATCH_REQUIRE_BROWSER=1.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { type Fleet, startFleet } from "../../tools/fleet/fleet.js";
import { launchBrowser } from "../../tools/test/browser.js";

let dir = "";
let fleet: Fleet;
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];
const TOKEN = "browser-read-token-0123456789";

test.before(async () => {
  browser = await launchBrowser();
  if (!browser) return;
  dir = await mkdtemp(join(tmpdir(), "ow-browser-"));
  await writeFile(join(dir, "tokens"), `${TOKEN} read dashboard-test\n`);
  fleet = await startFleet({
    dataDir: join(dir, "central"),
    isps: ["isp-a", "isp-b", "isp-c"],
    regions: ["eu", "us"],
    perCell: 1,
    origins: ["shop.example"],
    ratePerNode: 10,
    central: { tokensFile: join(dir, "tokens") },
  });
  fleet.startTraffic();
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("pageerror", (e) => pageErrors.push(e.message));
});

test.after(async () => {
  await browser?.close();
  await fleet?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("the page loads, asks for the operator token, and shows the origin HEALTHY with its ISP x region matrix and charts", async () => {
  if (!browser) return;
  await page.goto(`http://${fleet.central.address}/`);
  await page.waitForSelector("#auth:not([hidden])", { timeout: 30_000 });
  assert.is(await page.locator("#origins tbody tr").count(), 0);
  await page.fill("#auth-token", TOKEN);
  await page.click("#auth button");
  await page.waitForSelector('#origins tr[data-origin="shop.example"][data-state="HEALTHY"]', { timeout: 90_000 });
  await page.waitForSelector("#matrix tr[data-isp='isp-c'] td[data-region='us']", { timeout: 30_000 });
  assert.equal(await page.locator("#matrix tr[data-isp]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-isp"))), ["isp-a", "isp-b", "isp-c"]);
  assert.is(await page.locator("#d-name").textContent(), "shop.example");
  assert.match((await page.locator("#summary").textContent()) ?? "", /1 origins · 0 down · 0 degraded · 6\/6 nodes connected/);
  assert.is(await page.locator("#c-rate canvas, #c-rate .uplot").count() > 0, true);
  await page.waitForSelector("#live.on", { timeout: 10_000 });
  assert.equal(pageErrors, []);
});

test("the origin turns DOWN on screen after a fault (live, through WatchEvents), and recovers", async () => {
  if (!browser) return;
  await fleet.origin.setMode({ kind: "status", status: 503 });
  try {
    await page.waitForSelector('#origins tr[data-origin="shop.example"][data-state="DOWN"]', { timeout: 90_000 });
    assert.is(await page.locator("#d-state").textContent(), "DOWN");
    // The state change came over the event stream, not only the poll.
    await page.waitForFunction(() => [...document.querySelectorAll("#events li")].some((li) => /DOWN|down/.test(li.textContent ?? "")), undefined, { timeout: 30_000 });
    await page.waitForSelector('#incidents tr[data-open="true"]', { timeout: 30_000 });
    if (process.env.ORIGINWATCH_SCREENSHOT) await page.screenshot({ path: process.env.ORIGINWATCH_SCREENSHOT });
  } finally {
    await fleet.heal();
  }
  await page.waitForSelector('#origins tr[data-origin="shop.example"][data-state="HEALTHY"]', { timeout: 90_000 });
  assert.equal(pageErrors, []);
});

test.run();
