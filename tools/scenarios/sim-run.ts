/**
 * Runs fault scenarios against the real VerdictEngine in simulated time
 * (SimFleet windows, 1 s ticks, probe answers from simulated sidecars) and
 * measures what the scenario suite measures: detection time, false alarms,
 * recovery time, origin incidents. Fast and deterministic: the test-suite
 * form of `npm run scenarios`.
 */
import { create } from "@bufbuild/protobuf";
import { Outcome } from "../../proto/gen/originwatch/v1/common_pb.js";
import { ProbeAttemptSchema, ProbeResultSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { FaultScope, IncidentKind, OriginState } from "../../proto/gen/originwatch/v1/query_pb.js";
import { type EngineChange, VerdictEngine } from "../../central/verdict/engine.js";
import type { ProbeTarget } from "../../central/verdict/probe-broker.js";
import type { Verdict } from "../../central/verdict/policy.js";
import { type Behaviour, OK, SimFleet, type SimNode, simGrid } from "./sim-fleet.js";

export interface SimScenario {
  name: string;
  nodes?: SimNode[];
  /** Seconds. */
  faultStart?: number;
  faultEnd?: number;
  total?: number;
  /** What a node's requests do at second `sec` while the fault is on. */
  fault: (n: SimNode, sec: number) => Behaviour;
  /** Is the origin itself unreachable at `sec` (what probes from other ISPs see)? */
  originDown?: (sec: number) => boolean;
  expect: { state: OriginState; faults?: string[] };
  /** Ticks of a wrong verdict tolerated before detection is counted (never for DOWN). */
}

export interface SimResult {
  name: string;
  expected: string;
  seen: string;
  detectionS: number | undefined;
  recoveryS: number | undefined;
  falseAlarms: number;
  originIncidents: number;
  networkIncidents: number;
  downVerdicts: number;
  probeRounds: number;
}

export const GRID_NODES = () => simGrid(["isp-a", "isp-b", "isp-c"], ["eu", "us"], 2, 10);

const SCOPE = (s: FaultScope) => (s === FaultScope.ISP ? "ISP" : s === FaultScope.REGION ? "REGION" : "NODE");
export const faultKeys = (v: { faults: Verdict["faults"] }) => v.faults.map((f) => `${SCOPE(f.scope)}:${f.key}`).sort();
export const describe = (state: OriginState, faults: string[] = []) => `${OriginState[state]}${faults.length ? ` ${faults.join(",")}` : ""}`;

export async function runSim(sc: SimScenario, trace?: (line: string) => void): Promise<SimResult> {
  const nodes = sc.nodes ?? GRID_NODES();
  const start = sc.faultStart ?? 20;
  const end = sc.faultEnd ?? 50;
  const total = sc.total ?? end + 20;
  const fleet = new SimFleet(nodes, "origin.example");
  let nowMs = 0;
  let sec = 0;
  let probeRounds = 0;
  const originDown = (s: number) => (s >= start && s < end ? (sc.originDown?.(s) ?? false) : false);
  const targets: ProbeTarget[] = nodes.map((n) => ({
    nodeId: n.nodeId,
    isp: n.isp,
    region: n.region,
    send(req) {
      probeRounds++;
      const down = originDown(sec);
      setImmediate(() =>
        engine.onProbeResult(
          n.nodeId,
          create(ProbeResultSchema, {
            probeId: req.probeId,
            origin: req.origin,
            attempts: Array.from({ length: req.count }, () => create(ProbeAttemptSchema, { outcome: down ? Outcome.CONNECT_REFUSED : Outcome.OK })),
          }),
        ),
      );
      return true;
    },
  }));
  const engine = new VerdictEngine({ now: () => nowMs, probeTargets: () => targets });
  const changes: EngineChange[] = [];
  engine.onChange((c) => {
    changes.push(c);
    if (trace) trace(c.type === "state" ? `  state ${OriginState[c.previous]} -> ${OriginState[c.status.state]}` : `  incident ${c.transition} ${IncidentKind[c.incident.kind]} ${c.incident.scopeKey}`);
  });
  const want = describe(sc.expect.state, sc.expect.faults);
  const isNetwork = sc.expect.state === OriginState.HEALTHY;
  let detection: number | undefined;
  let recovery: number | undefined;
  let falseAlarms = 0;
  let downVerdicts = 0;
  let seen = "";
  for (sec = 0; sec < total; sec++) {
    const windows = fleet.step(sec, (n) => (sec >= start && sec < end ? sc.fault(n, sec) : OK));
    // Windows of [sec, sec+1) arrive 300 ms after they close; the engine ticks at +500 ms.
    nowMs = (sec + 1) * 1000 + 300;
    const byNode = new Map<string, typeof windows>();
    for (const w of windows) byNode.set(w.node.nodeId, [...(byNode.get(w.node.nodeId) ?? []), w]);
    for (const n of nodes) engine.observe(n, (byNode.get(n.nodeId) ?? []).map((w) => w.window), nowMs);
    nowMs += 200;
    engine.tick(nowMs);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const st = engine.status("origin.example");
    if (trace && st) trace(`${(nowMs / 1000).toFixed(1)} ${st.confirming ? "confirming " : ""}${describe(st.state, faultKeys(st))} | ${st.verdict?.reason ?? ""}`);
    if (!st || st.confirming) continue;
    const now = describe(st.state, faultKeys(st));
    const t = nowMs / 1000;
    if (st.state === OriginState.DOWN) downVerdicts++;
    if (t >= start && t < end + 1) {
      if (now === want && detection === undefined) {
        detection = t - start;
        seen = now;
      }
      // During a network fault, any origin verdict is a false alarm.
      if (isNetwork && st.state !== OriginState.HEALTHY) falseAlarms++;
    } else if (t < start) {
      if (st.state !== OriginState.HEALTHY || st.faults.length) falseAlarms++;
    } else {
      const healthy = st.state === OriginState.HEALTHY && st.faults.length === 0;
      if (healthy && recovery === undefined) recovery = t - end;
      if (!healthy) recovery = undefined;
      if (isNetwork && st.state !== OriginState.HEALTHY) falseAlarms++;
    }
    if (!seen && t >= start && t < end) seen = now;
  }
  const opened = changes.filter((c) => c.type === "incident" && c.transition === "opened");
  const isOrigin = (k: IncidentKind) => k === IncidentKind.ORIGIN_DOWN || k === IncidentKind.ORIGIN_DEGRADED;
  engine.shutdown();
  return {
    name: sc.name,
    expected: want,
    seen: detection !== undefined ? want : seen,
    detectionS: detection,
    recoveryS: recovery,
    falseAlarms,
    originIncidents: opened.filter((c) => c.type === "incident" && isOrigin(c.incident.kind)).length,
    networkIncidents: opened.filter((c) => c.type === "incident" && !isOrigin(c.incident.kind)).length,
    downVerdicts,
    probeRounds,
  };
}

const inIsp = (isp: string) => (n: SimNode) => n.isp === isp;

/** The issue-4 scenario list, in simulated time. */
export function standardSimScenarios(): SimScenario[] {
  const S = OriginState;
  const oneIspOnly = () => GRID_NODES().map((n) => (n.isp === "isp-a" ? n : { ...n, rate: 0 }));
  return [
    { name: "origin refuses connections", fault: () => ({ kind: "refuse" }), originDown: () => true, expect: { state: S.DOWN } },
    { name: "origin answers 503", fault: () => ({ kind: "status5xx", ratio: 1 }), originDown: () => true, expect: { state: S.DOWN } },
    { name: "origin blackholed", fault: () => ({ kind: "blackhole" }), originDown: () => true, expect: { state: S.DOWN } },
    { name: "one ISP's path blackholed", fault: (n) => (inIsp("isp-a")(n) ? { kind: "blackhole" } : OK), expect: { state: S.HEALTHY, faults: ["ISP:isp-a"] } },
    { name: "one ISP's path refusing", fault: (n) => (inIsp("isp-b")(n) ? { kind: "refuse" } : OK), expect: { state: S.HEALTHY, faults: ["ISP:isp-b"] } },
    { name: "one region failing across ISPs", fault: (n) => (n.region === "eu" ? { kind: "refuse" } : OK), expect: { state: S.HEALTHY, faults: ["REGION:eu"] } },
    { name: "one node broken", fault: (n) => (n.nodeId === "isp-c-us-1" ? { kind: "refuse" } : OK), expect: { state: S.HEALTHY, faults: ["NODE:isp-c-us-1"] } },
    {
      name: "one node failing in each ISP",
      fault: (n) => (["isp-a-eu-1", "isp-b-us-2", "isp-c-eu-2"].includes(n.nodeId) ? { kind: "status5xx", ratio: 1 } : OK),
      expect: { state: S.HEALTHY, faults: ["NODE:isp-a-eu-1", "NODE:isp-b-us-2", "NODE:isp-c-eu-2"] },
    },
    { name: "origin slow (+2 s TTFB)", fault: () => ({ kind: "slow", ttfbMs: 2040 }), expect: { state: S.DEGRADED } },
    { name: "30% 5xx everywhere", fault: () => ({ kind: "status5xx", ratio: 0.3 }), expect: { state: S.DEGRADED } },
    {
      name: "origin flapping (2 s down / 2 s up, 30 s)",
      faultEnd: 50,
      fault: (_n, sec) => (Math.floor((sec - 20) / 2) % 2 === 0 ? { kind: "refuse" } : OK),
      expect: { state: S.DOWN },
    },
    {
      name: "low-traffic origin with a single error",
      nodes: GRID_NODES().map((n) => ({ ...n, rate: 0.2 })),
      faultStart: 20,
      faultEnd: 21,
      fault: (n) => (n.nodeId === "isp-a-eu-1" ? { kind: "status5xx", ratio: 1 } : OK),
      expect: { state: S.HEALTHY },
    },
    { name: "one ISP only, its path failing (probes)", nodes: oneIspOnly(), fault: () => ({ kind: "refuse" }), originDown: () => false, expect: { state: S.HEALTHY, faults: ["ISP:isp-a"] } },
    { name: "one ISP only, origin really down (probes)", nodes: oneIspOnly(), fault: () => ({ kind: "refuse" }), originDown: () => true, expect: { state: S.DOWN } },
  ];
}

/** The columns both scenario tables share (simulated and real runs). */
export const SCENARIO_HEAD = ["scenario", "expected", "seen", "detect s", "recover s", "false alarms", "origin inc", "net inc"];

/** What both result kinds report in the shared columns. */
export type ScenarioRow = Pick<SimResult, "name" | "expected" | "seen" | "falseAlarms" | "originIncidents" | "networkIncidents"> & {
  detectionS?: number;
  recoveryS?: number;
};

export function scenarioCells(r: ScenarioRow): string[] {
  return [
    r.name,
    r.expected,
    r.seen,
    r.detectionS === undefined ? "-" : r.detectionS.toFixed(1),
    r.recoveryS === undefined ? "-" : r.recoveryS.toFixed(1),
    String(r.falseAlarms),
    String(r.originIncidents),
    String(r.networkIncidents),
  ];
}

/** Plain-text table: columns padded to their widest cell, a dashed rule under the head. */
export function textTable(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}

export function formatTable(rows: SimResult[]): string {
  return textTable(SCENARIO_HEAD, rows.map(scenarioCells));
}
