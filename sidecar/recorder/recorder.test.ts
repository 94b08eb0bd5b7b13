import { test } from "uvu";
import * as assert from "uvu/assert";
import { Recorder } from "./recorder.js";

function clock(start: number) {
  const c = { t: start, now: () => c.t };
  return c;
}

test("counts outcomes per origin in the window where they complete", () => {
  const c = clock(10_000);
  const r = new Recorder({ windowMs: 1000, now: c.now });
  r.complete("a", "ok", 5, 100, 10);
  r.complete("a", "ok", 7, 100, 0);
  r.complete("a", "server_error", 9);
  r.complete("b", "connect_refused", undefined);
  c.t = 10_999;
  assert.equal(r.flush(), [], "an open window is not flushed");
  c.t = 11_000;
  r.complete("a", "ok", 3);
  const w = r.flush();
  assert.is(w.length, 2);
  const a = w.find((x) => x.origin === "a")!;
  assert.is(a.startUnixMs, 10_000n);
  assert.is(a.lengthMs, 1000);
  assert.is(a.counts!.ok, 2n);
  assert.is(a.counts!.serverError, 1n);
  assert.is(a.ttfb!.count, 3n);
  assert.is(a.bytesIn, 200n);
  assert.is(a.bytesOut, 10n);
  const b = w.find((x) => x.origin === "b")!;
  assert.is(b.counts!.connectRefused, 1n);
  assert.is(b.ttfb!.count, 0n, "no TTFB without a response head");
  const rest = r.flush(true);
  assert.is(rest.length, 1);
  assert.is(rest[0].startUnixMs, 11_000n);
  assert.is(rest[0].counts!.ok, 1n);
});

test("stalls count in the window they cross, recoveries where the first byte lands", () => {
  const c = clock(20_000);
  const r = new Recorder({ windowMs: 1000, now: c.now });
  c.t = 22_100;
  r.stall("a");
  c.t = 23_500;
  r.stallRecovered("a");
  r.complete("a", "ok", 3400);
  c.t = 24_000;
  const w = r.flush();
  assert.is(w.length, 2);
  assert.is(w[0].startUnixMs, 22_000n);
  assert.is(w[0].counts!.stall, 1n);
  assert.is(w[0].counts!.ok, 0n);
  assert.is(w[1].counts!.stallRecovered, 1n);
  assert.is(w[1].counts!.ok, 1n);
});

test("flushed windows are removed", () => {
  const c = clock(0);
  const r = new Recorder({ windowMs: 1000, now: c.now });
  r.complete("a", "ok", 1);
  c.t = 5000;
  assert.is(r.flush().length, 1);
  assert.is(r.flush().length, 0);
});

test("rebase re-dates open windows onto the corrected clock, merging windows that land together, losing no count", () => {
  const c = clock(600_000 + 10_000);
  const r = new Recorder({ windowMs: 1000, now: c.now });
  r.complete("a", "ok", 5);
  c.t += 1000;
  r.complete("a", "server_error", 5);
  r.rebase(600_500); // the correction grew by 10 min + 0.5 s: 610,000 → 9,500 → window 9,000
  c.t -= 600_500;
  const w = r.flush(true);
  assert.equal(w.map((x) => Number(x.startUnixMs)), [9000, 10_000]);
  assert.is(w[0].counts!.ok + w[1].counts!.ok, 1n);
  assert.is(w[0].counts!.serverError + w[1].counts!.serverError, 1n);
  const m = new Recorder({ windowMs: 1000, now: c.now });
  m.complete("a", "ok", 1);
  c.t += 1000;
  m.complete("a", "ok", 2);
  m.rebase(-100_000);
  m.rebase(100_000);
  const merged = m.flush(true);
  assert.is(merged.reduce((n, x) => n + Number(x.counts!.ok), 0), 2);
  assert.is(merged.reduce((n, x) => n + Number(x.ttfb!.count), 0), 2);
});

test.run();
