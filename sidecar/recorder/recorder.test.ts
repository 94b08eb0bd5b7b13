import { test } from "uvu";
import * as assert from "uvu/assert";
import type { WindowSummary } from "../../proto/gen/originwatch/v1/ingest_pb.js";
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

/** Drive `r` for `ms` at `perSec` requests per second; fail(i) says whether request i fails. Polls every 100 ms like the sidecar. */
function drive(r: Recorder, c: { t: number }, ms: number, perSec: number, fail: (i: number) => boolean, sent: WindowSummary[][]): number {
  const step = 1000 / perSec;
  const end = c.t + ms;
  let nextPoll = Math.ceil(c.t / 100) * 100;
  let i = 0;
  for (; c.t < end; c.t += step, i++) {
    while (nextPoll <= c.t) {
      const keep = c.t;
      c.t = nextPoll;
      const cut = r.cutOnsets(5);
      if (cut.length) sent.push(cut);
      const closed = r.flush();
      if (closed.length) sent.push(closed);
      c.t = keep;
      nextPoll += 100;
    }
    r.complete("a", fail(i) ? "connect_refused" : "ok", fail(i) ? undefined : 5);
  }
  return i;
}

const sum = (ws: WindowSummary[], k: "ok" | "connectRefused" | "serverError") => ws.reduce((n, w) => n + Number(w.counts![k]), 0);

test("steady state: a healthy origin, even with scattered failures, is sent once per window (no onset cut)", () => {
  const c = clock(100_000);
  const r = new Recorder({ windowMs: 1000, now: c.now });
  const sent: WindowSummary[][] = [];
  drive(r, c, 30_000, 20, (i) => i % 25 === 0 || i % 97 === 3, sent);
  assert.ok(sent.length >= 29 && sent.length <= 30, `${sent.length} messages in 30 s`);
  for (const m of sent) for (const w of m) assert.is(w.lengthMs, 1000);
});

test("onset cut: a hard fault mid-window is sent at once as the part before it and the part since, then once per window again", () => {
  const c = clock(200_000);
  const r = new Recorder({ windowMs: 1000, now: c.now });
  const sent: WindowSummary[][] = [];
  let n = drive(r, c, 5_200, 10, () => false, sent);
  const before = sent.length;
  // At 205,200 every request starts failing.
  n += drive(r, c, 4_000, 10, () => true, sent);
  const cut = sent[before];
  assert.is(cut.length, 2, "the part before the onset and the part since");
  const [pre, since] = cut;
  assert.is(Number(pre.startUnixMs), 205_000);
  assert.is(sum([pre], "connectRefused"), 0);
  assert.is(sum([pre], "ok"), 2);
  assert.is(Number(since.startUnixMs), Number(pre.startUnixMs) + pre.lengthMs, "the parts are adjacent");
  assert.is(sum([since], "ok"), 0);
  assert.is(sum([since], "connectRefused"), 5);
  assert.ok(Number(since.startUnixMs) + since.lengthMs <= 206_000, "sent before the window's end");
  // The rest of the window follows at the boundary; later failing windows are not cut again.
  const after = sent.slice(before + 1).flat();
  assert.is(Number(after[0].startUnixMs), Number(since.startUnixMs) + since.lengthMs);
  assert.is(after.slice(1).every((w) => w.lengthMs === 1000), true);
  assert.is(sent.length - before, 1 + 4, "one cut, then one message per window");
  // Nothing lost: every request is in exactly one window.
  const all = sent.flat();
  assert.is(sum(all, "ok") + sum(all, "connectRefused"), n - 2, "all but the 2 requests of the open window");
  // A healthy window re-arms the cut for the next onset.
  drive(r, c, 2_000, 10, () => false, sent);
  const mark = sent.length;
  drive(r, c, 1_000, 10, () => true, sent);
  assert.ok(sent.slice(mark).some((m) => m.some((w) => w.lengthMs < 1000)), "the next onset is cut too");
});

test("onset cut: an onset that straddles a boundary is split there and cut as soon as it has min failures in all", () => {
  const c = clock(400_000);
  const r = new Recorder({ windowMs: 1000, now: c.now });
  const sent: WindowSummary[][] = [];
  drive(r, c, 5_700, 10, () => false, sent);
  const before = sent.length;
  // Failing from 405,700: three failures before the boundary, the rest after it.
  drive(r, c, 600, 10, () => true, sent);
  const [boundary, cut] = sent.slice(before);
  assert.equal(boundary.map((w) => [Number(w.startUnixMs), w.lengthMs]), [[405_000, 700], [405_700, 300]]);
  assert.is(sum([boundary[1]], "connectRefused"), 3);
  assert.is(sum([boundary[1]], "ok"), 0);
  assert.equal(cut.map((w) => Number(w.startUnixMs)), [406_000], "cut at the second failure of the next window");
  assert.is(sum(cut, "connectRefused"), 2);
  assert.ok(cut[0].lengthMs <= 300);
});

test("closeNow (FlushWindows) sends the open window's part so far; the rest follows at the boundary; nothing is lost", () => {
  const c = clock(500_000);
  const r = new Recorder({ windowMs: 1000, now: c.now });
  r.complete("a", "ok", 5);
  c.t = 500_400;
  r.complete("a", "ok", 5);
  const part = r.closeNow("a");
  assert.equal(part.map((w) => [Number(w.startUnixMs), w.lengthMs, Number(w.counts!.ok)]), [[500_000, 400, 2]]);
  assert.equal(r.closeNow("b"), [], "an origin without an open window sends nothing");
  c.t = 500_700;
  r.complete("a", "ok", 5);
  c.t = 501_000;
  assert.equal(r.flush().map((w) => [Number(w.startUnixMs), w.lengthMs, Number(w.counts!.ok)]), [[500_400, 600, 1]]);
});

test("onset cut: a single failure, or a partial failure under the bar, is never cut", () => {
  const c = clock(300_000);
  const r = new Recorder({ windowMs: 1000, now: c.now });
  const sent: WindowSummary[][] = [];
  drive(r, c, 3_000, 10, (i) => i === 12, sent);
  drive(r, c, 10_000, 10, (i) => i % 3 === 0, sent); // 33 %
  for (const m of sent) for (const w of m) assert.is(w.lengthMs, 1000);
});

test.run();
