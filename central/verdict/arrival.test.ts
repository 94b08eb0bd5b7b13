import { test } from "uvu";
import * as assert from "uvu/assert";
import { OriginState } from "../../proto/gen/originwatch/v1/query_pb.js";
import { counts } from "../../proto/outcomes.js";
import { ArrivalScheduler } from "./arrival.js";
import { type EngineChange, VerdictEngine } from "./engine.js";

// Evaluation on arrival (issue 13 item 2) keeps what the damping protects: the tick alone steps incidents.

const NODES = ["isp-a", "isp-b", "isp-c"].flatMap((isp) => ["eu", "us"].map((region) => ({ nodeId: `${isp}-${region}`, isp, region })));

/**
 * A fleet driven second by second: every node sends one 1 s window per second
 * (`perSec` requests; `fail(node, sec)` of them fail), the engine sees it on
 * arrival at sec + 1.05 (evaluateNow, as arrival.ts schedules it) and ticks at sec + 1.5.
 */
function drive(engine: VerdictEngine, clock: { t: number }, from: number, to: number, perSec: number, fail: (nodeId: string, sec: number) => number): void {
  for (let sec = from; sec < to; sec++) {
    clock.t = (sec + 1) * 1000 + 50;
    let failing = false;
    for (const n of NODES) {
      const f = Math.min(perSec, fail(n.nodeId, sec));
      const w = { origin: "o", startUnixMs: sec * 1000, lengthMs: 1000, counts: counts({ ok: perSec - f, serverError: f }) };
      engine.observe(n, [w], clock.t);
      failing ||= f > 0 && f * 2 >= perSec;
    }
    if (failing) engine.evaluateNow("o", clock.t);
    clock.t = (sec + 1) * 1000 + 500;
    engine.tick(clock.t);
  }
}

function engineWithLog() {
  const clock = { t: 0 };
  const engine = new VerdictEngine({ now: () => clock.t });
  const changes: EngineChange[] = [];
  engine.onChange((c) => changes.push(c));
  const incidents = () => changes.filter((c) => c.type === "incident").map((c) => (c.type === "incident" ? `${Math.floor(c.timeMs / 1000)}:${c.transition}` : ""));
  return { clock, engine, changes, incidents };
}

test("on arrival the verdict changes at once, but the incident still opens only after two bad ticks", () => {
  const { clock, engine, changes, incidents } = engineWithLog();
  drive(engine, clock, 0, 10, 10, () => 0);
  assert.is(engine.status("o")!.state, OriginState.HEALTHY);
  // Second 10 fails everywhere; it arrives at 11.05 s.
  clock.t = 11_050;
  for (const n of NODES) engine.observe(n, [{ origin: "o", startUnixMs: 10_000, lengthMs: 1000, counts: counts({ serverError: 10 }) }], clock.t);
  engine.evaluateNow("o", clock.t);
  assert.is(engine.status("o")!.state, OriginState.DOWN, "DOWN on arrival, before the tick");
  assert.is(engine.status("o")!.stateSinceMs, 11_050);
  assert.equal(incidents(), [], "no incident from an evaluation on arrival");
  clock.t = 11_500;
  engine.tick(clock.t);
  assert.equal(incidents(), [], "one bad tick opens nothing");
  drive(engine, clock, 11, 13, 10, () => 10);
  assert.equal(incidents(), ["12:opened"], "the second bad tick opens it");
  assert.is(changes.filter((c) => c.type === "state" && c.status.state === OriginState.DOWN).length, 1);
});

test("a single bad second at low traffic opens nothing, with evaluations on arrival", () => {
  const { clock, engine, incidents } = engineWithLog();
  drive(engine, clock, 0, 10, 1, () => 0);
  drive(engine, clock, 10, 11, 1, (n) => (n === "isp-b-us" ? 1 : 0));
  drive(engine, clock, 11, 25, 1, () => 0);
  assert.equal(incidents(), []);
  assert.is(engine.status("o")!.state, OriginState.HEALTHY);
});

test("a flapping origin is one incident (reopened, flapping), with evaluations on arrival", () => {
  const { clock, engine, incidents, changes } = engineWithLog();
  drive(engine, clock, 0, 10, 10, () => 0);
  // 3 s down, 14 s up (long enough to close), three times.
  drive(engine, clock, 10, 61, 10, (_n, sec) => ((sec - 10) % 17 < 3 ? 10 : 0));
  drive(engine, clock, 61, 80, 10, () => 0);
  const opened = incidents().filter((x) => x.endsWith(":opened"));
  assert.is(opened.length, 1, incidents().join(" "));
  assert.ok(incidents().some((x) => x.endsWith("reopened")), incidents().join(" "));
  const ids = new Set(changes.flatMap((c) => (c.type === "incident" ? [c.incident.id] : [])));
  assert.is(ids.size, 1, "every transition is the same incident");
});

test("recovery is not announced before it is real: evaluations on arrival never close an incident", () => {
  const { clock, engine, incidents } = engineWithLog();
  drive(engine, clock, 0, 10, 10, () => 0);
  drive(engine, clock, 10, 15, 10, () => 10);
  assert.equal(incidents(), ["12:opened"]);
  // Recovered windows arrive; evaluations on arrival (every 100 ms) do not count as good ticks.
  for (let k = 0; k < 20; k++) {
    clock.t = 15_100 + k * 100;
    engine.evaluateNow("o", clock.t);
  }
  assert.equal(incidents(), ["12:opened"]);
  drive(engine, clock, 15, 30, 10, () => 0);
  const closed = incidents().filter((x) => x.endsWith("closed"));
  assert.is(closed.length, 1);
  // Closed only after close_after (5) good ticks, once the failing seconds have left the 5 s lookback.
  assert.ok(Number(closed[0].split(":")[0]) >= 24, incidents().join(" "));
});

test("the scheduler evaluates an origin once per debounce however many failing windows arrive, and not after shutdown", async () => {
  const seen: string[] = [];
  const s = new ArrivalScheduler((o) => seen.push(o), { debounceMs: 20 });
  for (let i = 0; i < 50; i++) s.note("a");
  s.note("b");
  assert.is(s.size, 2);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(seen.sort(), ["a", "b"]);
  s.note("a");
  s.shutdown();
  s.shutdown();
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(seen.length, 2);
});

test("FlushWindows: one round per origin per 5 s when an evaluation is scheduled, none when the origin does not want it", async () => {
  let now = 1_000_000;
  const flushed: string[] = [];
  const evaluated: string[] = [];
  const s = new ArrivalScheduler((o) => evaluated.push(o), { debounceMs: 5, flush: (o) => flushed.push(o), wantFlush: (o) => o !== "down", now: () => now });
  s.note("a");
  s.note("a");
  s.note("down");
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(flushed, ["a"], "once for a, never for an origin that does not want it");
  now += 4_000;
  s.note("a");
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(flushed, ["a"], "not again within 5 s");
  now += 1_000;
  s.note("a");
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(flushed, ["a", "a"]);
  assert.equal(evaluated.sort(), ["a", "a", "a", "down"], "every scheduled evaluation runs");
  s.shutdown();
});

test.run();
