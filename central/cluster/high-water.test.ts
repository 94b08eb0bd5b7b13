import { test } from "uvu";
import * as assert from "uvu/assert";
import { HighWaterMarks } from "./high-water.js";

test("accepts a node's seq once and only above its mark; nodes are independent", () => {
  const h = new HighWaterMarks();
  assert.ok(h.accept("a", 1n));
  assert.ok(h.accept("a", 3n), "a gap is fine (the other seqs had no window in this partition)");
  assert.not.ok(h.accept("a", 3n), "the same seq again");
  assert.not.ok(h.accept("a", 2n), "below the mark");
  assert.ok(h.accept("b", 2n));
  assert.is(h.get("a"), 3n);
  assert.is(h.get("never"), 0n);
  assert.not.ok(h.accept("c", 0n), "seq 0 is never a batch");
});

test("survives its JSON form exactly, 64-bit seqs included; a bad record is refused naming the node", () => {
  const h = new HighWaterMarks();
  h.accept("edge:1", 18_446_744_073_709_551_615n);
  h.accept("edge-2", 5n);
  const back = HighWaterMarks.fromRecord(JSON.parse(JSON.stringify(h.toRecord())));
  assert.is(back.get("edge:1"), 18_446_744_073_709_551_615n);
  assert.not.ok(back.accept("edge-2", 5n));
  assert.is(back.size, 2);
  back.forget("edge-2");
  assert.ok(back.accept("edge-2", 1n));
  assert.throws(() => HighWaterMarks.fromRecord({ "edge-3": "-1" }), /edge-3/);
});

test.run();
