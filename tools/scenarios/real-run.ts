/**
 * The issue-4 scenario list against a fleet of real processes (real-fleet.ts):
 * each scenario warms its own origin up, injects its fault, heals, and is
 * measured from outside through the query API: detection time, false alarms,
 * recovery time, incidents and webhook alerts.
 */
import { FaultScope, IncidentKind, OriginState } from "../../proto/gen/originwatch/v1/query_pb.js";
import type { RealFleet, RealNode } from "./real-fleet.js";
import { SCENARIO_HEAD, scenarioCells, textTable } from "./sim-run.js";

export type Expectation = "origin" | "network" | "quiet";

export interface RealScenario {
  name: string;
  origin: string;
  /** Requests per second per node for this origin (default 10). */
  rate?: (n: RealNode) => number;
  /** Inject the fault; may return a function that stops it (flapping). */
  fault: (f: RealFleet) => Promise<void | (() => void)>;
  /** How long the fault lasts (default 12 s). */
  durationS?: number;
  expect: { state: OriginState; faults?: string[]; kind: Expectation };
}

export interface RealResult {
  name: string;
  expected: string;
  seen: string;
  detectionS?: number;
  recoveryS?: number;
  falseAlarms: number;
  originIncidents: number;
  networkIncidents: number;
  webhooks: number;
  pass: boolean;
  why: string[];
}

const SCOPE = (s: FaultScope) => (s === FaultScope.ISP ? "ISP" : s === FaultScope.REGION ? "REGION" : "NODE");
const describe = (state: OriginState, faults: string[] = []) => `${OriginState[state]}${faults.length ? ` ${faults.join(",")}` : ""}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function look(f: RealFleet, origin: string): Promise<{ state: OriginState; faults: string[]; confirming: boolean } | undefined> {
  try {
    const o = (await f.query.getOrigin({ origin })).origin;
    if (!o) return undefined;
    return { state: o.state, faults: o.faults.map((x) => `${SCOPE(x.scope)}:${x.key}`).sort(), confirming: o.confirming };
  } catch {
    return undefined;
  }
}

export async function runReal(f: RealFleet, sc: RealScenario, log: (s: string) => void = () => {}): Promise<RealResult> {
  const want = describe(sc.expect.state, sc.expect.faults);
  const why: string[] = [];
  let falseAlarms = 0;
  f.traffic(sc.origin, sc.rate ?? (() => 10));
  // Warm-up: the origin must look healthy first.
  const warm = Date.now();
  for (;;) {
    const v = await look(f, sc.origin);
    if (v && v.state === OriginState.HEALTHY && v.faults.length === 0) break;
    if (Date.now() - warm > 20_000) {
      why.push(`never healthy before the fault (last: ${v ? describe(v.state, v.faults) : "none"})`);
      break;
    }
    await sleep(250);
  }
  await sleep(sc.expect.kind === "quiet" ? 6000 : 1500);
  const t0 = Date.now();
  const stop = await sc.fault(f);
  let detection: number | undefined;
  let seen = "";
  const until = t0 + (sc.durationS ?? 12) * 1000;
  while (Date.now() < until) {
    const v = await look(f, sc.origin);
    if (v && !v.confirming) {
      const now = describe(v.state, v.faults);
      if (now === want && detection === undefined) {
        detection = (Date.now() - t0) / 1000;
        log(`  ${sc.name}: ${now} after ${detection.toFixed(1)} s`);
      }
      if (!seen || now === want) seen = now;
      if (sc.expect.kind !== "origin" && (v.state === OriginState.DOWN || v.state === OriginState.DEGRADED)) falseAlarms++;
    }
    await sleep(200);
  }
  if (typeof stop === "function") stop();
  await f.heal();
  const t1 = Date.now();
  let recovery: number | undefined;
  while (Date.now() - t1 < 20_000) {
    const v = await look(f, sc.origin);
    if (v && v.state === OriginState.HEALTHY && v.faults.length === 0) {
      recovery = (Date.now() - t1) / 1000;
      break;
    }
    if (v && sc.expect.kind !== "origin" && (v.state === OriginState.DOWN || v.state === OriginState.DEGRADED)) falseAlarms++;
    await sleep(200);
  }
  // Let open incidents close (close_after) before counting them.
  await sleep(7000);
  f.traffic(sc.origin, () => 0);
  const incidents = (await f.query.listIncidents({ origin: sc.origin, pageSize: 1000 })).incidents;
  const isOrigin = (k: IncidentKind) => k === IncidentKind.ORIGIN_DOWN || k === IncidentKind.ORIGIN_DEGRADED;
  const originIncidents = incidents.filter((i) => isOrigin(i.kind)).length;
  const networkIncidents = incidents.length - originIncidents;
  const webhooks = f.webhook.filter((p) => p.origin === sc.origin).length;

  if (sc.expect.kind === "quiet") {
    if (incidents.length) why.push(`${incidents.length} incident(s) for a quiet scenario`);
    if (falseAlarms) why.push(`${falseAlarms} origin verdicts`);
  } else {
    const limit = sc.name.includes("flapping") ? 10 : 5;
    if (detection === undefined || detection > limit) why.push(`not detected within ${limit} s`);
    if (recovery === undefined || recovery > 10) why.push(`not back to HEALTHY within 10 s`);
    if (sc.expect.kind === "network") {
      if (originIncidents) why.push(`${originIncidents} origin incident(s) during a network fault`);
      if (falseAlarms) why.push(`${falseAlarms} DOWN/DEGRADED verdicts during a network fault`);
    } else {
      if (originIncidents !== 1) why.push(`${originIncidents} origin incidents (want exactly 1)`);
      if (webhooks !== 2) why.push(`${webhooks} webhook alerts (want open + close)`);
    }
  }
  return {
    name: sc.name,
    expected: want,
    seen: seen || "-",
    detectionS: detection,
    recoveryS: recovery,
    falseAlarms,
    originIncidents,
    networkIncidents,
    webhooks,
    pass: why.length === 0,
    why,
  };
}

export function standardRealScenarios(): RealScenario[] {
  const S = OriginState;
  const onlyIspA = (n: RealNode) => (n.isp === "isp-a" ? 10 : 0);
  let o = 0;
  const name = () => `s${String(++o).padStart(2, "0")}.example`;
  return [
    { name: "origin refuses connections", origin: name(), fault: (f) => f.origin.setMode({ kind: "refuse" }), expect: { state: S.DOWN, kind: "origin" } },
    { name: "origin answers 503", origin: name(), fault: (f) => f.origin.setMode({ kind: "status", status: 503 }), expect: { state: S.DOWN, kind: "origin" } },
    { name: "origin blackholed", origin: name(), fault: (f) => f.origin.setMode({ kind: "blackhole" }), expect: { state: S.DOWN, kind: "origin" } },
    { name: "one ISP's path blackholed", origin: name(), fault: (f) => f.setIsp("isp-a", { kind: "blackhole" }), expect: { state: S.HEALTHY, faults: ["ISP:isp-a"], kind: "network" } },
    { name: "one ISP's path refusing", origin: name(), fault: (f) => f.setIsp("isp-b", { kind: "refuse" }), expect: { state: S.HEALTHY, faults: ["ISP:isp-b"], kind: "network" } },
    { name: "one region's nodes failing across ISPs", origin: name(), fault: (f) => f.setRegion("eu", { kind: "refuse" }), expect: { state: S.HEALTHY, faults: ["REGION:eu"], kind: "network" } },
    { name: "one node broken", origin: name(), fault: (f) => f.setNode("isp-c-us-1", { kind: "refuse" }), expect: { state: S.HEALTHY, faults: ["NODE:isp-c-us-1"], kind: "network" } },
    { name: "origin slow (+2 s TTFB)", origin: name(), fault: (f) => f.origin.setMode({ kind: "delay", ms: 2000 }), expect: { state: S.DEGRADED, kind: "origin" } },
    {
      name: "30% 5xx everywhere",
      origin: name(),
      fault: (f) =>
        f.origin.setMode({
          kind: "handler",
          handle: (_q, r) => {
            r.writeHead(Math.random() < 0.3 ? 503 : 200).end("x");
          },
        }),
      expect: { state: S.DEGRADED, kind: "origin" },
    },
    {
      name: "origin flapping (2 s down / 2 s up, 30 s)",
      origin: name(),
      durationS: 30,
      fault: async (f) => {
        let down = true;
        await f.origin.setMode({ kind: "refuse" });
        const t = setInterval(() => {
          down = !down;
          void f.origin.setMode(down ? { kind: "refuse" } : { kind: "ok" });
        }, 2000);
        return () => clearInterval(t);
      },
      expect: { state: S.DOWN, kind: "origin" },
    },
    {
      name: "low-traffic origin (0.2 req/s per node), one error",
      origin: name(),
      rate: () => 0.2,
      durationS: 10,
      fault: async (f) => {
        let n = 0;
        await f.origin.setMode({
          kind: "handler",
          handle: (_q, r) => {
            r.writeHead(n++ === 0 ? 503 : 200).end("x");
          },
        });
      },
      expect: { state: S.HEALTHY, kind: "quiet" },
    },
    { name: "one ISP only, its path failing (probes)", origin: name(), rate: onlyIspA, fault: (f) => f.setIsp("isp-a", { kind: "refuse" }), expect: { state: S.HEALTHY, faults: ["ISP:isp-a"], kind: "network" } },
    { name: "one ISP only, origin really down (probes)", origin: name(), rate: onlyIspA, fault: (f) => f.origin.setMode({ kind: "refuse" }), expect: { state: S.DOWN, kind: "origin" } },
  ];
}

export function formatRealTable(rows: RealResult[]): string {
  const head = [...SCENARIO_HEAD, "webhooks", "result"];
  const body = rows.map((r) => [...scenarioCells(r), String(r.webhooks), r.pass ? "PASS" : `FAIL: ${r.why.join("; ")}`]);
  return textTable(head, body);
}
