/**
 * Durable what must be durable (issue 10 item 8), on a real LevelDB:
 * rollups are written then marked (a failed write leaves the minute dirty and
 * the next flush writes the exact totals; a window added during a write is not
 * lost), and incidents, tracks, events and rollups are written with sync.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Level } from "level";
import { create } from "@bufbuild/protobuf";
import { type Histogram, type OutcomeCounts, OutcomeCountsSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IncidentKind, type IncidentRecord, newTrack } from "./hysteresis.js";
import { HistoryRollups, MINUTE_MS } from "./history.js";
import { columnsOfBatch } from "../ingest/window-columns.js";
import { type KV, type SublevelOpener, VerdictStore, type WriteOptions } from "./verdict-store.js";

/** A real sublevel whose writes can be made to fail or wait, and which records the options of each write. */
interface Faults {
  failWrites: boolean;
  gate?: Promise<void>;
  writes: Array<{ sublevel: string; sync: boolean }>;
}

async function openDb() {
  const dir = await mkdtemp(join(tmpdir(), "ow-durable-"));
  let db = new Level<string, unknown>(dir, { valueEncoding: "json" });
  await db.open();
  const faults: Faults = { failWrites: false, writes: [] };
  const opener =
    (wrap: boolean): SublevelOpener =>
    <V>(name: string) => {
      const kv = db.sublevel<string, V>(name, { valueEncoding: "json" }) as unknown as KV<V>;
      if (!wrap) return kv;
      const before = async (options?: WriteOptions) => {
        faults.writes.push({ sublevel: name, sync: options?.sync === true });
        if (faults.gate) await faults.gate;
        if (faults.failWrites) throw new Error("injected write failure (disk full)");
      };
      return {
        ...kv,
        get: (k: string) => kv.get(k),
        del: (k: string) => kv.del(k),
        iterator: (o?: object) => kv.iterator(o),
        keys: (o?: object) => kv.keys(o),
        put: async (k: string, v: V, o?: WriteOptions) => (await before(o), kv.put(k, v, o)),
        batch: async (ops, o?: WriteOptions) => (await before(o), kv.batch(ops, o)),
      } as KV<V>;
    };
  return {
    faults,
    open: opener(true),
    /** Close and reopen the database: what a restarted central reads. */
    reopen: async () => {
      await db.close();
      db = new Level<string, unknown>(dir, { valueEncoding: "json" });
      await db.open();
      return opener(false);
    },
    done: async () => {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const counts = (ok: number, e5: number) => create(OutcomeCountsSchema, { ok: BigInt(ok), serverError: BigInt(e5) });

/** One window of 1 s as the ingest's columns (what history adds). */
const win = (origin: string, startMs: number, counts?: OutcomeCounts, ttfb?: Histogram) =>
  columnsOfBatch({ windows: [{ origin, startUnixMs: BigInt(startMs), lengthMs: 1000, counts, ttfb, packedCounts: [] } as never] });

test("a failed rollup write leaves the minute dirty: the next flush writes the exact totals", async () => {
  const d = await openDb();
  try {
    const now = Date.now();
    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const h = new HistoryRollups(new VerdictStore(d.open), 3600_000);
    h.addColumns(win("img.example", minute + 1000, counts(90, 10), undefined), now);
    d.faults.failWrites = true;
    let failed = false;
    await h.flush(now).catch(() => (failed = true));
    assert.ok(failed, "flush must reject when the write failed");
    d.faults.failWrites = false;
    h.addColumns(win("img.example", minute + 2000, counts(5, 0), undefined), now);
    await h.flush(now);
    const fresh = new HistoryRollups(new VerdictStore(await d.reopen()), 3600_000);
    const [p] = await fresh.query("img.example", minute, minute);
    assert.is(p?.requests, 105);
    assert.is(p?.failures, 10);
  } finally {
    await d.done();
  }
});

test("a window added while a rollup write is in flight is written by the next flush", async () => {
  const d = await openDb();
  try {
    const now = Date.now();
    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
    const h = new HistoryRollups(new VerdictStore(d.open), 3600_000);
    h.addColumns(win("img.example", minute, counts(10, 0), undefined), now);
    let release!: () => void;
    d.faults.gate = new Promise<void>((r) => (release = r));
    const first = h.flush(now);
    await new Promise((r) => setTimeout(r, 20));
    h.addColumns(win("img.example", minute, counts(7, 3), undefined), now); // during the write
    d.faults.gate = undefined;
    release();
    await first;
    await h.flush(now);
    const fresh = new HistoryRollups(new VerdictStore(await d.reopen()), 3600_000);
    const [p] = await fresh.query("img.example", minute, minute);
    assert.is(p?.requests, 20);
    assert.is(p?.failures, 3);
  } finally {
    await d.done();
  }
});

test("incidents, tracks, events and rollups are written with sync; the last verdict is not", async () => {
  const d = await openDb();
  try {
    const s = new VerdictStore(d.open);
    const inc: IncidentRecord = {
      id: "i1", kind: IncidentKind.ORIGIN_DOWN, origin: "o", scopeKey: "", openedMs: 1, closedMs: 0, open: true, flapping: false,
      reopenCount: 0, peakFailureRatio: 1, peakP95TtfbMs: 0, dedupeKey: "o/i1", summary: "",
    };
    await s.putIncident(inc);
    await s.putTrack({ ...newTrack("o", "origin"), incident: inc } as never);
    s.appendEvent({ timeMs: 1, kind: 1, origin: "o", previousState: 0, state: 1, faults: [], nodeId: "", message: "m" });
    await s.flush();
    await s.putRollups([{ origin: "o", minuteMs: 0, rec: { requests: 1, failures: 0, ttfb: {}, state: 0 } }]);
    await s.putStatus({ origin: "o", state: 1 } as never);
    const synced = (name: string) => d.faults.writes.filter((w) => w.sublevel === name).map((w) => w.sync);
    assert.equal(synced("incidents"), [true]);
    assert.equal(synced("tracks"), [true]);
    assert.equal(synced("events"), [true]);
    assert.equal(synced("rollups"), [true]);
    assert.equal(synced("verdicts"), [false]);
  } finally {
    await d.done();
  }
});

test.run();
