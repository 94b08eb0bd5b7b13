import { test } from "uvu";
import * as assert from "uvu/assert";
import { ClockSkew } from "./clock-skew.js";

test("skew = send + RTT/2 − server time; a first sample is taken at once and reported", () => {
  const s = new ClockSkew({ clock: () => 0 });
  s.sample(1_000_600_000, 1_000_600_040, 1_000_000_010); // local 10 min ahead, 40 ms RTT
  assert.is(s.estimateMs, 600_010);
  assert.is(s.appliedMs, 600_010);
});

test("below the threshold nothing is corrected; jitter around the correction does not move it; a step is followed at once", () => {
  const changes: number[] = [];
  const s = new ClockSkew({ thresholdMs: 250 });
  s.onChange((_a, d) => changes.push(d));
  s.sample(1000, 1010, 900); // +105 ms
  assert.is(s.estimateMs, 105);
  assert.is(s.appliedMs, 0);
  for (let i = 0; i < 20; i++) s.sample(10_000, 10_000, 10_000 - 400 - (i % 2) * 100); // 400..500 ms
  const applied = s.appliedMs;
  assert.ok(applied >= 250 && applied <= 500, `applied ${applied}`);
  const before = changes.length;
  for (let i = 0; i < 20; i++) s.sample(10_000, 10_000, 10_000 - 450 + (i % 2) * 60);
  assert.is(changes.length, before, "jitter of tens of ms never moves the correction");
  s.sample(10_000, 10_000, 10_000 + 120_000); // the local clock was stepped 2 minutes back
  assert.is(s.appliedMs, -120_000);
  assert.is(changes.reduce((a, b) => a + b, 0), s.appliedMs, "listeners saw every change");
});

test("samples without a server time (an older central) or with a long RTT are ignored", () => {
  const s = new ClockSkew();
  s.sample(5000, 5001, 0n);
  assert.is(s.samples, 0);
  s.sample(5000, 5000, 4000);
  s.sample(5000, 15_000, 0 + 1); // 10 s RTT says nothing
  assert.is(s.samples, 1);
  assert.is(s.estimateMs, 1000);
});

test("the shortest-RTT sample wins: answers stamped late (slow durable writes) do not bias the estimate", () => {
  const s = new ClockSkew();
  for (let i = 0; i < 40; i++) {
    const sent = 20_000 + i * 1000;
    if (i % 5 === 0) s.sample(sent, sent + 2, sent + 1); // true skew 0, 2 ms RTT
    else s.sample(sent, sent + 602, sent + 601); // stamped after a 600 ms write: alone it says -300 ms
  }
  assert.ok(Math.abs(s.estimateMs) < 50, `estimate ${s.estimateMs}`);
  assert.is(s.appliedMs, 0);
});

test("now() is the local clock minus the correction", () => {
  let local = 1_000_000;
  const s = new ClockSkew({ clock: () => local });
  s.sample(local, local, local - 600_000);
  local += 5;
  assert.is(s.now(), 400_005);
});

test.run();
