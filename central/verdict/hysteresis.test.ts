import { test } from "uvu";
import * as assert from "uvu/assert";
import { IncidentKind, type Observation, type Track, isIdle, newTrack, step, subjectOf } from "./hysteresis.js";
import { DEFAULT_HYSTERESIS, type HysteresisSettings } from "./settings.js";

const down: Observation = { bad: true, kind: IncidentKind.ORIGIN_DOWN, failureRatio: 1, p95TtfbMs: 0, summary: "down" };
const degraded: Observation = { bad: true, kind: IncidentKind.ORIGIN_DEGRADED, failureRatio: 0.3, p95TtfbMs: 1500, summary: "degraded" };
const good: Observation = { bad: false };

/**
 * Runs a tape of one letter per 1 s evaluation: D = down, d = degraded,
 * g = good, h = hold, "." = no evaluation for 1 s. Returns the transitions as
 * "t:transition" and the final track.
 */
function run(tape: string, s: HysteresisSettings = DEFAULT_HYSTERESIS, track: Track = newTrack("o")): { log: string[]; track: Track } {
  const log: string[] = [];
  let t = track;
  for (let i = 0; i < tape.length; i++) {
    const ch = tape[i];
    if (ch === ".") continue;
    const obs: Observation = ch === "D" ? down : ch === "d" ? degraded : ch === "h" ? "hold" : good;
    const r = step(t, obs, i * 1000, s);
    t = r.track;
    if (r.transition) log.push(`${i}:${r.transition}`);
  }
  return { log, track: t };
}

const table: Array<[string, string, string[]]> = [
  ["one bad evaluation opens nothing", "Dggggg", []],
  ["two consecutive bad evaluations open an incident", "gDDg", ["2:opened"]],
  ["bad evaluations that are not consecutive open nothing", "DgDgDgDg", []],
  ["four good evaluations do not close it", "DDgggg", ["1:opened"]],
  ["five consecutive good evaluations close it", "DDggggg", ["1:opened", "6:closed"]],
  ["a bad evaluation resets the good streak", "DDggggDggggg", ["1:opened", "11:closed"]],
  ["holds neither open nor reset a streak", "DhD", ["2:opened"]],
  ["holds do not count as good", "DDhhhhhhgggg", ["1:opened"]],
  ["a DEGRADED incident that turns DOWN escalates the same incident", "ddDD", ["1:opened", "2:escalated"]],
  ["DOWN then DEGRADED keeps the incident at DOWN, no transition", "DDdd", ["1:opened"]],
  ["a reopen inside the flap window is the same incident, flapping", "DDgggggDD", ["1:opened", "6:closed", "8:reopened"]],
  ["flapping 2 s down / 2 s up for 30 s is one incident that never closes mid-way", "DDggDDggDDggDDggDDggDDggDDggDDgggggg", ["1:opened", "34:closed"]],
];

for (const [name, tape, want] of table) {
  test(name, () => {
    assert.equal(run(tape).log, want);
  });
}

test("a reopen records flapping and reopen_count and keeps id and dedupe key", () => {
  const first = run("DDggggg");
  const inc1 = first.track.incident!;
  assert.equal([inc1.open, inc1.closedMs], [false, 6000]);
  const second = run("DDgggggDDgggggDD");
  const inc = second.track.incident!;
  assert.equal(second.log, ["1:opened", "6:closed", "8:reopened", "13:closed", "15:reopened"]);
  assert.equal([inc.id, inc.dedupeKey], [inc1.id, inc1.dedupeKey]);
  assert.equal([inc.open, inc.flapping, inc.reopenCount, inc.closedMs, inc.openedMs], [true, true, 2, 0, 1000]);
});

test("a reopen after the flap window is a new incident", () => {
  const s = { ...DEFAULT_HYSTERESIS, flapWindowMs: 3000 };
  const r = run("DDggggg....DD", s);
  assert.equal(r.log, ["1:opened", "6:closed", "12:opened"]);
  assert.is(r.track.incident!.flapping, false);
  assert.is(r.track.incident!.reopenCount, 0);
  assert.is.not(r.track.incident!.id, run("DDggggg").track.incident!.id);
});

test("settings are honoured: open after 3, close after 2", () => {
  const s = { ...DEFAULT_HYSTERESIS, openAfter: 3, closeAfter: 2 };
  assert.equal(run("DDgDDDgg", s).log, ["5:opened", "7:closed"]);
});

test("peaks keep the worst figures seen while open", () => {
  let t = newTrack("o");
  t = step(t, degraded, 0, DEFAULT_HYSTERESIS).track;
  t = step(t, { ...degraded, failureRatio: 0.45, p95TtfbMs: 900 }, 1000, DEFAULT_HYSTERESIS).track;
  t = step(t, { ...degraded, failureRatio: 0.2, p95TtfbMs: 2500 }, 2000, DEFAULT_HYSTERESIS).track;
  assert.equal([t.incident!.peakFailureRatio, t.incident!.peakP95TtfbMs], [0.45, 2500]);
});

test("network tracks carry their scope key and kind", () => {
  let t = newTrack("o", subjectOf(IncidentKind.ISP_FAULT, "isp-a"));
  const bad: Observation = { bad: true, kind: IncidentKind.ISP_FAULT, failureRatio: 1, p95TtfbMs: 0, summary: "isp-a" };
  t = step(t, bad, 0, DEFAULT_HYSTERESIS).track;
  const r = step(t, bad, 1000, DEFAULT_HYSTERESIS);
  assert.is(r.transition, "opened");
  assert.equal([r.track.incident!.scopeKey, r.track.incident!.kind, r.track.incident!.origin], ["isp-a", IncidentKind.ISP_FAULT, "o"]);
  assert.ok(r.track.incident!.dedupeKey.includes("isp:isp-a"));
});

test("step does not modify its input track", () => {
  const t0 = run("DD").track;
  const snapshot = JSON.stringify(t0);
  step(t0, good, 5000, DEFAULT_HYSTERESIS);
  step(t0, down, 5000, DEFAULT_HYSTERESIS);
  assert.is(JSON.stringify(t0), snapshot);
});

test("a track is idle once closed and past the flap window", () => {
  const t = run("DDggggg").track;
  assert.is(isIdle(t, 7000, DEFAULT_HYSTERESIS), false);
  assert.is(isIdle(t, 6000 + DEFAULT_HYSTERESIS.flapWindowMs + 1, DEFAULT_HYSTERESIS), true);
  assert.is(isIdle(run("D").track, 99_000_000, DEFAULT_HYSTERESIS), false);
  assert.is(isIdle(newTrack("o"), 0, DEFAULT_HYSTERESIS), true);
});

test.run();
