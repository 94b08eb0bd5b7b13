import { test } from "uvu";
import * as assert from "uvu/assert";
import { LoadMeter } from "./partition-load.js";

test("unknown while warming up, then the mean rate of what it saw (not pulled towards zero)", () => {
  const m = new LoadMeter(30_000, 10_000);
  for (let t = 0; t <= 8_000; t += 2_000) m.sample(t / 10, t); // 100 per s
  assert.is(m.value(), undefined);
  m.sample(1_000, 10_000);
  assert.ok(Math.abs(m.value()! - 100) < 1e-9, String(m.value()));
});

test("follows a change of rate over about tau", () => {
  const m = new LoadMeter(30_000, 10_000);
  let count = 0;
  for (let t = 0; t <= 20_000; t += 2_000) m.sample((count += 200), t); // 100/s
  for (let t = 22_000; t <= 110_000; t += 2_000) m.sample((count += 600), t); // 300/s
  assert.ok(m.value()! > 280 && m.value()! < 300, String(m.value()));
});

test("seeded with the previous owner's figure: known at once, then moves towards what it measures", () => {
  const m = new LoadMeter(30_000, 10_000, 50);
  assert.is(m.value(), 50);
  m.sample(undefined, 0); // not counting yet (catching up): ignored
  m.sample(0, 1_000);
  m.sample(200, 3_000);
  assert.ok(m.value()! > 50 && m.value()! < 100, String(m.value()));
});

test("a count that goes backwards (the partition restarted) restarts the rate, never a negative sample", () => {
  const m = new LoadMeter(30_000, 0);
  m.sample(1_000, 0);
  m.sample(1_200, 2_000);
  m.sample(10, 4_000);
  m.sample(210, 6_000);
  assert.ok(Math.abs(m.value()! - 100) < 1e-9, String(m.value()));
});

test.run();
