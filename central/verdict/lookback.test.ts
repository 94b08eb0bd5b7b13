import { test } from "uvu";
import * as assert from "uvu/assert";
import { LookbackAggregator } from "./lookback.js";
import { counts, failuresOf, requestsOf } from "./counts.js";
import { HistogramAccumulator } from "../../proto/histogram.js";

const node = { nodeId: "n1", isp: "a", region: "eu" };
const win = (startMs: number, c: Parameters<typeof counts>[0], origin = "o") => ({ origin, startUnixMs: BigInt(startMs), lengthMs: 1000, counts: counts(c) });

test("sums the windows that overlap the lookback and drops them as it slides", () => {
  const agg = new LookbackAggregator(5000);
  for (let s = 0; s < 10_000; s += 1000) agg.add(node, win(s, { ok: 10, serverError: s >= 8000 ? 5 : 0 }));
  agg.advance(10_000);
  const [n] = agg.nodes("o");
  assert.is(n.counts.ok, 50); // windows 5000..9999
  assert.is(n.counts.serverError, 10);
  agg.advance(12_000);
  assert.is(agg.nodes("o")[0].counts.ok, 30);
  agg.advance(20_000);
  assert.equal(agg.nodes("o"), []);
  assert.equal(agg.origins(), []);
});

test("the tail holds a node's newest windows, newest last (onset parts included), and they leave with the lookback", () => {
  const agg = new LookbackAggregator(5000);
  for (let s = 0; s < 5000; s += 1000) assert.is(agg.add(node, win(s, { ok: 10 })), false, "healthy windows are no arrival cue");
  // An onset cut: [5000, 5300) before the jump, [5300, 5700) since.
  agg.add(node, { origin: "o", startUnixMs: 5000n, lengthMs: 300, counts: counts({ ok: 3 }) });
  assert.is(agg.add(node, { origin: "o", startUnixMs: 5300n, lengthMs: 400, counts: counts({ connectRefused: 4, ok: 1 }) }), true, "a failing window is a cue");
  const tail = () => agg.nodes("o")[0].tail!.map((t) => `${t.failures}/${t.requests}`).reverse().filter((x) => x !== "0/0");
  assert.equal(tail().slice(0, 3), ["4/5", "0/3", "0/10"]);
  // A late, older window goes where it belongs.
  agg.add(node, win(-1000, { ok: 7 }));
  assert.equal(tail().length, 8);
  assert.equal(tail()[0], "4/5");
  agg.advance(9500);
  assert.equal(tail(), ["4/5", "0/3", "0/10"], "windows ending at or before 4,500 left");
});

test("tailFailing counts the tail's windows with failures: up as they arrive, down as they leave the lookback or the tail", () => {
  const agg = new LookbackAggregator(5000);
  const failing = () => agg.nodes("o")[0].tailFailing;
  for (let s = 0; s < 3000; s += 1000) agg.add(node, win(s, { ok: 10 }));
  assert.is(failing(), 0, "healthy windows only: the policy need not read the tail");
  agg.add(node, win(3000, { ok: 8, serverError: 2 }));
  agg.add(node, win(4000, { connectRefused: 10 }));
  assert.is(failing(), 2);
  agg.advance(9500); // windows ending at or before 4,500 leave: the one ending at 4,000
  assert.is(failing(), 1);
  // Eight newer healthy windows push the last failing one out of the tail (it is still in the lookback).
  for (let i = 0; i < 8; i++) agg.add(node, { origin: "o", startUnixMs: BigInt(5000 + i * 100), lengthMs: 100, counts: counts({ ok: 1 }) });
  assert.is(failing(), 0);
});

test("requests and failures kept beside the counts are requestsOf and failuresOf of the counts (stalls netted, windows leaving)", () => {
  const agg = new LookbackAggregator(5000);
  const check = (at: string) => {
    const [n] = agg.nodes("o");
    assert.is(n.requests, requestsOf(n.counts), `requests ${at}`);
    assert.is(n.failures, failuresOf(n.counts), `failures ${at}`);
  };
  const seq: Array<Parameters<typeof counts>[0]> = [{ ok: 10 }, { ok: 5, stall: 3 }, { serverError: 2, firstByteTimeout: 4 }, { stallRecovered: 2, ok: 1 }, { stall: 1 }, { connectRefused: 7, clientError: 1 }, { ok: 9 }, { ok: 2 }];
  seq.forEach((c, i) => {
    agg.add(node, win(i * 1000, c));
    check(`after window ${i}`);
    agg.advance(i * 1000 + 1000);
    check(`after advance ${i}`);
  });
  assert.ok(agg.nodes("o")[0].requests! > 0);
});

test("ignores windows that arrive after they left the lookback (late replays)", () => {
  const agg = new LookbackAggregator(5000);
  agg.advance(60_000);
  agg.add(node, win(10_000, { ok: 99 }));
  agg.add(node, win(58_000, { ok: 1 }));
  assert.is(agg.nodes("o")[0].counts.ok, 1);
});

test("keeps origins and nodes apart and follows a relabelled node", () => {
  const agg = new LookbackAggregator(5000);
  agg.add(node, win(0, { ok: 1 }, "x"));
  agg.add(node, win(0, { ok: 2 }, "y"));
  agg.add({ ...node, nodeId: "n2" }, win(0, { ok: 3 }, "y"));
  agg.add({ ...node, isp: "b" }, win(1000, { ok: 4 }, "x"));
  agg.advance(2000);
  assert.equal(agg.origins().sort(), ["x", "y"]);
  assert.equal(agg.nodes("y").map((n) => n.counts.ok).sort(), [2, 3]);
  const x = agg.nodes("x")[0];
  assert.equal([x.isp, x.counts.ok], ["b", 5]);
});

test("bounds the slots per node (a flood of windows cannot grow memory)", () => {
  const agg = new LookbackAggregator(5000, 4);
  for (let i = 0; i < 10; i++) agg.add(node, { origin: "o", startUnixMs: 1000 + i * 10, lengthMs: 10, counts: counts({ ok: 1 }) });
  agg.advance(1100);
  assert.is(agg.nodes("o")[0].counts.ok, 4);
});

test("histograms with other bounds are re-bucketed onto the default bounds", () => {
  const agg = new LookbackAggregator(5000);
  const acc = new HistogramAccumulator([10, 100, 1000]);
  acc.record(50);
  acc.record(5000);
  agg.add(node, { ...win(0, { ok: 2 }), ttfb: acc.toHistogram() });
  const same = new HistogramAccumulator();
  same.record(40);
  agg.add(node, { ...win(0, { ok: 1 }, "p"), ttfb: same.toHistogram() });
  agg.advance(1000);
  const b = [...agg.nodes("o")[0].ttfb!];
  assert.is(b.reduce((x, y) => x + y, 0), 2);
  assert.is(b[b.length - 1], 1);
  assert.is([...agg.nodes("p")[0].ttfb!].reduce((x, y) => x + y, 0), 1);
  assert.equal([...agg.totalTtfb("o")!], b, "the origin's sum follows its nodes");
});

test("forgetting a node or an origin drops its sums at once; its windows then leave without touching anyone's", () => {
  const agg = new LookbackAggregator(5000);
  const h = new HistogramAccumulator();
  h.record(40);
  agg.add(node, { ...win(0, { ok: 1 }), ttfb: h.toHistogram() });
  agg.add({ ...node, nodeId: "n2" }, { ...win(0, { ok: 2 }), ttfb: h.toHistogram() });
  agg.add(node, win(0, { ok: 3 }, "q"));
  agg.forgetNode("n1");
  assert.equal(agg.nodes("o").map((n) => n.nodeId), ["n2"]);
  assert.is([...agg.totalTtfb("o")!].reduce((x, y) => x + y, 0), 1);
  assert.equal(agg.origins(), ["o"]);
  agg.add(node, win(1000, { ok: 4 }));
  agg.forgetOrigin("o");
  assert.equal(agg.nodes("o"), []);
  agg.add(node, win(2000, { ok: 5 }));
  agg.advance(9000);
  assert.equal(agg.origins(), []);
  agg.add(node, win(8000, { ok: 6 }));
  agg.advance(9000);
  assert.equal(agg.nodes("o").map((n) => [n.nodeId, n.counts.ok]), [["n1", 6]], "a reused entry starts from zero");
});

test("large counts go in and out of the sums exactly (escaped and split pairs)", () => {
  const agg = new LookbackAggregator(5000);
  agg.add(node, win(0, { ok: 5_000_000_000, serverError: 510, clientError: 511, reset: 70_000 }));
  agg.add(node, win(1000, { ok: 1 }));
  agg.advance(2000);
  const c = agg.nodes("o")[0].counts;
  assert.equal([c.ok, c.serverError, c.clientError, c.reset], [5_000_000_001, 510, 511, 70_000]);
  agg.advance(6500);
  const after = agg.nodes("o")[0].counts;
  assert.equal([after.ok, after.serverError, after.clientError, after.reset], [1, 0, 0, 0]);
});

test("a stalled request that later times out is counted once (its timeout is netted against the stall)", () => {
  const agg = new LookbackAggregator(5000);
  agg.add(node, win(0, { stall: 10 }));
  agg.add(node, win(1000, { ok: 10 }));
  agg.add(node, win(8000, { firstByteTimeout: 10, ok: 10 }));
  agg.advance(9000);
  const [n] = agg.nodes("o");
  assert.is(n.counts.firstByteTimeout, 0, "the tail of a lifted blackhole is not failing again");
  assert.is(n.counts.ok, 10);
});

test("client aborts of stalled requests are the same requests, not extra healthy ones", () => {
  const agg = new LookbackAggregator(5000);
  agg.add(node, win(0, { stall: 10 }));
  agg.add(node, win(3000, { clientAbort: 10, stall: 10 }));
  agg.advance(4000);
  const [n] = agg.nodes("o");
  assert.equal([n.counts.clientAbort, n.counts.stall], [0, 20]);
});

test("timeouts from a sidecar that reports no stalls count in full", () => {
  const agg = new LookbackAggregator(5000);
  agg.add(node, win(0, { firstByteTimeout: 7 }));
  agg.advance(1000);
  assert.is(agg.nodes("o")[0].counts.firstByteTimeout, 7);
});

test("recovered stalls do not absorb later timeouts", () => {
  const agg = new LookbackAggregator(5000);
  agg.add(node, win(0, { stall: 5, stallRecovered: 5, ok: 5 }));
  agg.add(node, win(1000, { firstByteTimeout: 3 }));
  agg.advance(2000);
  assert.is(agg.nodes("o")[0].counts.firstByteTimeout, 3);
});
test.run();
