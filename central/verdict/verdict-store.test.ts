import { test } from "uvu";
import * as assert from "uvu/assert";
import { Level } from "level";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { type Histogram, type OutcomeCounts, OutcomeCountsSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { OriginState } from "../../proto/gen/originwatch/v1/query_pb.js";
import { HistogramAccumulator } from "../../proto/histogram.js";
import { IncidentKind, type IncidentRecord, newTrack } from "./hysteresis.js";
import { type KV, type SublevelOpener, VerdictStore } from "./verdict-store.js";
import { columnsOfBatch } from "../ingest/window-columns.js";
import { HistoryRollups, MINUTE_MS } from "./history.js";

async function openDb(): Promise<{ db: Level<string, unknown>; open: SublevelOpener; done: () => Promise<void>; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), "ow-verdict-"));
  const db = new Level<string, unknown>(dir, { valueEncoding: "json" });
  await db.open();
  const open: SublevelOpener = <V>(name: string) => db.sublevel<string, V>(name, { valueEncoding: "json" }) as unknown as KV<V>;
  return { db, open, dir, done: async () => { await db.close(); await rm(dir, { recursive: true, force: true }); } };
}

const inc = (id: string, origin: string, open: boolean): IncidentRecord => ({
  id, kind: IncidentKind.ORIGIN_DOWN, origin, scopeKey: "", openedMs: 1, closedMs: open ? 0 : 2, open, flapping: false,
  reopenCount: 0, peakFailureRatio: 1, peakP95TtfbMs: 0, dedupeKey: `${origin}/${id}`, summary: "",
});

/** One window of 1 s as the ingest's columns (what history adds). */
const win = (origin: string, startMs: number, counts?: OutcomeCounts, ttfb?: Histogram) =>
  columnsOfBatch({ windows: [{ origin, startUnixMs: BigInt(startMs), lengthMs: 1000, counts, ttfb, packedCounts: [] } as never] });

test("incidents list newest first, filter by origin and open, and page", async () => {
  const { open, done } = await openDb();
  const s = new VerdictStore(open);
  for (let i = 0; i < 7; i++) await s.putIncident(inc(`i${i}`, i % 2 ? "a" : "b", i >= 5));
  const all = await s.listIncidents({});
  assert.equal(all.incidents.map((x) => x.id), ["i6", "i5", "i4", "i3", "i2", "i1", "i0"]);
  assert.is(all.nextPageToken, "");
  assert.equal((await s.listIncidents({ origin: "a" })).incidents.map((x) => x.id), ["i5", "i3", "i1"]);
  assert.equal((await s.listIncidents({ openOnly: true })).incidents.map((x) => x.id), ["i6", "i5"]);
  const p1 = await s.listIncidents({ pageSize: 3 });
  assert.equal(p1.incidents.map((x) => x.id), ["i6", "i5", "i4"]);
  const p2 = await s.listIncidents({ pageSize: 3, pageToken: p1.nextPageToken });
  assert.equal(p2.incidents.map((x) => x.id), ["i3", "i2", "i1"]);
  const p3 = await s.listIncidents({ pageSize: 3, pageToken: p2.nextPageToken });
  assert.equal([p3.incidents.map((x) => x.id), p3.nextPageToken], [["i0"], ""]);
  await done();
});

test("closed incidents older than the retention are pruned; open ones never", async () => {
  const { open, done } = await openDb();
  const s = new VerdictStore(open);
  await s.putIncident({ ...inc("old", "a", false), closedMs: 1000 });
  await s.putIncident({ ...inc("new", "a", false), closedMs: 9000 });
  await s.putIncident({ ...inc("open", "a", true) });
  await s.pruneIncidents(5000);
  assert.equal((await s.listIncidents({})).incidents.map((x) => x.id).sort(), ["new", "open"]);
  await done();
});

test("verdict states and live tracks survive a reopen of the database; stale tracks are dropped", async () => {
  const { dir, db, open } = await openDb();
  const s = new VerdictStore(open);
  await s.putStatus({ origin: "o", state: OriginState.DOWN, stateSinceMs: 5, faults: [], reason: "down", confirming: true, evaluatedMs: 9 });
  await s.putTrack({ ...newTrack("o"), incident: inc("x", "o", true) });
  await s.putTrack({ ...newTrack("o", "isp:a"), incident: { ...inc("y", "o", false), closedMs: 1000 } });
  await db.close();
  const db2 = new Level<string, unknown>(dir, { valueEncoding: "json" });
  const s2 = new VerdictStore(<V>(name: string) => db2.sublevel<string, V>(name, { valueEncoding: "json" }) as unknown as KV<V>);
  const st = await s2.loadStatuses();
  assert.equal([st[0].state, st[0].reason, st[0].confirming], [OriginState.DOWN, "down", false]);
  const tracks = await s2.loadTracks(1000 + 120_000, 60_000);
  assert.equal(tracks.map((t) => t.incident!.id), ["x"]);
  assert.is((await s2.loadTracks(0, 60_000)).length, 1, "the stale one was deleted");
  await db2.close();
  await rm(dir, { recursive: true, force: true });
});

test("events get time-ordered ids and are kept to a maximum count", async () => {
  const { open, done } = await openDb();
  const s = new VerdictStore(open, { maxEvents: 10 });
  const ids: string[] = [];
  for (let i = 0; i < 25; i++) ids.push(s.appendEvent({ timeMs: 1000 + i, kind: 1, origin: "o", previousState: 2, state: 4, faults: [], nodeId: "", message: `e${i}` }).id);
  await s.flush();
  assert.equal([...ids].sort(), ids);
  const left = await s.eventsSince("");
  assert.ok(left.length >= 10 && left.length <= 11, `${left.length} kept`);
  assert.is(left[left.length - 1].message, "e24");
  await done();
});

test("history: per-minute rollups merge late windows and restarts, and are pruned by age", async () => {
  const { open, done } = await openDb();
  const s = new VerdictStore(open);
  const now = 100 * MINUTE_MS;
  const h = new HistoryRollups(s, 30 * MINUTE_MS);
  const hist = new HistogramAccumulator();
  for (let i = 0; i < 10; i++) hist.record(100);
  const c = (ok: number, err: number) => create(OutcomeCountsSchema, { ok: BigInt(ok), serverError: BigInt(err) });
  h.addColumns(win("o", now - 2 * MINUTE_MS + 1000, c(10, 0), hist.toHistogram()), now);
  h.addColumns(win("o", now - MINUTE_MS + 5000, c(6, 4), undefined), now);
  h.noteState("o", now - MINUTE_MS + 6000, OriginState.DEGRADED);
  h.noteState("o", now - MINUTE_MS + 7000, OriginState.HEALTHY);
  await h.flush(now);
  // A second process (restart) adds a late window to an already stored minute.
  const h2 = new HistoryRollups(s, 30 * MINUTE_MS);
  h2.addColumns(win("o", now - MINUTE_MS + 9000, c(10, 0), undefined), now);
  const before = await h2.query("o", now - 10 * MINUTE_MS, now);
  assert.equal(before.map((p) => [p.requests, p.failures]), [[10, 0], [20, 4]]);
  await h2.flush(now);
  const pts = await new HistoryRollups(s, 30 * MINUTE_MS).query("o", now - 10 * MINUTE_MS, now);
  assert.equal(pts.map((p) => p.timeMs), [now - 2 * MINUTE_MS, now - MINUTE_MS]);
  assert.equal(pts.map((p) => [p.requests, p.failures, p.state]), [[10, 0, 0], [20, 4, OriginState.DEGRADED]]);
  assert.ok(pts[0].p95TtfbMs > 80 && pts[0].p95TtfbMs < 120, `p95 ${pts[0].p95TtfbMs}`);
  await h.prune(now + 29 * MINUTE_MS);
  await s.flush();
  assert.equal((await h.query("o", 0, now * 2)).map((p) => p.timeMs), [now - MINUTE_MS]);
  h.addColumns(win("o", 0, c(1, 0), undefined), now + 60 * MINUTE_MS);
  assert.equal((await h.query("o", 0, 10 * MINUTE_MS)).length, 0, "windows older than the retention are ignored");
  await done();
});

test.run();
