/**
 * A corrupt store (issue 10 item 8): the central refuses to start with
 * CENTRAL_DATA_CORRUPT naming the repair command; `originwatch central repair
 * --data DIR` (the real binary) repairs it with LevelDB's own repair; the
 * central then starts and reads back what survived.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { Level } from "level";
import { startCentral } from "../main.js";
import { LevelStore, type NodeRecord } from "./level-store.js";

const BIN = fileURLToPath(new URL("../../bin/originwatch.js", import.meta.url));

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (err += c));
    const t = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("exit", (code) => (clearTimeout(t), resolve({ code, out, err })));
  });
}

const node = (nodeId: string): NodeRecord => ({
  nodeId, isp: "isp-a", region: "eu", version: "t", origins: ["img.example"], lastSeenMs: Date.now(), connectedSinceMs: 1,
  appliedConfigVersion: "", lastNackReason: "", bufferedBatches: "0", droppedBatches: "0",
});

/** A store with totals, high-water marks and nodes (seen just now, so the age-out sweep at start keeps them); reopened once so the first writes sit in a table file. */
async function seed(dir: string): Promise<void> {
  const a = await LevelStore.open(dir);
  await a.writeCounted(new Map([["n1", 41n]]), [["img.example", { requests: 1000n, failures: 7n, firstSeenMs: 1, lastSeenMs: Date.now() }]], [node("n1")]);
  await a.close();
  const b = await LevelStore.open(dir);
  await b.writeCounted(new Map([["n2", 5n]]), [["api.example", { requests: 50n, failures: 0n, firstSeenMs: 1, lastSeenMs: Date.now() }]], [node("n2")]);
  await b.close();
}

async function expectCorrupt(dir: string): Promise<string> {
  try {
    const c = await startCentral({ listen: "127.0.0.1:0", data: dir }, pino({ level: "silent" }));
    await c.close();
  } catch (err) {
    assert.is((err as { code?: string }).code, "CENTRAL_DATA_CORRUPT", String(err));
    assert.ok((err as Error).message.includes(`originwatch central repair --data ${dir}`), (err as Error).message);
    return (err as Error).message;
  }
  assert.unreachable("the central started on a corrupt store");
  return "";
}

test("a garbled CURRENT: start fails naming the repair command; the repair command fixes it; every record reads back", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-repair-"));
  try {
    await seed(dir);
    await writeFile(join(dir, "CURRENT"), "garbage");
    assert.match(await expectCorrupt(dir), /CURRENT/);

    // The real binary: start refused with the code and the command, then repaired.
    const start = await run(["central", "--listen", "127.0.0.1:0", "--data", dir]);
    assert.is(start.code, 65); // EX_DATAERR: systemd's RestartPreventExitStatus stops the loop
    assert.match(start.err, /CENTRAL_DATA_CORRUPT/);
    assert.match(start.err, /originwatch central repair --data/);
    const repair = await run(["central", "repair", "--data", dir]);
    assert.is(repair.code, 0, repair.err);
    assert.match(repair.out, /repaired .* entries readable/);

    const c = await startCentral({ listen: "127.0.0.1:0", data: dir }, pino({ level: "silent" }));
    try {
      assert.is(c.query.totals.get("img.example")?.requests, 1000n);
      assert.is(c.query.totals.get("api.example")?.requests, 50n);
      assert.is((await c.store.loadHighWater()).get("n1"), 41n);
      assert.equal((await c.store.loadNodes()).map((n) => n.nodeId).sort(), ["n1", "n2"]);
    } finally {
      await c.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a missing CURRENT is refused, not silently replaced by an empty store", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-repair-"));
  try {
    await seed(dir);
    await rm(join(dir, "CURRENT"));
    assert.match(await expectCorrupt(dir), /CURRENT is missing/);
    assert.ok((await readdir(dir)).some((f) => f.endsWith(".ldb")), "the table file is still there");
    const repair = await run(["central", "repair", "--data", dir]);
    assert.is(repair.code, 0, repair.err);
    const s = await LevelStore.open(dir);
    assert.is((await s.loadTotals()).get("img.example")?.requests, 1000n);
    assert.is((await s.loadTotals()).get("api.example")?.requests, 50n);
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a garbled table block: found on the first read at start, repaired, and what survived reads back intact", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-repair-"));
  try {
    // Enough records that one garbled block loses only some of them.
    const db = new Level<string, unknown>(dir, { valueEncoding: "json" });
    await db.open();
    const totals = db.sublevel<string, unknown>("totals", { valueEncoding: "json" });
    for (let i = 0; i < 2000; i++) await totals.put(`o${String(i).padStart(5, "0")}.example`, { requests: String(i), failures: "0", firstSeenMs: 1, lastSeenMs: Date.now() });
    await db.close();
    await (await LevelStore.open(dir)).close(); // the log becomes a table file
    const table = (await readdir(dir)).find((f) => f.endsWith(".ldb"))!;
    const bytes = await readFile(join(dir, table));
    bytes.fill(0x55, 100, 2000);
    await writeFile(join(dir, table), bytes);
    await expectCorrupt(dir);

    const repair = await run(["central", "repair", "--data", dir]);
    assert.is(repair.code, 0, repair.err);
    const s = await LevelStore.open(dir);
    const back = await s.loadTotals();
    await s.close();
    assert.ok(back.size > 1000 && back.size < 2000, `${back.size} survived`);
    for (const [origin, t] of back) assert.is(t.requests, BigInt(Number(origin.slice(1, 6))), origin);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("repair refuses a directory in use by a running central, and one with no store", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-repair-"));
  try {
    const s = await LevelStore.open(join(dir, "live"));
    const r = await run(["central", "repair", "--data", join(dir, "live")]);
    await s.close();
    // classic-level locks per process: the child is refused while this process holds it.
    assert.is(r.code, 1);
    assert.match(r.err, /CENTRAL_DATA_LOCKED/);
    const empty = await run(["central", "repair", "--data", dir]);
    assert.is(empty.code, 1);
    assert.match(empty.err, /no LevelDB store/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
