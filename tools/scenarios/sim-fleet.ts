/**
 * A simulated fleet in simulated time: each node sends `rate` requests per
 * second to one origin and produces the 1 s window summaries a sidecar would,
 * given what the path and origin do at that second. Blackholes produce stalls
 * 2 s after the request and first-byte timeouts later; a slow origin produces
 * stalls that recover. Used by the engine tests (the short form of the
 * scenario suite) and the verdict benchmark.
 */
import { wireCounts } from "../../proto/outcomes.js";
import { create } from "@bufbuild/protobuf";
import { WindowSummarySchema, type WindowSummary } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { HistogramAccumulator } from "../../proto/histogram.js";
import type { Counts } from "../../central/verdict/counts.js";
import { counts as mkCounts } from "../../central/verdict/counts.js";

export type Behaviour =
  | { kind: "ok"; ttfbMs?: number }
  | { kind: "refuse" }
  | { kind: "status5xx"; ratio: number }
  | { kind: "blackhole" }
  | { kind: "slow"; ttfbMs: number };

export interface SimNode {
  nodeId: string;
  isp: string;
  region: string;
  /** Requests per second. */
  rate: number;
}

export const OK: Behaviour = { kind: "ok" };
const STALL_MS = 2000;
const FBT_MS = 10_000;

interface Pending {
  counts: Counts;
  ttfb: HistogramAccumulator;
}

/** Builds the simulated grid fleet: isps × regions × perCell nodes. */
export function simGrid(isps: string[], regions: string[], perCell: number, rate: number): SimNode[] {
  const out: SimNode[] = [];
  for (const isp of isps) for (const region of regions) for (let i = 1; i <= perCell; i++) out.push({ nodeId: `${isp}-${region}-${i}`, isp, region, rate });
  return out;
}

export class SimFleet {
  /** Future window contributions per node, by window start (s). */
  private future = new Map<string, Map<number, Pending>>();
  /** Fractional request accumulators, for rates below 1/s. */
  private carry = new Map<string, number>();

  constructor(readonly nodes: SimNode[], readonly origin: string) {}

  private pending(nodeId: string, sec: number): Pending {
    let m = this.future.get(nodeId);
    if (!m) this.future.set(nodeId, (m = new Map()));
    let p = m.get(sec);
    if (!p) m.set(sec, (p = { counts: mkCounts(), ttfb: new HistogramAccumulator() }));
    return p;
  }

  /**
   * Advance one second: requests sent during [sec, sec+1) behave as
   * `behaviour(node)` says; returns the window summaries that close at sec+1.
   */
  step(sec: number, behaviour: (n: SimNode) => Behaviour): Array<{ node: SimNode; window: WindowSummary }> {
    const out: Array<{ node: SimNode; window: WindowSummary }> = [];
    for (const n of this.nodes) {
      const acc = (this.carry.get(n.nodeId) ?? 0) + n.rate;
      const reqs = Math.floor(acc + 1e-9);
      this.carry.set(n.nodeId, acc - reqs);
      const b = behaviour(n);
      const now = this.pending(n.nodeId, sec);
      if (reqs > 0) {
        switch (b.kind) {
          case "ok":
            now.counts.ok += reqs;
            for (let i = 0; i < reqs; i++) now.ttfb.record(b.ttfbMs ?? 40);
            break;
          case "refuse":
            now.counts.connectRefused += reqs;
            break;
          case "status5xx": {
            const bad = Math.round(reqs * b.ratio);
            now.counts.serverError += bad;
            now.counts.ok += reqs - bad;
            for (let i = 0; i < reqs; i++) now.ttfb.record(40);
            break;
          }
          case "blackhole": {
            this.pending(n.nodeId, sec + STALL_MS / 1000).counts.stall += reqs;
            this.pending(n.nodeId, sec + FBT_MS / 1000).counts.firstByteTimeout += reqs;
            break;
          }
          case "slow": {
            const doneSec = sec + Math.floor(b.ttfbMs / 1000);
            const d = this.pending(n.nodeId, doneSec);
            d.counts.ok += reqs;
            for (let i = 0; i < reqs; i++) d.ttfb.record(b.ttfbMs);
            if (b.ttfbMs > STALL_MS) {
              this.pending(n.nodeId, sec + STALL_MS / 1000).counts.stall += reqs;
              d.counts.stallRecovered += reqs;
            }
            break;
          }
        }
      }
      const m = this.future.get(n.nodeId)!;
      const p = m.get(sec);
      m.delete(sec);
      if (!p) continue;
      const c = p.counts;
      const any = Object.values(c).some((x) => x > 0);
      if (!any) continue;
      out.push({
        node: n,
        window: create(WindowSummarySchema, {
          origin: this.origin,
          startUnixMs: BigInt(sec * 1000),
          lengthMs: 1000,
          ...wireCounts(c),
          ttfb: p.ttfb.toHistogram(),
        }),
      });
    }
    return out;
  }
}
