/**
 * A synthetic fleet of node aggregates for the verdict policy: ISPs × regions ×
 * nodes per cell, each with steady healthy traffic, and helpers to break parts
 * of it. Used by the policy table tests, the verdict benchmark and the demo.
 */
import { DEFAULT_BOUNDS_MS, bucketIndex } from "../../proto/histogram.js";
import { type Counts, counts } from "../../central/verdict/counts.js";
import type { NodeInput } from "../../central/verdict/policy.js";

export interface FleetShape {
  isps: string[];
  regions: string[];
  /** Nodes per (ISP, region) cell. */
  perCell: number;
  /** Requests per node in the lookback. */
  requests: number;
  /** TTFB of healthy requests. */
  ttfbMs?: number;
}

export function ttfbBuckets(valueMs: number, n: number): number[] {
  const b = new Array<number>(DEFAULT_BOUNDS_MS.length + 1).fill(0);
  if (n > 0) b[bucketIndex(DEFAULT_BOUNDS_MS, valueMs)] = n;
  return b;
}

export function nodeId(isp: string, region: string, i: number): string {
  return `${isp}-${region}-${i + 1}`;
}

/** A healthy fleet: every node answers `requests` requests ok. */
export function fleet(shape: FleetShape): NodeInput[] {
  const out: NodeInput[] = [];
  for (const isp of shape.isps)
    for (const region of shape.regions)
      for (let i = 0; i < shape.perCell; i++)
        out.push({
          nodeId: nodeId(isp, region, i),
          isp,
          region,
          counts: counts({ ok: shape.requests }),
          ttfb: ttfbBuckets(shape.ttfbMs ?? 40, shape.requests),
        });
  return out;
}

export const GRID: FleetShape = { isps: ["isp-a", "isp-b", "isp-c"], regions: ["eu", "us"], perCell: 2, requests: 50 };

/** Replace the counts of matching nodes; ttfb follows the ok count. */
export function set(nodes: NodeInput[], match: (n: NodeInput) => boolean, c: Partial<Counts>, ttfbMs = 40): NodeInput[] {
  return nodes.map((n) => {
    if (!match(n)) return n;
    const k = counts(c);
    const answered = k.ok + k.clientError + k.serverError + k.clientAbort;
    return { ...n, counts: k, ttfb: ttfbBuckets(ttfbMs, answered) };
  });
}

export const inIsp = (isp: string) => (n: NodeInput) => n.isp === isp;
export const inRegion = (region: string) => (n: NodeInput) => n.region === region;
export const isNode = (...ids: string[]) => (n: NodeInput) => ids.includes(n.nodeId);
export const all = () => true;
