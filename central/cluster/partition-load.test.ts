import { test } from "uvu";
import * as assert from "uvu/assert";
import { LoadMeter } from "./partition-load.js";

const near = (x: number | undefined, y: number) => assert.ok(x !== undefined && Math.abs(x - y) < 1e-9, `${x} ≠ ${y}`);

test("unknown while warming up, then the rate of what it saw", () => {
  const m = new LoadMeter(30_000, 10_000);
  for (let t = 0; t <= 8_000; t += 2_000) m.sample(t / 10, t); // 100 per s
  assert.is(m.value(), undefined);
  m.sample(1_000, 10_000);
  near(m.value(), 100);
});

test("after a change of rate every meter older than the window reports the new rate exactly, whatever its past", () => {
  const old = new LoadMeter(30_000, 10_000);
  const young = new LoadMeter(30_000, 10_000);
  let a = 0;
  let b = 0;
  for (let t = 0; t <= 100_000; t += 2_000) old.sample((a += 0), t); // idle for 100 s
  for (let t = 90_000; t <= 100_000; t += 2_000) young.sample((b += 0), t); // idle for 10 s
  for (let t = 102_000; t <= 140_000; t += 2_000) {
    old.sample((a += 600), t); // 300/s
    young.sample((b += 600), t);
  }
  near(old.value(), 300);
  near(young.value(), 300);
});

test("seeded with the previous owner's figure: known at once, the seed fills what it has not observed yet", () => {
  const m = new LoadMeter(30_000, 10_000, 50);
  assert.is(m.value(), 50);
  m.sample(undefined, 0); // not counting yet (catching up): ignored
  m.sample(0, 1_000);
  m.sample(3_000, 16_000); // 200/s for 15 s of the 30 s window
  near(m.value(), 125);
  m.sample(9_000, 46_000);
  near(m.value(), 200);
});

test("a count that goes backwards (the partition restarted) starts afresh from the last figure, never a negative rate", () => {
  const m = new LoadMeter(30_000, 0);
  m.sample(1_000, 0);
  m.sample(1_200, 2_000);
  m.sample(10, 4_000);
  near(m.value(), 100);
  m.sample(6_010, 64_000);
  near(m.value(), 100);
});

test.run();
