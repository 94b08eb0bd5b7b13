/**
 * The scenario list (issues 4 and 13) against a fleet of real processes
 * (real-fleet.ts): each scenario warms its own origin up, injects its fault,
 * heals, and is measured from outside through the query API: detection time,
 * false alarms, recovery time, incidents and webhook alerts.
 *
 * Exact (issue 13 item 4): once the verdict is right, every later poll while
 * the fault lasts must show exactly the expected state and fault set (not
 * "contains"); rows with `noScopes` must show no node, ISP or region fault at
 * any poll from the fault's start. Detection is timed from the moment the
 * fault is injected (the first failed request follows within ~0.1 s).
 */
import { FaultScope, IncidentKind, OriginState } from "../../proto/gen/originwatch/v1/query_pb.js";
import type { QueryClient } from "./real-centrals.js";
import type { RealFleet, RealNode } from "./real-fleet.js";
import { SCENARIO_HEAD, scenarioCells, textTable } from "./sim-run.js";

export type Expectation = "origin" | "network" | "quiet";

/** Fault classes of the detection table (README); rows without one are not timed there. */
export type FaultClass = "refused" | "reset" | "503" | "blackhole" | "ISP" | "region" | "node" | "two faults" | "probes" | "thin" | "slow" | "partial";

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
  /** Class for the detection table. */
  cls?: FaultClass;
  /** Detection limit in seconds (default 2: a hard fault; blackholes stall_ms + 1 s). */
  limitS?: number;
  /** Back to HEALTHY (every central) within this many seconds of healing (default 10). */
  recoverLimitS?: number;
  /** After the verdict is right, other verdicts are allowed (a flapping origin): default false. */
  loose?: boolean;
  /** No node/ISP/region fault at any poll from the fault's start (uniform partial failures). */
  noScopes?: boolean;
  /** Undo what heal() cannot (held requests of a blackholed origin: reset them, as the next row must not see them time out). */
  cleanup?: (f: RealFleet) => Promise<void>;
  /** A fault already in force before the timed one (it must be reported first); `before` then waits for it. */
  before?: { fault: (f: RealFleet) => Promise<void>; expect: string[] };
}

export interface RealResult {
  name: string;
  expected: string;
  seen: string;
  /** First poll showing the expected verdict, on the first central to show it. */
  detectionS?: number;
  /** The same on the slowest central (every central right; undefined if one never was). One central: = detectionS. */
  detectionAllS?: number;
  /** Every central back to HEALTHY. */
  recoveryS?: number;
  falseAlarms: number;
  originIncidents: number;
  networkIncidents: number;
  webhooks: number;
  /** Polls after the verdict was right that showed anything else (exact rows), over every central. */
  mismatches: number;
  /** Polls from the fault's start that showed a node/ISP/region fault (noScopes rows), over every central. */
  spuriousScopes: number;
  /** Centrals polled (cluster: the replicas). */
  centrals: number;
  cls?: FaultClass;
  pass: boolean;
  why: string[];
}

const SCOPE = (s: FaultScope) => (s === FaultScope.ISP ? "ISP" : s === FaultScope.REGION ? "REGION" : "NODE");
const describe = (state: OriginState, faults: string[] = []) => `${OriginState[state]}${faults.length ? ` ${faults.join(",")}` : ""}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Look {
  state: OriginState;
  faults: string[];
  confirming: boolean;
  reason: string;
  /** When the answer arrived (Date.now()). */
  atMs: number;
}

async function look(q: QueryClient, origin: string): Promise<Look | undefined> {
  try {
    const o = (await q.getOrigin({ origin })).origin;
    if (!o) return undefined;
    return { state: o.state, faults: o.faults.map((x) => `${SCOPE(x.scope)}:${x.key}`).sort(), confirming: o.confirming, reason: o.reason, atMs: Date.now() };
  } catch {
    return undefined;
  }
}

/** Every central's answer, asked in parallel (index = central). */
const lookAll = (f: RealFleet, origin: string) => Promise.all(f.queries.map((q) => look(q, origin)));
const healthy = (v: Look | undefined) => v !== undefined && v.state === OriginState.HEALTHY && v.faults.length === 0;
const named = (f: RealFleet, i: number) => (f.queries.length > 1 ? `replica ${i}: ` : "");

export async function runReal(f: RealFleet, sc: RealScenario, log: (s: string) => void = () => {}): Promise<RealResult> {
  const want = describe(sc.expect.state, sc.expect.faults);
  const why: string[] = [];
  let falseAlarms = 0;
  const n = f.queries.length;
  f.traffic(sc.origin, sc.rate ?? (() => 10));
  // Warm-up: the origin must look healthy first, on every central.
  const warm = Date.now();
  for (;;) {
    const vs = await lookAll(f, sc.origin);
    if (vs.every(healthy)) break;
    if (Date.now() - warm > 20_000) {
      why.push(`never healthy before the fault (last: ${vs.map((v, i) => named(f, i) + (v ? describe(v.state, v.faults) : "none")).join("; ")})`);
      break;
    }
    await sleep(250);
  }
  await sleep(sc.expect.kind === "quiet" ? 6000 : 1500);
  if (sc.before) {
    await sc.before.fault(f);
    const want0 = describe(OriginState.HEALTHY, sc.before.expect);
    const b0 = Date.now();
    const reported = (vs: Array<Look | undefined>) => vs.every((v) => v?.faults.join(",") === sc.before!.expect.join(","));
    let ok = false;
    while (Date.now() - b0 < 10_000 && !(ok = reported(await lookAll(f, sc.origin)))) await sleep(100);
    if (!ok) why.push(`the first fault was never reported${n > 1 ? " by every replica" : ""} (want ${want0})`);
    await sleep(3000);
  }
  const t0 = Date.now();
  const stop = await sc.fault(f);
  const detected: Array<number | undefined> = new Array(n).fill(undefined);
  /** What each central showed last before its verdict was right (logged on change: where the time went). */
  const shown: string[] = new Array(n).fill(describe(OriginState.HEALTHY, sc.before?.expect));
  let seen = "";
  let mismatches = 0;
  let spuriousScopes = 0;
  const others = new Set<string>();
  const until = t0 + (sc.durationS ?? 12) * 1000;
  while (Date.now() < until) {
    const vs = await lookAll(f, sc.origin);
    vs.forEach((v, i) => {
      if (!v) return;
      const at = (v.atMs - t0) / 1000;
      const shows = `${describe(v.state, v.faults)}${v.confirming ? " (confirming)" : ""}`;
      if (detected[i] === undefined && shows !== want && shows !== shown[i]) {
        shown[i] = shows;
        log(`  ${sc.name}: ${named(f, i)}${shows} at ${at.toFixed(1)} s`);
      }
      if (v.confirming) return;
      const now = describe(v.state, v.faults);
      if (now === want && detected[i] === undefined) {
        detected[i] = at;
        log(`  ${sc.name}: ${named(f, i)}${now} after ${at.toFixed(1)} s`);
      }
      if (!seen || now === want) seen = now;
      if (detected[i] !== undefined && now !== want && !sc.loose) {
        mismatches++;
        others.add(named(f, i) + now);
      }
      if (sc.noScopes && v.faults.length > 0) {
        spuriousScopes++;
        others.add(named(f, i) + now);
      }
      if (sc.expect.kind !== "origin" && (v.state === OriginState.DOWN || v.state === OriginState.DEGRADED)) {
        if (!falseAlarms) log(`  ${named(f, i)}false alarm at ${at.toFixed(1)} s: ${now}: ${v.reason}`);
        falseAlarms++;
      }
    });
    await sleep(100);
  }
  if (typeof stop === "function") stop();
  await sc.cleanup?.(f);
  await f.heal();
  const t1 = Date.now();
  let recovery: number | undefined;
  const recoverLimit = sc.recoverLimitS ?? 10;
  while (Date.now() - t1 < (recoverLimit + 10) * 1000) {
    const vs = await lookAll(f, sc.origin);
    if (vs.every(healthy)) {
      recovery = (Date.now() - t1) / 1000;
      break;
    }
    vs.forEach((v, i) => {
      if (v && sc.expect.kind !== "origin" && (v.state === OriginState.DOWN || v.state === OriginState.DEGRADED)) {
        if (!falseAlarms) log(`  ${named(f, i)}false alarm ${((Date.now() - t1) / 1000).toFixed(1)} s after healing: ${describe(v.state, v.faults)}: ${v.reason}`);
        falseAlarms++;
      }
    });
    await sleep(200);
  }
  // Let open incidents close (close_after ticks) and their webhooks go out before counting them.
  await sleep(9000);
  f.traffic(sc.origin, () => 0);
  const isOrigin = (k: IncidentKind) => k === IncidentKind.ORIGIN_DOWN || k === IncidentKind.ORIGIN_DEGRADED;
  // Every central must list the same incidents (cluster: the owner's, mirrored); the counts are the first one's.
  const lists = await Promise.all(f.queries.map(async (q) => (await q.listIncidents({ origin: sc.origin, pageSize: 1000 })).incidents));
  const incidents = lists[0];
  const listed = lists.map((l) => l.map((i) => `${IncidentKind[i.kind]} ${i.id}${i.open ? " (open)" : ""}`).sort().join(", "));
  if (listed.some((l) => l !== listed[0])) why.push(`the replicas list different incidents (${listed.map((l, i) => `${i}: ${l || "none"}`).join(" | ")})`);
  const originIncidents = incidents.filter((i) => isOrigin(i.kind)).length;
  const networkIncidents = incidents.length - originIncidents;
  // Every central sends to the same receiver: an alert sent by two replicas counts twice.
  const webhooks = f.webhook.filter((p) => p.origin === sc.origin && p.kind.startsWith("ORIGIN")).length;
  const detection = detected.reduce<number | undefined>((a, d) => (d === undefined ? a : a === undefined ? d : Math.min(a, d)), undefined);
  const detectionAll = detected.every((d) => d !== undefined) ? Math.max(...(detected as number[])) : undefined;

  if (sc.expect.kind === "quiet") {
    if (incidents.length) why.push(`${incidents.length} incident(s) for a quiet scenario`);
    if (falseAlarms) why.push(`${falseAlarms} origin verdicts`);
  } else {
    const limit = sc.limitS ?? 2;
    if (detectionAll === undefined || detectionAll > limit) why.push(`not detected within ${limit} s${n > 1 ? ` by every replica (${detected.map((d) => (d === undefined ? "never" : d.toFixed(1))).join(" / ")})` : ""}`);
    if (recovery === undefined || recovery > recoverLimit) why.push(`not back to HEALTHY within ${recoverLimit} s`);
    if (sc.expect.kind === "network") {
      if (originIncidents) why.push(`${originIncidents} origin incident(s) during a network fault`);
      if (falseAlarms) why.push(`${falseAlarms} DOWN/DEGRADED verdicts during a network fault`);
    } else {
      if (originIncidents !== 1) why.push(`${originIncidents} origin incidents (want exactly 1)`);
      if (webhooks !== 2) why.push(`${webhooks} webhook alerts for the origin (want open + close${n > 1 ? ", once across the cluster" : ""})`);
    }
  }
  if (mismatches) why.push(`${mismatches} polls after the verdict showed something else (${[...others].slice(0, 3).join(" | ")})`);
  if (spuriousScopes) why.push(`${spuriousScopes} polls blamed a node, ISP or region (${[...others].slice(0, 3).join(" | ")})`);
  return {
    name: sc.name,
    expected: want,
    seen: seen || "-",
    detectionS: detection,
    detectionAllS: detectionAll,
    recoveryS: recovery,
    falseAlarms,
    originIncidents,
    networkIncidents,
    webhooks,
    mismatches,
    spuriousScopes,
    centrals: n,
    cls: sc.cls,
    pass: why.length === 0,
    why,
  };
}

/** The origin answers 503 to a share of requests on every edge (a uniform partial failure). */
const partial = (share: number) => (f: RealFleet) =>
  f.origin.setMode({
    kind: "handler",
    handle: (_q, r) => {
      r.writeHead(Math.random() < share ? 503 : 200).end("x");
    },
  });

/**
 * The scenario list. The fleet is 3 ISPs x 3 regions x 2 nodes (18 sidecars);
 * rows that need fewer or unequal nodes send traffic from a subset (a node
 * without traffic for an origin is not part of its fleet).
 */
export function standardRealScenarios(): RealScenario[] {
  const S = OriginState;
  const onlyIspA = (n: RealNode) => (n.isp === "isp-a" ? 10 : 0);
  // Unequal ISPs: isp-a 6 nodes, isp-b 3, isp-c 1.
  const unequal = (n: RealNode) => (n.isp === "isp-a" || (n.isp === "isp-b" && n.nodeId !== "isp-b-ap-2" && n.nodeId !== "isp-b-us-2" && n.nodeId !== "isp-b-us-1") || n.nodeId === "isp-c-eu-1" ? 10 : 0);
  let o = 0;
  const name = () => `s${String(++o).padStart(2, "0")}.example`;
  return [
    { name: "origin refuses connections", cls: "refused", origin: name(), fault: (f) => f.origin.setMode({ kind: "refuse" }), expect: { state: S.DOWN, kind: "origin" } },
    { name: "origin resets connections", cls: "reset", origin: name(), fault: (f) => f.origin.setMode({ kind: "reset" }), expect: { state: S.DOWN, kind: "origin" } },
    { name: "origin answers 503", cls: "503", origin: name(), fault: (f) => f.origin.setMode({ kind: "status", status: 503 }), expect: { state: S.DOWN, kind: "origin" } },
    {
      name: "origin blackholed",
      cls: "blackhole",
      limitS: 3,
      origin: name(),
      fault: (f) => f.origin.setMode({ kind: "blackhole" }),
      // The held requests would otherwise end as first-byte timeouts 30 s later, in the middle of the next row.
      cleanup: (f) => f.origin.setMode({ kind: "refuse" }),
      expect: { state: S.DOWN, kind: "origin" },
    },
    { name: "one ISP's path blackholed", cls: "blackhole", limitS: 3, origin: name(), fault: (f) => f.setIsp("isp-a", { kind: "blackhole" }), expect: { state: S.HEALTHY, faults: ["ISP:isp-a"], kind: "network" } },
    { name: "one ISP's path refusing", cls: "ISP", origin: name(), fault: (f) => f.setIsp("isp-b", { kind: "refuse" }), expect: { state: S.HEALTHY, faults: ["ISP:isp-b"], kind: "network" } },
    { name: "one region's nodes failing across ISPs", cls: "region", origin: name(), fault: (f) => f.setRegion("eu", { kind: "refuse" }), expect: { state: S.HEALTHY, faults: ["REGION:eu"], kind: "network" } },
    { name: "one node broken", cls: "node", origin: name(), fault: (f) => f.setNode("isp-c-us-1", { kind: "refuse" }), expect: { state: S.HEALTHY, faults: ["NODE:isp-c-us-1"], kind: "network" } },
    {
      name: "two independent faults: a node's path and another ISP's path refuse",
      cls: "two faults",
      origin: name(),
      fault: async (f) => {
        await f.setNode("isp-a-eu-1", { kind: "refuse" });
        await f.setIsp("isp-c", { kind: "refuse" });
      },
      expect: { state: S.HEALTHY, faults: ["ISP:isp-c", "NODE:isp-a-eu-1"], kind: "network" },
    },
    {
      name: "most but not all nodes of one ISP failing (4 of 6)",
      cls: "node",
      origin: name(),
      fault: async (f) => {
        for (const id of ["isp-b-eu-1", "isp-b-eu-2", "isp-b-us-1", "isp-b-ap-1"]) await f.setNode(id, { kind: "refuse" });
      },
      expect: { state: S.HEALTHY, faults: ["NODE:isp-b-ap-1", "NODE:isp-b-eu-1", "NODE:isp-b-eu-2", "NODE:isp-b-us-1"], kind: "network" },
    },
    {
      name: "origin fails while an ISP fault is open",
      cls: "refused",
      origin: name(),
      before: { fault: (f) => f.setIsp("isp-b", { kind: "refuse" }), expect: ["ISP:isp-b"] },
      fault: (f) => f.origin.setMode({ kind: "refuse" }),
      expect: { state: S.DOWN, kind: "origin" },
    },
    { name: "unequal ISPs (6/3/1 nodes): one ISP's path refusing", cls: "ISP", origin: name(), rate: unequal, fault: (f) => f.setIsp("isp-b", { kind: "refuse" }), expect: { state: S.HEALTHY, faults: ["ISP:isp-b"], kind: "network" } },
    { name: "unequal ISPs (6/3/1 nodes): origin answers 503", cls: "503", origin: name(), rate: unequal, fault: (f) => f.origin.setMode({ kind: "status", status: 503 }), expect: { state: S.DOWN, kind: "origin" } },
    { name: "thin traffic (2 req/s per node): origin refuses", cls: "thin", limitS: 5, origin: name(), rate: () => 2, fault: (f) => f.origin.setMode({ kind: "refuse" }), expect: { state: S.DOWN, kind: "origin" } },
    { name: "origin slow (+2 s TTFB)", cls: "slow", limitS: 5, origin: name(), fault: (f) => f.origin.setMode({ kind: "delay", ms: 2000 }), expect: { state: S.DEGRADED, kind: "origin" } },
    { name: "origin slow (+1.2 s TTFB, under stall_ms)", cls: "slow", limitS: 5, origin: name(), fault: (f) => f.origin.setMode({ kind: "delay", ms: 1200 }), expect: { state: S.DEGRADED, kind: "origin" } },
    { name: "uniform 20% 5xx everywhere (30 s)", cls: "partial", limitS: 5, noScopes: true, durationS: 30, origin: name(), fault: partial(0.2), expect: { state: S.DEGRADED, kind: "origin" } },
    { name: "uniform 30% 5xx everywhere", cls: "partial", limitS: 5, noScopes: true, origin: name(), fault: partial(0.3), expect: { state: S.DEGRADED, kind: "origin" } },
    { name: "uniform 40% 5xx everywhere (30 s)", cls: "partial", limitS: 5, noScopes: true, durationS: 30, origin: name(), fault: partial(0.4), expect: { state: S.DEGRADED, kind: "origin" } },
    {
      name: "origin flapping (2 s down / 2 s up, 30 s)",
      origin: name(),
      durationS: 30,
      limitS: 10,
      loose: true,
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
    { name: "one ISP only, its path failing (probes)", cls: "probes", limitS: 5, origin: name(), rate: onlyIspA, fault: (f) => f.setIsp("isp-a", { kind: "refuse" }), expect: { state: S.HEALTHY, faults: ["ISP:isp-a"], kind: "network" } },
    { name: "one ISP only, origin really down (probes)", cls: "probes", limitS: 5, origin: name(), rate: onlyIspA, fault: (f) => f.origin.setMode({ kind: "refuse" }), expect: { state: S.DOWN, kind: "origin" } },
  ];
}

export function formatRealTable(rows: RealResult[]): string {
  const cluster = rows.some((r) => r.centrals > 1);
  const fmt = (t?: number) => (t === undefined ? "-" : t.toFixed(1));
  const head = [...SCENARIO_HEAD, ...(cluster ? ["all replicas s"] : []), "webhooks", "result"];
  const body = rows.map((r) => {
    const cells = scenarioCells(r);
    return [...cells, ...(cluster ? [fmt(r.detectionAllS)] : []), String(r.webhooks), r.pass ? "PASS" : `FAIL: ${r.why.join("; ")}`];
  });
  return textTable(head, body);
}

/** Hard fault classes (issue 13 item 2: median <= 1 s, worst <= 2 s). */
const HARD: readonly FaultClass[] = ["refused", "reset", "503", "ISP", "region", "node", "two faults"];

/**
 * Median and worst detection time per fault class, and over every hard-fault row. With several centrals
 * (cluster) also as seen by the slowest replica: the time by which every replica reported it.
 */
export function formatDetectionTable(rows: RealResult[]): string {
  const cluster = rows.some((r) => r.centrals > 1);
  const times = new Map<string, Array<[number, number]>>();
  const put = (k: string, t: [number, number]) => (times.get(k) ?? times.set(k, []).get(k)!).push(t);
  for (const r of rows) {
    if (!r.cls) continue;
    const t: [number, number] = [r.detectionS ?? Number.POSITIVE_INFINITY, r.detectionAllS ?? Number.POSITIVE_INFINITY];
    put(r.cls, t);
    if (HARD.includes(r.cls)) put("all hard faults", t);
  }
  const fmt = (t: number) => (Number.isFinite(t) ? t.toFixed(1) : "never");
  const stats = (ts: number[]) => {
    const sorted = [...ts].sort((a, b) => a - b);
    const mid = sorted.length % 2 ? sorted[sorted.length >> 1] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
    return [fmt(mid), fmt(sorted[sorted.length - 1])];
  };
  const body = [...times].map(([k, ts]) => [k, String(ts.length), ...stats(ts.map((t) => t[0])), ...(cluster ? stats(ts.map((t) => t[1])) : [])]);
  const head = cluster ? ["fault class", "rows", "median s (first replica)", "worst s (first)", "median s (all replicas)", "worst s (all)"] : ["fault class", "rows", "median s", "worst s"];
  return textTable(head, body);
}
