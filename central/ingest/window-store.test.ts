import { test } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import { OutcomeCountsSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { WindowStore } from "./window-store.js";

const n1 = { nodeId: "n1", isp: "a", region: "eu" };
const n2 = { nodeId: "n2", isp: "b", region: "eu" };
const w = (startMs: number, ok = 1) => ({ startMs, lengthMs: 1000, counts: create(OutcomeCountsSchema, { ok: BigInt(ok), stall: 2n }) });

test("keeps what starts within the retention, reads it back as contract shapes", () => {
  const s = new WindowStore(10_000);
  assert.ok(s.add("o", n1, { ...w(95_000, 7), ttfb: { boundsSchema: 1, sparseIndex: [3], sparseCount: [7], sumMs: 70, count: 7n, boundsMs: [], counts: [] } as never }, 100_000));
  assert.not.ok(s.add("o", n1, w(80_000), 100_000), "older than the retention: counted elsewhere, not kept");
  const [got] = s.recent("o", 0);
  assert.equal([got.nodeId, got.isp, got.startMs, got.counts.ok, got.counts.stall, got.ttfb?.sparseCount, got.ttfb?.count], ["n1", "a", 95_000, 7n, 2n, [7], 7n]);
  assert.equal(s.stats(), { size: 1, evicted: 0, notKept: 1 });
});

test("never holds more than maxWindows: the oldest arrival leaves first, and is counted", () => {
  const s = new WindowStore(60_000, 3);
  for (let i = 0; i < 5; i++) s.add(i % 2 ? "a" : "b", n1, w(100_000 + i), 100_000);
  assert.equal(s.stats(), { size: 3, evicted: 2, notKept: 0 });
  assert.equal(s.recent("b", 0).map((x) => x.startMs), [100_002, 100_004]);
  assert.equal(s.recent("a", 0).map((x) => x.startMs), [100_003]);
});

test("windows leave by time, even when the store is idle; forgetting an origin or a node removes theirs", () => {
  const s = new WindowStore(10_000);
  s.add("a", n1, w(100_000), 100_000);
  s.add("a", n2, w(101_000), 101_000);
  s.add("b", n2, w(101_000), 101_000);
  s.prune(110_500);
  assert.equal(s.recent("a", 0).map((x) => x.nodeId), ["n2"]);
  s.forgetNode("n2");
  assert.equal([s.has("a"), s.has("b"), s.stats().size], [false, false, 0]);
  s.add("c", n1, w(111_000), 111_000);
  s.forgetOrigin("c");
  assert.equal(s.origins(), []);
});

test("a window dated ahead cannot pin the ones behind it beyond retention + skew", () => {
  const s = new WindowStore(10_000);
  s.add("a", n1, w(110_000), 100_000); // 10 s ahead
  s.add("a", n1, w(99_000), 100_000);
  s.prune(121_000);
  assert.is(s.stats().size, 0);
});

test.run();
