import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LevelStore } from "./level-store.js";

test("totals and high-water marks committed together survive a reopen", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-store-"));
  try {
    const a = await LevelStore.open(dir);
    await a.writeCounted(new Map([["n1", 7n]]), [["img.example", { requests: 100n, failures: 3n, firstSeenMs: 1, lastSeenMs: 2 }]]);
    await a.close();
    const b = await LevelStore.open(dir);
    assert.is((await b.loadTotals()).get("img.example")?.requests, 100n);
    assert.is((await b.loadTotals()).get("img.example")?.failures, 3n);
    assert.is((await b.loadHighWater()).get("n1"), 7n);
    await b.close();
    await b.close(); // idempotent
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a second open of the same directory fails with CENTRAL_DATA_LOCKED", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-store-"));
  const a = await LevelStore.open(dir);
  try {
    let code = "";
    // classic-level locks per process too, so a second handle in this process is refused the same way.
    try {
      const b = await LevelStore.open(dir);
      await b.close();
    } catch (err) {
      code = (err as { code: string }).code;
    }
    assert.is(code, "CENTRAL_DATA_LOCKED");
  } finally {
    await a.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
