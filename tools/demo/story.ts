/**
 * The demo's story: four faults a CDN sees, each followed by recovery, with
 * what the central should conclude and what that means in plain words.
 * Pure data plus `meaning()`; demo.ts plays it.
 */
import { FaultScope, OriginState, type OriginStatus } from "../../proto/gen/originwatch/v1/query_pb.js";
import type { FaultRequest } from "./faults.js";

export interface StoryStep {
  title: string;
  fault: FaultRequest;
  /** What the operator should see, in words. */
  expect: string;
  /** The verdict we wait for, over every origin. */
  matches(origins: OriginStatus[]): boolean;
}

const byName = (list: OriginStatus[], name: string) => list.find((o) => o.name === name);
const hasFault = (o: OriginStatus | undefined, scope: FaultScope, key: string) => !!o && o.state === OriginState.HEALTHY && o.faults.some((f) => f.scope === scope && f.key === key);

/** The story for a fleet with at least two ISPs, the first origin being the one that fails. */
export function storySteps(o: { origins: string[]; isp: string; node: string }): StoryStep[] {
  const [main, other] = o.origins as [string, string | undefined];
  const othersFine = (list: OriginStatus[]) => !other || byName(list, other)?.state === OriginState.HEALTHY;
  return [
    {
      title: `ISP ${o.isp}'s path to the origin is blackholed`,
      fault: { target: o.isp, mode: "blackhole" },
      expect: `every origin stays HEALTHY with an ISP fault on ${o.isp}: the network is at fault, not the origin — no origin alarm`,
      matches: (list) => o.origins.every((n) => hasFault(byName(list, n), FaultScope.ISP, o.isp)),
    },
    {
      title: `origin ${main} goes down (503 to everything)`,
      fault: { target: "origin", mode: "down", origin: main },
      expect: `${main} is DOWN (edges on every ISP fail)${other ? `; ${other}, on the same edges, stays HEALTHY` : ""}`,
      matches: (list) => byName(list, main)?.state === OriginState.DOWN && othersFine(list),
    },
    {
      title: `edge node ${o.node} breaks (its path to the origin refuses connections)`,
      fault: { target: o.node, mode: "refuse" },
      expect: `every origin stays HEALTHY with a node fault on ${o.node}: drain that node, the origins are fine`,
      matches: (list) => o.origins.every((n) => hasFault(byName(list, n), FaultScope.NODE, o.node)),
    },
    {
      title: `origin ${main} gets slow (1.5 s before the first byte)`,
      fault: { target: "origin", mode: "slow", origin: main, ms: 1500 },
      expect: `${main} is DEGRADED (p95 time to first byte above 1 s everywhere)${other ? `; ${other} stays HEALTHY` : ""}`,
      matches: (list) => byName(list, main)?.state === OriginState.DEGRADED && othersFine(list),
    },
  ];
}

/** True when every origin is HEALTHY with no fault left. */
export function allClear(list: OriginStatus[]): boolean {
  return list.length > 0 && list.every((o) => o.state === OriginState.HEALTHY && o.faults.length === 0);
}

/** What a verdict means, for people. */
export function meaning(o: OriginStatus): string {
  switch (o.state) {
    case OriginState.DOWN:
      return "the origin itself is failing: edges on every ISP see errors. This is the customer's origin alarm.";
    case OriginState.DEGRADED:
      return `the origin answers, but badly everywhere (p95 ${o.p95TtfbMs.toFixed(0)} ms, ${(o.failureRatio * 100).toFixed(0)}% failing): a real, partial origin problem.`;
    case OriginState.NO_DATA:
      return "no edge has reported traffic for it in the lookback.";
    case OriginState.HEALTHY: {
      if (!o.faults.length) return o.confirming ? "the origin answers; probing from other ISPs to confirm a doubt." : "every edge reaches the origin.";
      return o.faults
        .map((f) => {
          switch (f.scope) {
            case FaultScope.ISP:
              return `the origin is fine; only edges on ISP ${f.key} fail — the operator's network is at fault. Reroute ${f.key}; no origin alarm.`;
            case FaultScope.REGION:
              return `the origin is fine; only edges in region ${f.key} fail — a regional network fault. No origin alarm.`;
            case FaultScope.NODE:
              return `the origin is fine; only edge node ${f.key} fails — drain that node. No origin alarm.`;
            default:
              return `a fault on ${f.key}.`;
          }
        })
        .join(" ");
    }
    default:
      return "";
  }
}
