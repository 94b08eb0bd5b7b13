import { test } from "uvu";
import * as assert from "uvu/assert";
import { maxOverMean, placeByLoad, workerLoads } from "./partition-placement.js";

const ZIPF8 = [100, 60, 40, 30, 20, 15, 10, 5];

test("LPT: heaviest first onto the least-loaded worker (ties by partition, then worker id)", () => {
  const t = placeByLoad(ZIPF8, ["c", "a", "b"], new Map());
  assert.equal([...t.loads.entries()].sort(), [["a", 100], ["b", 90], ["c", 90]]);
  assert.is(t.owners.get(0), "a");
  assert.ok(maxOverMean([...t.loads.values()]) <= 1.08);
});

test("the target keeps load in place: the bins go to the workers that already carry most of them", () => {
  // c owns partition 0 (the heaviest), b owns 1: LPT's bins are relabelled to them, only the rest move.
  const current = new Map([[0, "c"], [1, "b"], [2, "a"]]);
  const t = placeByLoad(ZIPF8, ["a", "b", "c"], current);
  for (const [p, w] of current) assert.is(t.owners.get(p), w, `partition ${p} stays on ${w}`);
});

test("the same inputs in any order give the same target (every worker computes it alone)", () => {
  const current = new Map([[3, "b"], [0, "a"], [5, "c"], [1, "a"]]);
  const a = placeByLoad(ZIPF8, ["a", "b", "c"], current);
  const b = placeByLoad(ZIPF8, ["c", "b", "a", "b"], new Map([...current].reverse()));
  assert.equal([...a.owners].sort(), [...b.owners].sort());
});

test("moving a partition the target puts elsewhere does not change the target (no thrash while it is in flight)", () => {
  const current = new Map([[0, "a"], [1, "a"], [2, "a"], [3, "b"], [4, "b"], [5, "c"], [6, "c"], [7, "c"]]);
  const before = placeByLoad(ZIPF8, ["a", "b", "c"], current);
  for (const [p, w] of current) {
    if (before.owners.get(p) === w) continue;
    const moving = new Map(current);
    moving.delete(p);
    assert.equal([...placeByLoad(ZIPF8, ["a", "b", "c"], moving).owners], [...before.owners], `partition ${p} released`);
    moving.set(p, before.owners.get(p)!);
    assert.equal([...placeByLoad(ZIPF8, ["a", "b", "c"], moving).owners], [...before.owners], `partition ${p} taken`);
  }
});

test("every partition is placed, zero loads too; a single worker takes all", () => {
  const t = placeByLoad([0, 0, 0, 0], ["a", "b"], new Map());
  assert.is(t.owners.size, 4);
  assert.is(new Set(placeByLoad(ZIPF8, ["solo"], new Map()).owners.values()).size, 1);
  assert.throws(() => placeByLoad(ZIPF8, [], new Map()), /at least one worker/);
});

test("workerLoads counts each owned partition once and lists idle workers with 0", () => {
  assert.equal([...workerLoads(ZIPF8, ["a", "b"], new Map([[0, "a"], [7, "a"], [1, "gone"]]))], [["a", 105], ["b", 0]]);
  assert.is(maxOverMean([0, 0]), 1);
  assert.is(maxOverMean([3, 1]), 1.5);
});

test.run();
