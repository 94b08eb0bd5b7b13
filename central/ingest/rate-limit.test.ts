import { test } from "uvu";
import * as assert from "uvu/assert";
import { NodeBuckets, TokenBucket } from "./rate-limit.js";

test("a bucket lets a burst through, then asks to wait 1/rate per message", () => {
  let now = 0;
  const b = new TokenBucket(10, 3, () => now);
  assert.equal([b.take(), b.take(), b.take()], [0, 0, 0]);
  assert.is(b.take(), 100);
  assert.is(b.take(), 200);
});

test("tokens refill with time, up to the burst", () => {
  let now = 0;
  const b = new TokenBucket(10, 2, () => now);
  b.take();
  b.take();
  now = 10_000;
  assert.is(b.take(), 0);
  assert.is(b.take(), 0);
  assert.ok(b.take() > 0);
});

test("a batch is charged by its windows: 500 windows at 1000/s wait 250 ms after a burst of 750", () => {
  let now = 0;
  const b = new TokenBucket(1000, 750, () => now);
  assert.is(b.take(500), 0);
  assert.is(b.take(500), 250);
});

test("a node's bucket survives its reconnects: a new stream of the same node finds it still empty", () => {
  let now = 0;
  const nodes = new NodeBuckets(10, 10, () => now);
  nodes.of("edge-1").take(10);
  assert.ok(nodes.of("edge-1").take(1) > 0, "the same bucket, still empty");
  assert.is(nodes.of("edge-2").take(1), 0, "another node has its own");
  nodes.forget("edge-1");
  assert.is(nodes.size, 1);
});

test.run();
