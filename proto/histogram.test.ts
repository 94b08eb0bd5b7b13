import { test } from "uvu";
import * as assert from "uvu/assert";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { HistogramSchema } from "./gen/originwatch/v1/common_pb.js";
import { DEFAULT_BOUNDS_MS, HistogramAccumulator, bucketIndex, denseOf, histogramQuantile, mergeHistogram, newHistogram } from "./histogram.js";

test("bucketIndex puts a value in the first bucket whose bound is >= it", () => {
  assert.is(bucketIndex([1, 2, 4], 0.5), 0);
  assert.is(bucketIndex([1, 2, 4], 2), 1);
  assert.is(bucketIndex([1, 2, 4], 3), 2);
  assert.is(bucketIndex([1, 2, 4], 9), 3);
});

test("p95 of 100 values 1..100 ms lands within one bucket of 95 ms", () => {
  const acc = new HistogramAccumulator();
  for (let v = 1; v <= 100; v++) acc.record(v);
  const p95 = acc.quantile(0.95);
  assert.ok(p95 > 80 && p95 < 115, `p95=${p95}`);
  assert.is(acc.count, 100);
});

test("merging two histograms equals recording both sets", () => {
  const a = new HistogramAccumulator();
  const b = new HistogramAccumulator();
  const both = new HistogramAccumulator();
  for (let v = 1; v < 50; v++) { a.record(v); both.record(v); }
  for (let v = 2000; v < 2100; v++) { b.record(v); both.record(v); }
  const merged = mergeHistogram(a.toHistogram(), b.toHistogram());
  assert.equal(denseOf(merged)!.counts, both.counts);
  assert.is(Number(merged.count), 149);
  assert.is(histogramQuantile(merged, 0.95), both.quantile(0.95));
});

test("an empty histogram has quantile 0 and values past the last bound report the last bound", () => {
  assert.is(histogramQuantile(newHistogram(), 0.95), 0);
  const acc = new HistogramAccumulator([1, 2]);
  acc.record(1000);
  assert.is(acc.quantile(0.5), 2);
  assert.ok(DEFAULT_BOUNDS_MS[DEFAULT_BOUNDS_MS.length - 1] > 60000);
});

test("the compact wire form is small, round-trips through binary, and reads like the dense one", () => {
  const acc = new HistogramAccumulator();
  for (let v = 20; v < 220; v += 20) acc.record(v);
  const compact = acc.toHistogram();
  const dense = acc.toDenseHistogram();
  const bytes = toBinary(HistogramSchema, compact);
  assert.ok(bytes.length < 80, `compact form is ${bytes.length} bytes`);
  assert.ok(toBinary(HistogramSchema, dense).length > 500);
  const back = fromBinary(HistogramSchema, bytes);
  assert.equal(denseOf(back), denseOf(dense));
  assert.is(histogramQuantile(back, 0.95), histogramQuantile(dense, 0.95));
  const sum = new HistogramAccumulator();
  sum.add(back);
  sum.add(dense);
  assert.is(sum.count, 20);
  assert.is(sum.quantile(0.5), acc.quantile(0.5));
});

test("a compact histogram with an index past the last bucket is ignored, not a crash", () => {
  const h = create(HistogramSchema, { boundsSchema: 1, sparseIndex: [3, 999], sparseCount: [2, 5], count: 7n });
  assert.is(denseOf(h)!.counts.reduce((a, b) => a + b, 0), 2);
});

test.run();
