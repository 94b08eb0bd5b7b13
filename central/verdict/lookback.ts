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
import { BOUNDS_SCHEMA_DEFAULT, DEFAULT_BOUNDS_MS, bucketIndex, denseOf } from "../../proto/histogram.js";
import { type Counts, addCounts, subCounts, zeroCounts } from "./counts.js";
import { countsOfWire, failuresOf, requestsOf } from "../../proto/outcomes.js";
import type { NodeInput } from "./policy.js";

const NB = DEFAULT_BOUNDS_MS.length + 1;

interface Slot {
  endMs: number;
  counts: Counts;
  /** requestsOf / failuresOf the counts (netted): what the tail reads. */
  requests: number;
  failures: number;
  /** Sparse TTFB buckets: indexes and counts of the non-empty ones. */
  ttfbIdx: number[];
  ttfbN: number[];
  entry: Entry;
}

interface Entry {
  origin: string;
  input: NodeInput & { counts: Counts; ttfb: number[]; tail: Slot[] };
  /** Slots still in the sums. */
  live: number;
  /** Latest window end seen (node clock). */
  lastEndMs: number;
  /** Stalls not yet resolved: already counted once, as failures, when they stalled. */
  outstandingStalls: number;
  /** Forgotten by the operator: its slots still leave the queues but touch no live sum. */
  dead?: boolean;
}

/** Expiry buckets are this wide: advance() touches only the slots that leave. */
const BUCKET_MS = 250;

/**
 * Newest windows kept per (origin, node) for NodeInput.tail (the policy's fast
 * path reads the newest ones until they hold min_requests).
 */
const TAIL_SLOTS = 8;

/**
 * Append a slot to a node's tail (oldest first, newest last), keeping the
 * newest TAIL_SLOTS. Appending is the common case; a late window is inserted
 * where its end belongs. Slots that leave the lookback are zeroed in place
 * (out()), not removed: the tail never needs a search.
 */
function addToTail(tail: Slot[], s: Slot): void {
  let i = tail.length;
  while (i > 0 && tail[i - 1].endMs > s.endMs) i--;
  if (i === tail.length) tail.push(s);
  else tail.splice(i, 0, s);
  if (tail.length > TAIL_SLOTS) tail.shift();
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
  if (e.outstandingStalls === 0 && c.stall === 0) return;
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
  /** The compact wire form of counts, read when counts is absent. */
  packedCounts?: readonly number[];
  ttfb?: Histogram;
}

function sameDefaultBounds(b: readonly number[]): boolean {
  if (b.length !== DEFAULT_BOUNDS_MS.length) return false;
  for (let i = 0; i < b.length; i++) if (b[i] !== DEFAULT_BOUNDS_MS[i]) return false;
  return true;
}

const D = DEFAULT_BOUNDS_MS;
const SPOTS = [0, 1, D.length >> 2, D.length >> 1, (3 * D.length) >> 2, D.length - 1];
/** Hot-path check: same length and the same values at a few spots (bounds are ascending sequences). */
function looksDefault(b: readonly number[]): boolean {
  if (b.length !== D.length) return false;
  for (const i of SPOTS) if (b[i] !== D[i]) return false;
  return true;
}

/** Bucket counts on DEFAULT_BOUNDS_MS, re-bucketing other bounds at their upper bounds. */
export function bucketsOf(h: Histogram | undefined): number[] | undefined {
  if (h && h.boundsSchema === BOUNDS_SCHEMA_DEFAULT) {
    const d = denseOf(h);
    return d ? d.counts : undefined;
  }
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

/** Non-empty buckets of h on DEFAULT_BOUNDS_MS, as parallel index/count arrays. */
function sparseBuckets(h: Histogram | undefined, idx: number[], n: number[]): void {
  if (h && h.boundsSchema === BOUNDS_SCHEMA_DEFAULT && h.counts.length === 0) {
    // The compact form is already sparse (validated ascending and in range).
    const len = Math.min(h.sparseIndex.length, h.sparseCount.length);
    for (let i = 0; i < len; i++) {
      if (h.sparseIndex[i] < NB && h.sparseCount[i] > 0) {
        idx.push(h.sparseIndex[i]);
        n.push(h.sparseCount[i]);
      }
    }
    return;
  }
  if (h && h.boundsSchema === BOUNDS_SCHEMA_DEFAULT) {
    const d = denseOf(h);
    if (d) for (let i = 0; i < NB; i++) if (d.counts[i]) (idx.push(i), n.push(d.counts[i]));
    return;
  }
  if (!h || h.counts.length === 0) return;
  const c = h.counts;
  if (looksDefault(h.boundsMs)) {
    const len = Math.min(NB, c.length);
    for (let i = 0; i < len; i++) {
      const v = c[i];
      if (v !== 0n) {
        idx.push(i);
        n.push(Number(v));
      }
    }
    return;
  }
  const dense = bucketsOf(h)!;
  for (let i = 0; i < NB; i++) {
    if (dense[i]) {
      idx.push(i);
      n.push(dense[i]);
    }
  }
}

/** Insert key into an ascending array (appending is the common case: time moves forward). */
function insertSorted(k: number[], key: number): void {
  if (k.length === 0 || k[k.length - 1] < key) {
    k.push(key);
    return;
  }
  let lo = 0;
  let hi = k.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (k[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  k.splice(lo, 0, key);
}

export class LookbackAggregator {
  private byOrigin = new Map<string, Map<string, Entry>>();
  /** Per origin: the sum of every node's ttfb buckets in the lookback. */
  private originTtfb = new Map<string, number[]>();
  /** Slots by expiry bucket (floor(endMs / BUCKET_MS)), and the bucket keys in ascending order. */
  private expiry = new Map<number, Slot[]>();
  private keys: number[] = [];
  /** Lower edge of the lookback at the last advance(): windows ending at or before it are out. */
  private lowMs = Number.NEGATIVE_INFINITY;
  /** Windows refused because a node already had maxSlots windows in the lookback. */
  overflow = 0;
  constructor(private lookbackMs: number, private maxSlots = 16) {}

  setLookback(ms: number): void {
    this.lookbackMs = ms;
  }

  /**
   * Add one window summary seen by a node. Returns true when it is a failing
   * window in the lookback (failures, at least half of its requests): the
   * engine's cue to evaluate the origin on arrival (arrival.ts).
   */
  add(node: NodeLabels, w: WindowLike): boolean {
    const startMs = Number(w.startUnixMs);
    const endMs = startMs + (w.lengthMs || 1000);
    let origin = this.byOrigin.get(w.origin);
    if (!origin) this.byOrigin.set(w.origin, (origin = new Map()));
    let e = origin.get(node.nodeId);
    if (!e) {
      e = {
        origin: w.origin,
        input: { nodeId: node.nodeId, isp: node.isp, region: node.region, counts: zeroCounts(), ttfb: new Array<number>(NB).fill(0), tail: [] },
        live: 0,
        lastEndMs: 0,
        outstandingStalls: 0,
      };
      origin.set(node.nodeId, e);
    } else if (e.input.isp !== node.isp || e.input.region !== node.region) {
      // Relabelled node: keep the sums, change the labels.
      e.input = { ...e.input, isp: node.isp, region: node.region };
    }
    const counts = countsOfWire(w);
    netStalls(e, counts);
    if (endMs > e.lastEndMs) e.lastEndMs = endMs;
    if (endMs <= this.lowMs) return false; // older than the lookback
    if (e.live >= this.maxSlots) {
      // A flood of tiny windows cannot grow memory without bound.
      this.overflow++;
      return false;
    }
    const slot: Slot = { endMs, counts, requests: requestsOf(counts), failures: failuresOf(counts), ttfbIdx: [], ttfbN: [], entry: e };
    sparseBuckets(w.ttfb, slot.ttfbIdx, slot.ttfbN);
    addCounts(e.input.counts, counts);
    const t = e.input.ttfb;
    let ot = this.originTtfb.get(w.origin);
    if (!ot) this.originTtfb.set(w.origin, (ot = new Array<number>(NB).fill(0)));
    for (let i = 0; i < slot.ttfbIdx.length; i++) {
      t[slot.ttfbIdx[i]] += slot.ttfbN[i];
      ot[slot.ttfbIdx[i]] += slot.ttfbN[i];
    }
    e.live++;
    addToTail(e.input.tail, slot);
    const key = Math.floor(endMs / BUCKET_MS);
    let bucket = this.expiry.get(key);
    if (!bucket) {
      this.expiry.set(key, (bucket = []));
      insertSorted(this.keys, key);
    }
    bucket.push(slot);
    return slot.failures > 0 && slot.failures * 2 >= slot.requests;
  }

  private out(s: Slot): void {
    const e = s.entry;
    subCounts(e.input.counts, s.counts);
    // Out of the tail's sums too (it may still hold the slot).
    s.requests = 0;
    s.failures = 0;
    const t = e.input.ttfb;
    const ot = e.dead ? undefined : this.originTtfb.get(e.origin);
    for (let i = 0; i < s.ttfbIdx.length; i++) {
      t[s.ttfbIdx[i]] -= s.ttfbN[i];
      if (ot) ot[s.ttfbIdx[i]] -= s.ttfbN[i];
    }
    e.live--;
  }

  /** Slide the lookback to end at nowMs: windows ending at or before nowMs - lookback leave the sums. */
  advance(nowMs: number): void {
    this.lowMs = nowMs - this.lookbackMs;
    const limit = Math.floor(this.lowMs / BUCKET_MS);
    const emptied = new Set<Entry>();
    let n = 0;
    while (n < this.keys.length && this.keys[n] <= limit) {
      const key = this.keys[n];
      const bucket = this.expiry.get(key)!;
      const kept: Slot[] = [];
      for (const s of bucket) {
        if (s.endMs <= this.lowMs) {
          this.out(s);
          if (s.entry.live === 0) emptied.add(s.entry);
        } else kept.push(s);
      }
      if (kept.length > 0) {
        // The bucket straddles the edge: keep it for the next advance.
        this.expiry.set(key, kept);
        break;
      }
      this.expiry.delete(key);
      n++;
    }
    if (n > 0) this.keys.splice(0, n);
    const recent = nowMs - STALL_MEMORY_MS;
    for (const e of this.stallOnly) {
      if (e.live > 0) this.stallOnly.delete(e);
      else if (e.lastEndMs < recent) {
        this.stallOnly.delete(e);
        this.forget(e);
      }
    }
    for (const e of emptied) {
      if (e.live > 0) continue;
      // Keep a node with outstanding stalls a while: its later timeouts are netted against them.
      if (e.outstandingStalls > 0 && e.lastEndMs >= recent) this.stallOnly.add(e);
      else this.forget(e);
    }
  }

  /** Entries with no window in the lookback, kept only for their outstanding stalls. */
  private stallOnly = new Set<Entry>();

  private forget(e: Entry): void {
    const m = this.byOrigin.get(e.origin);
    if (!m || m.get(e.input.nodeId) !== e) return;
    m.delete(e.input.nodeId);
    if (m.size === 0) {
      this.byOrigin.delete(e.origin);
      this.originTtfb.delete(e.origin);
    }
  }

  /** Operator forget: drop every node's sums for the origin at once. */
  forgetOrigin(origin: string): void {
    const m = this.byOrigin.get(origin);
    if (!m) return;
    for (const e of m.values()) {
      e.dead = true;
      this.stallOnly.delete(e);
    }
    this.byOrigin.delete(origin);
    this.originTtfb.delete(origin);
  }

  /** Operator forget: drop one node's sums in every origin. */
  forgetNode(nodeId: string): void {
    for (const [origin, m] of this.byOrigin) {
      const e = m.get(nodeId);
      if (!e) continue;
      // Its windows leave the origin's TTFB sum now; the slots then touch no live sum.
      const ot = this.originTtfb.get(origin);
      if (ot) for (let i = 0; i < NB; i++) ot[i] -= e.input.ttfb[i];
      e.dead = true;
      this.stallOnly.delete(e);
      this.forget(e);
    }
  }

  origins(): string[] {
    return [...this.byOrigin.keys()];
  }

  /** Sum of the ttfb buckets of every node of the origin over the lookback (live array: read only). */
  totalTtfb(origin: string): readonly number[] | undefined {
    return this.originTtfb.get(origin);
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
