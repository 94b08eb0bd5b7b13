import { test } from "uvu";
import * as assert from "uvu/assert";
import { EndpointPicker } from "./endpoint-picker.js";

const eps = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `http://c${i}:7400@10.0.0.${i}` }));

test("a node's choice is stable, and a fleet spreads evenly over the replicas", () => {
  const three = eps(3);
  const per = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const p = new EndpointPicker({ nodeId: `edge-${i}` });
    const a = p.pick(three, 0)!.endpoint.key;
    assert.is(p.pick(three, 5000)!.endpoint.key, a, "the same node picks the same replica again");
    per.set(a, (per.get(a) ?? 0) + 1);
  }
  const counts = [...per.values()];
  assert.is(counts.length, 3);
  assert.ok(Math.max(...counts) / (3000 / 3) < 1.1, `spread ${counts.join("/")}`);
});

test("when one replica fails, only its nodes move, evenly over the rest, at once", () => {
  const three = eps(3);
  const moved = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const p = new EndpointPicker({ nodeId: `edge-${i}` });
    const first = p.pick(three, 0)!.endpoint.key;
    if (first !== three[0].key) {
      p.failed(three[0].key, 0);
      assert.is(p.pick(three, 0)!.endpoint.key, first, "a node of another replica stays");
      continue;
    }
    p.failed(first, 1000);
    const next = p.pick(three, 1000)!;
    assert.is(next.waitMs, 0, "another replica is ready now");
    assert.is.not(next.endpoint.key, first);
    moved.set(next.endpoint.key, (moved.get(next.endpoint.key) ?? 0) + 1);
  }
  const counts = [...moved.values()];
  assert.is(counts.length, 2);
  assert.ok(Math.abs(counts[0] - counts[1]) / (counts[0] + counts[1]) < 0.1, `moved ${counts.join("/")}`);
});

test("backoff per address: the one that failed recently is tried last, then the one ready first", () => {
  const [a, b, c] = eps(3);
  const p = new EndpointPicker({ nodeId: "n", initialBackoffMs: 1000, maxBackoffMs: 30_000 });
  p.failed(a.key, 0, { random: 0.5 }); // a: retry at 1000
  p.failed(b.key, 100, { random: 0.5 }); // b: retry at 1100
  assert.is(p.pick([a, b, c], 200)!.endpoint, c, "the one that did not fail");
  p.failed(c.key, 200, { random: 0.5 }); // c: retry at 1200
  assert.equal(p.pick([a, b, c], 300), { endpoint: a, waitMs: 700 }, "all waiting: the first ready, after its wait");
  assert.equal(p.pick([a, b, c], 1150), { endpoint: a, waitMs: 0 }, "ready ones: the one that failed longest ago");
  p.failed(a.key, 1150, { random: 0.5 }); // a: 1.6 s step → 2750
  assert.is(p.pick([a, b, c], 1150)!.endpoint, b);
  p.succeeded(b.key);
  assert.is(p.pick([a, b, c], 1150)!.endpoint, b);
});

test("one address: the plain gRPC backoff, growing per failure and reset by a Welcome", () => {
  const [a] = eps(1);
  const p = new EndpointPicker({ nodeId: "n", initialBackoffMs: 1000, maxBackoffMs: 30_000 });
  const waits = [0, 1, 2].map((i) => p.failed(a.key, i, { random: 0.5 }));
  assert.equal(waits, [1000, 1600, 2560]);
  assert.is(p.pick([a], 2)!.waitMs, 2560);
  p.succeeded(a.key);
  assert.is(p.failed(a.key, 10, { random: 0.5 }), 1000);
  assert.is(p.failed(a.key, 20, { refused: true, random: 0.5 }), 30_000, "a refused Hello: the maximum");
  assert.is(p.pick([], 0), undefined);
});

test.run();
