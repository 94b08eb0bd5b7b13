import { test } from "uvu";
import * as assert from "uvu/assert";
import { TokenBucket } from "./rate-limit.js";

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

test.run();
