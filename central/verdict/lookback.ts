/**
 * Per (origin, node) running sums of the window summaries inside the lookback,
 * kept incrementally so an evaluation tick costs O(nodes), not O(windows):
 * a window is added to the sum when it arrives (if it overlaps the lookback)
 * and subtracted once when it slides out. Replayed or late windows older than
 * the lookback are ignored here (history rollups are the store's concern).
 *
 * Not thread-safe in any interesting sense: single event loop, no awaits.
 */
import type { Histogram, OutcomeCounts } from "../../proto/gen/originwatch/v1/common_pb.js";
import { DEFAULT_BOUNDS_MS, bucketIndex } from "../../proto/histogram.js";
import { type Counts, addCounts, zeroCounts } from "./counts.js";
import type { NodeInput } from "./policy.js";

const NB = DEFAULT_BOUNDS_MS.length + 1;

interface Slot {
  startMs: number;
  endMs: number;
  counts: Counts;
  ttfb: number[] | undefined;
  inSum: boolean;
}

interface Entry {
  input: NodeInput & { counts: Counts; ttfb: number[] };
  slots: Slot[];
  /** Latest window end seen (node clock). */
  lastEndMs: number;
  /** Stalls not yet resolved: already counted once, as failures, when they stalled. */
  outstandingStalls: number;
}

/** How long a node's outstanding stalls are remembered without any window from it. */
const STALL_MEMORY_MS = 120_000;

/**
 * A stalled request is counted once, when it stalls. Its later end as a
 * first-byte timeout, connect timeout, reset or client abort is the same
 * request: those completions are netted against the node's outstanding
 * stalls, so the tail of a blackhole (requests timing out long after the
 * path recovered) does not keep the node failing, and a stall the cache gave
 * up on is not counted as a second, healthy request. A sidecar that reports
 * no stalls has no outstanding stalls, and its timeouts count in full.
 */
function netStalls(e: Entry, c: Counts): void {
  e.outstandingStalls = Math.max(0, e.outstandingStalls + c.stall - c.stallRecovered);
  for (const k of ["firstByteTimeout", "connectTimeout", "reset", "clientAbort"] as const) {
    const n = Math.min(e.outstandingStalls, c[k]);
    if (n === 0) continue;
    c[k] -= n;
    e.outstandingStalls -= n;
  }
}

export interface NodeLabels {
  nodeId: string;
  isp: string;
  region: string;
}

export interface WindowLike {
  origin: string;
  startUnixMs: bigint | number;
  lengthMs: number;
  counts?: OutcomeCounts | Counts;
  ttfb?: Histogram;
}

function sameDefaultBounds(b: readonly number[]): boolean {
  if (b.length !== DEFAULT_BOUNDS_MS.length) return false;
  for (let i = 0; i < b.length; i++) if (b[i] !== DEFAULT_BOUNDS_MS[i]) return false;
  return true;
}

/** Bucket counts on DEFAULT_BOUNDS_MS, re-bucketing other bounds at their upper bounds. */
export function bucketsOf(h: Histogram | undefined): number[] | undefined {
  if (!h || h.counts.length === 0) return undefined;
  const out = new Array<number>(NB).fill(0);
  if (sameDefaultBounds(h.boundsMs)) {
    for (let i = 0; i < NB && i < h.counts.length; i++) out[i] = Number(h.counts[i]);
  } else {
    for (let i = 0; i < h.counts.length; i++) {
      const n = Number(h.counts[i]);
      if (!n) continue;
      const upper = i < h.boundsMs.length ? h.boundsMs[i] : Number.POSITIVE_INFINITY;
      out[bucketIndex(DEFAULT_BOUNDS_MS, upper)] += n;
    }
  }
  return out;
}

function sub(into: Counts, c: Counts): void {
  into.ok -= c.ok;
  into.clientError -= c.clientError;
  into.serverError -= c.serverError;
  into.connectRefused -= c.connectRefused;
  into.connectTimeout -= c.connectTimeout;
  into.dns -= c.dns;
  into.tls -= c.tls;
  into.reset -= c.reset;
  into.firstByteTimeout -= c.firstByteTimeout;
  into.bodyError -= c.bodyError;
  into.clientAbort -= c.clientAbort;
  into.stall -= c.stall;
  into.stallRecovered -= c.stallRecovered;
}

export class LookbackAggregator {
  private byOrigin = new Map<string, Map<string, Entry>>();
  /** Lower edge of the lookback at the last advance(): windows ending at or before it are out. */
  private lowMs = Number.NEGATIVE_INFINITY;

  constructor(private lookbackMs: number, private maxSlots = 16) {}

  setLookback(ms: number): void {
    this.lookbackMs = ms;
  }

  /** Add one window summary seen by a node. */
  add(node: NodeLabels, w: WindowLike): void {
    const startMs = Number(w.startUnixMs);
    const endMs = startMs + (w.lengthMs || 1000);
    let origin = this.byOrigin.get(w.origin);
    if (!origin) this.byOrigin.set(w.origin, (origin = new Map()));
    let e = origin.get(node.nodeId);
    if (!e) {
      e = {
        input: { nodeId: node.nodeId, isp: node.isp, region: node.region, counts: zeroCounts(), ttfb: new Array<number>(NB).fill(0) },
        slots: [],
        lastEndMs: 0,
        outstandingStalls: 0,
      };
      origin.set(node.nodeId, e);
    } else if (e.input.isp !== node.isp || e.input.region !== node.region) {
      // Relabelled node: keep the sums, change the labels (NodeInput is rebuilt per evaluation).
      e.input = { ...e.input, isp: node.isp, region: node.region };
    }
    const counts = addCounts(zeroCounts(), w.counts ?? zeroCounts());
    netStalls(e, counts);
    if (endMs > e.lastEndMs) e.lastEndMs = endMs;
    if (endMs <= this.lowMs) return; // older than the lookback
    const slot: Slot = { startMs, endMs, counts, ttfb: bucketsOf(w.ttfb), inSum: true };
    addCounts(e.input.counts, counts);
    if (slot.ttfb) for (let i = 0; i < NB; i++) e.input.ttfb[i] += slot.ttfb[i];
    e.slots.push(slot);
    if (e.slots.length > this.maxSlots) this.evict(e, e.slots.length - this.maxSlots);
  }

  private evict(e: Entry, n: number): void {
    // Oldest first; a flood of tiny windows cannot grow memory without bound.
    e.slots.sort((a, b) => a.endMs - b.endMs);
    for (const s of e.slots.splice(0, n)) this.out(e, s);
  }

  private out(e: Entry, s: Slot): void {
    if (!s.inSum) return;
    s.inSum = false;
    sub(e.input.counts, s.counts);
    if (s.ttfb) for (let i = 0; i < NB; i++) e.input.ttfb[i] -= s.ttfb[i];
  }

  /** Slide the lookback to end at nowMs: windows ending at or before nowMs - lookback leave the sums. */
  advance(nowMs: number): void {
    this.lowMs = nowMs - this.lookbackMs;
    for (const [origin, nodes] of this.byOrigin) {
      for (const [id, e] of nodes) {
        let keep = 0;
        for (const s of e.slots) {
          if (s.endMs <= this.lowMs) this.out(e, s);
          else e.slots[keep++] = s;
        }
        e.slots.length = keep;
        if (keep === 0 && (e.outstandingStalls === 0 || e.lastEndMs < nowMs - STALL_MEMORY_MS)) nodes.delete(id);
      }
      if (nodes.size === 0) this.byOrigin.delete(origin);
    }
  }

  origins(): string[] {
    return [...this.byOrigin.keys()];
  }

  /** The nodes of an origin with their lookback sums (live objects: read, do not keep). */
  nodes(origin: string): NodeInput[] {
    const m = this.byOrigin.get(origin);
    if (!m) return [];
    const out: NodeInput[] = [];
    for (const e of m.values()) out.push(e.input);
    return out;
  }
}
