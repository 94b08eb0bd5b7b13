/**
 * Per (origin, node) running sums of the window summaries inside the lookback,
 * kept incrementally so an evaluation tick reads sums, not windows: a window
 * is added to its sums when it arrives (if it overlaps the lookback) and
 * subtracted once when it slides out. Replayed or late windows older than the
 * lookback are ignored here (history rollups are the store's concern).
 *
 * Layout (issue 12: 1,000 nodes × 1,000 origins must fit in memory): every
 * (origin, node) is an integer entry; its sums are a NodeInput (the policy's
 * shape, handed out live) whose TTFB buckets are a Uint32Array view. A window in
 * the lookback is not an object: it is a row in its expiry bucket (one per
 * BUCKET_MS of end time) — entry, end time, and its non-zero counts and TTFB
 * buckets as (code, value) pairs (mostly 2 bytes each) in typed arrays — read once more when it
 * leaves the lookback. Buckets are recycled. The fast path's newest windows
 * (NodeInput.tail) are a ring of TAIL_SLOTS per entry in typed arrays, zeroed as
 * their rows leave; each entry also keeps how many of them fail (tailFailing)
 * and its requestsOf / failuresOf, so the tick's policy run reads neither the
 * tail nor the Counts object of a healthy node.
 *
 * Not thread-safe in any interesting sense: single event loop, no awaits.
 */
import { COUNT_FIELDS, type Counts, counts as countsOf, failuresOf, requestsOf, zeroCounts } from "../../proto/outcomes.js";
import { F, NB, type WindowColumns, columnsOfBatch } from "../ingest/window-columns.js";
import type { WindowSummary } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import type { NodeInput } from "./policy.js";

/** Expiry buckets are this wide: advance() touches only the windows that leave. */
const BUCKET_MS = 250;

/** How long a node's outstanding stalls are remembered without any window from it. */
const STALL_MEMORY_MS = 120_000;

/** Pair codes: 0..F-1 a count field, F + b TTFB bucket b. */
const TTFB_CODE = F;
/**
 * A pair is one uint16: code in the low 7 bits, value (0..510) above; value ESCAPE means the value follows as
 * two more uint16 (low, high: up to 2^32 - 1; bigger values are split over several pairs of the same code).
 * Most values in a window are small (a TTFB bucket's count, a few outcome classes): 2 bytes a pair.
 */
const CODE_BITS = 7;
const CODE_MASK = (1 << CODE_BITS) - 1;
const ESCAPE = (1 << (16 - CODE_BITS)) - 1;
const MAX_PAIR = 0xffffffff;
if (F + NB > CODE_MASK + 1) throw new Error("lookback: too many count fields and TTFB buckets for the pair code");

const STALL = COUNT_FIELDS.indexOf("stall");
/** Per count code: 1 when a completed request (resp. failure) of that class counts in requestsOf (failuresOf); stalls apart. */
const REQ_OF = Uint8Array.from(COUNT_FIELDS, (k) => (k !== "stall" && requestsOf(countsOf({ [k]: 1 })) === 1 ? 1 : 0));
const FAIL_OF = Uint8Array.from(COUNT_FIELDS, (k) => (k !== "stall" && failuresOf(countsOf({ [k]: 1 })) === 1 ? 1 : 0));
const STALL_RECOVERED = COUNT_FIELDS.indexOf("stallRecovered");
/** Completions netted against outstanding stalls, in this order. */
const NETTED = (["firstByteTimeout", "connectTimeout", "reset", "clientAbort"] as const).map((k) => COUNT_FIELDS.indexOf(k));

// The hot paths are unrolled from the outcome list once (as in proto/outcomes.ts).
const unrolled = <T>(args: string, body: string): T => new Function(...args.split(","), body) as T;
// Sums stay small integers (V8 Smis): a float64 stored into a Counts field would turn every Counts
// object's fields into boxed doubles (~420 instead of ~160 bytes each; a million (origin, node) sums).
const SMI_MAX = 0x3fffffff;
const smi = (x: string) => `(${x} <= ${SMI_MAX} ? ${x} | 0 : ${x})`;
/** The same for the sums kept beside the counts (they may go negative in passing: stall - stallRecovered). */
const small = (x: number): number => (x <= SMI_MAX && x >= -SMI_MAX ? x | 0 : x);
/** into += a[o .. o+F) */
const addAt = unrolled<(into: Counts, a: Float64Array, o: number) => void>(
  "into,a,o",
  COUNT_FIELDS.map((k, i) => `{ const v = a[o + ${i}]; if (v !== 0) { const x = into.${k} + v; into.${k} = ${smi("x")}; } }`).join(" "),
);
/** into[field of code] -= v (a pair of a row leaving). */
const subCode = unrolled<(into: Counts, code: number, v: number) => void>(
  "into,code,v",
  `let x; switch (code) { ${COUNT_FIELDS.map((k, i) => `case ${i}: x = into.${k} - v; into.${k} = ${smi("x")}; break;`).join(" ")} }`,
);

/** Per-entry TTFB sums live in shared chunks of this many entries (one ArrayBuffer per chunk, not per entry). */
const TTFB_CHUNK = 1024;

export interface NodeLabels {
  nodeId: string;
  isp: string;
  region: string;
}

/** One window in any of the shapes tests and tools hold (the contract's, or with plain-number counts). */
export type WindowLike = Pick<WindowSummary, "origin" | "lengthMs"> &
  Partial<Pick<WindowSummary, "ttfb" | "packedCounts">> & { startUnixMs: bigint | number; counts?: WindowSummary["counts"] | Counts };

/** One of a node's newest windows, as NodeInput.tail shows it (zero once it left the lookback). */
interface TailWindow {
  endMs: number;
  requests: number;
  failures: number;
}

/**
 * Newest windows kept per (origin, node) for NodeInput.tail (the policy's fast
 * path reads the newest ones until they hold min_requests; issue 13).
 */
const TAIL_SLOTS = 8;

/**
 * The sums of one (origin, node): what the policy reads. Its tail lives in the
 * aggregator's typed arrays (a ring of TAIL_SLOTS per entry: no object per
 * window, and a leaving row reads one contiguous slice); `tail` builds the
 * list only when read — the policy reads it only when tailFailing > 0.
 */
class Sums implements NodeInput {
  /** Windows of the tail with failures (NodeInput.tailFailing). */
  tailFailing = 0;
  /**
   * completed(counts), the completed failures and stall - stallRecovered, kept with the counts: the
   * policy reads requests and failures here without reading the Counts object (a cache miss per node).
   */
  done = 0;
  doneFailures = 0;
  stallNet = 0;
  constructor(
    public nodeId: string,
    public isp: string,
    public region: string,
    public counts: Counts,
    /** The policy only indexes and iterates the buckets: a typed array view, see ttfbOf(). */
    public ttfb: readonly number[],
    private readonly agg: LookbackAggregator,
    private readonly id: number,
  ) {}

  /** requestsOf(counts). */
  get requests(): number {
    return this.done + (this.stallNet > 0 ? this.stallNet : 0);
  }

  /** failuresOf(counts). */
  get failures(): number {
    return this.doneFailures + (this.stallNet > 0 ? this.stallNet : 0);
  }

  /** Oldest first, newest last (a snapshot: read it, do not keep it). */
  get tail(): TailWindow[] {
    return this.agg.tailOf(this.id);
  }
}

/** Windows whose end falls in one BUCKET_MS, as rows. */
class Bucket {
  n = 0;
  np = 0;
  /** Rows still in the lookback sums. */
  live = 0;
  entry = new Int32Array(64);
  endMs = new Float64Array(64);
  /** 2 once the row left the lookback. */
  state = new Uint8Array(64);
  pairEnd = new Uint32Array(64);
  /** Pairs: code | value << CODE_BITS, see ESCAPE. */
  pairs = new Uint16Array(1024);
  constructor(public key: number) {}

  reset(key: number): void {
    this.key = key;
    this.n = this.np = this.live = 0;
  }

  row(entry: number, endMs: number): void {
    if (this.n === this.entry.length) {
      const size = this.n * 2;
      this.entry = grow(this.entry, new Int32Array(size));
      this.endMs = grow(this.endMs, new Float64Array(size));
      this.state = grow(this.state, new Uint8Array(size));
      this.pairEnd = grow(this.pairEnd, new Uint32Array(size));
    }
    this.entry[this.n] = entry;
    this.endMs[this.n] = endMs;
    this.state[this.n] = 0;
    this.live++;
  }

  pair(code: number, v: number): void {
    while (v > 0) {
      if (this.np + 3 > this.pairs.length) this.pairs = grow(this.pairs, new Uint16Array(this.pairs.length * 2));
      if (v < ESCAPE) {
        this.pairs[this.np++] = code | (v << CODE_BITS);
        return;
      }
      const part = v > MAX_PAIR ? MAX_PAIR : v;
      this.pairs[this.np++] = code | (ESCAPE << CODE_BITS);
      this.pairs[this.np++] = part % 0x10000;
      this.pairs[this.np++] = Math.floor(part / 0x10000);
      v -= part;
    }
  }

  endRow(): void {
    this.pairEnd[this.n++] = this.np;
  }
}

function grow<T extends Int32Array | Float64Array | Uint8Array | Uint16Array | Uint32Array>(from: T, to: T): T {
  to.set(from as never);
  return to;
}

interface OriginSums {
  nodes: Map<string, number>;
  /** Sum of every node's TTFB buckets in the lookback. */
  ttfb: Float64Array;
  /** Bumped whenever a sum, a label or the set of nodes changes (the engine re-evaluates only then). */
  version: number;
  /** nodes() of the origin, until its set of nodes changes. */
  list: NodeInput[] | undefined;
}

/** Windows as columns (the shapes tests and tools hold). */
function columnsOfWindows(windows: Iterable<WindowLike>): WindowColumns {
  return columnsOfBatch({
    windows: [...windows].map((w) => ({
      ...(w as WindowSummary),
      startUnixMs: BigInt(w.startUnixMs),
      counts: w.counts as WindowSummary["counts"],
      packedCounts: w.packedCounts ?? [],
    })),
  });
}

export class LookbackAggregator {
  private byOrigin = new Map<string, OriginSums>();
  /** Source of OriginSums.version: never repeats, even for an origin forgotten and reported again. */
  private changes = 0;
  /** Per node: its entry in each origin (a batch is one node's: one lookup per window). */
  private byNode = new Map<string, Map<string, number>>();
  // Entries, by id.
  private sums: Sums[] = [];
  private eOrigin: string[] = [];
  /** The origin's sums each entry adds to. */
  private eSums: OriginSums[] = [];
  private live = new Int32Array(1024);
  private lastEndMs = new Float64Array(1024);
  /** Stalls not yet resolved: already counted once, as failures, when they stalled. */
  private stalls = new Float64Array(1024);
  /** Forgotten by the operator: its rows still leave the buckets but touch no sum. */
  private dead = new Uint8Array(1024);
  private free: number[] = [];
  private next = 0;
  /** Entries with no window in the lookback, kept only for their outstanding stalls. */
  private stallOnly = new Set<number>();
  /**
   * Tails (NodeInput.tail), TAIL_SLOTS per entry: a ring whose oldest window is at slot tailHead[id],
   * tailLen[id] windows long, oldest first; a window leaving the lookback is zeroed in place.
   */
  private tailEnd = new Float64Array(1024 * TAIL_SLOTS);
  private tailReq = new Float64Array(1024 * TAIL_SLOTS);
  private tailFail = new Float64Array(1024 * TAIL_SLOTS);
  private tailHead = new Uint8Array(1024);
  private tailLen = new Uint8Array(1024);

  private buckets = new Map<number, Bucket>();
  /** Bucket keys, ascending. */
  private keys: number[] = [];
  private spare: Bucket[] = [];
  private lastBucket: Bucket | undefined;
  /** Lower edge of the lookback at the last advance(): windows ending at or before it are out. */
  private lowMs = Number.NEGATIVE_INFINITY;
  /** Windows refused because a node already had maxSlots windows in the lookback. */
  overflow = 0;
  private readonly scratch = new Float64Array(F);

  constructor(
    private lookbackMs: number,
    private maxSlots = 16,
  ) {}

  setLookback(ms: number): void {
    this.lookbackMs = ms;
  }

  /**
   * Add one window summary seen by a node (tests, tools). True when it is a
   * failing window in the lookback (the cue for evaluation on arrival).
   */
  add(node: NodeLabels, w: WindowLike): boolean {
    let failing = false;
    this.addColumns(node, columnsOfWindows([w]), () => (failing = true));
    return failing;
  }

  /**
   * Add every window of one batch of one node. onFailing(origin) hears every
   * failing window in the lookback (failures, at least half of its requests):
   * the engine's cue to evaluate the origin on arrival (arrival.ts).
   */
  addColumns(node: NodeLabels, c: WindowColumns, onFailing?: (origin: string) => void): void {
    let mine = this.byNode.get(node.nodeId);
    if (!mine) this.byNode.set(node.nodeId, (mine = new Map()));
    for (let i = 0; i < c.length; i++) {
      const origin = c.origin[i];
      let id = mine.get(origin);
      if (id === undefined) mine.set(origin, (id = this.newEntry(origin, node)));
      else {
        const s = this.sums[id];
        if (s.isp !== node.isp || s.region !== node.region) {
          // Relabelled node: keep the sums, change the labels.
          s.isp = node.isp;
          s.region = node.region;
          this.eSums[id].version = ++this.changes;
        }
      }
      if (this.addWindow(id, c, i) && onFailing) onFailing(origin);
    }
  }

  private ttfbChunks: Uint32Array[] = [];

  /**
   * Entry id's TTFB sums, zeroed: a view into a shared chunk. Uint32: additions and
   * subtractions are exact modulo 2^32, so a sum is exact while one node's samples in
   * one bucket over the lookback stay below 2^32 (at most maxSlots windows, each within
   * --max-requests-per-sec × its length: 16 × 6·10^7 for 60 s windows at the default).
   */
  private ttfbOf(id: number): Uint32Array {
    const c = Math.floor(id / TTFB_CHUNK);
    while (this.ttfbChunks.length <= c) this.ttfbChunks.push(new Uint32Array(TTFB_CHUNK * NB));
    const at = (id % TTFB_CHUNK) * NB;
    const view = this.ttfbChunks[c].subarray(at, at + NB);
    view.fill(0);
    return view;
  }

  private newEntry(origin: string, node: NodeLabels): number {
    let o = this.byOrigin.get(origin);
    if (!o) this.byOrigin.set(origin, (o = { nodes: new Map(), ttfb: new Float64Array(NB), version: 0, list: undefined }));
    let id = this.free.pop();
    if (id === undefined) {
      id = this.next++;
      if (id === this.live.length) {
        const size = id * 2;
        this.live = grow(this.live, new Int32Array(size));
        this.lastEndMs = grow(this.lastEndMs, new Float64Array(size));
        this.stalls = grow(this.stalls, new Float64Array(size));
        this.dead = grow(this.dead, new Uint8Array(size));
        this.tailEnd = grow(this.tailEnd, new Float64Array(size * TAIL_SLOTS));
        this.tailReq = grow(this.tailReq, new Float64Array(size * TAIL_SLOTS));
        this.tailFail = grow(this.tailFail, new Float64Array(size * TAIL_SLOTS));
        this.tailHead = grow(this.tailHead, new Uint8Array(size));
        this.tailLen = grow(this.tailLen, new Uint8Array(size));
      }
    }
    this.sums[id] = new Sums(node.nodeId, node.isp, node.region, zeroCounts(), this.ttfbOf(id) as unknown as readonly number[], this, id);
    this.tailHead[id] = 0;
    this.tailLen[id] = 0;
    this.eOrigin[id] = origin;
    this.eSums[id] = o;
    o.version = ++this.changes;
    o.list = undefined;
    this.live[id] = 0;
    this.lastEndMs[id] = 0;
    this.stalls[id] = 0;
    this.dead[id] = 0;
    o.nodes.set(node.nodeId, id);
    return id;
  }

  /**
   * A stalled request is counted once, when it stalls. Its later end as a
   * first-byte timeout, connect timeout, reset or client abort is the same
   * request: those completions are netted against the node's outstanding
   * stalls, so the tail of a blackhole (requests timing out long after the
   * path recovered) does not keep the node failing, and a stall the cache gave
   * up on is not counted as a second, healthy request. A sidecar that reports
   * no stalls has no outstanding stalls, and its timeouts count in full.
   * True when the counts to add are the netted copy in `scratch`.
   */
  private netStalls(id: number, a: Float64Array, o: number): boolean {
    if (this.stalls[id] === 0 && a[o + STALL] === 0) return false;
    const c = this.scratch;
    for (let k = 0; k < F; k++) c[k] = a[o + k];
    let out = Math.max(0, this.stalls[id] + c[STALL] - c[STALL_RECOVERED]);
    for (const k of NETTED) {
      const n = Math.min(out, c[k]);
      if (n === 0) continue;
      c[k] -= n;
      out -= n;
    }
    this.stalls[id] = out;
    return true;
  }

  private addWindow(id: number, c: WindowColumns, i: number): boolean {
    const endMs = c.startMs[i] + (c.lengthMs[i] || 1000);
    const netted = this.netStalls(id, c.counts, i * F);
    const a = netted ? this.scratch : c.counts;
    const o = netted ? 0 : i * F;
    if (endMs > this.lastEndMs[id]) this.lastEndMs[id] = endMs;
    if (endMs <= this.lowMs) return false; // older than the lookback
    if (this.live[id] >= this.maxSlots) {
      // A flood of tiny windows cannot grow memory without bound.
      this.overflow++;
      return false;
    }
    const s = this.sums[id];
    addAt(s.counts, a, o);
    const stallNet = a[o + STALL] - a[o + STALL_RECOVERED];
    const b = this.bucketFor(endMs);
    b.row(id, endMs);
    // The tail's requests and failures (as requestsOf / failuresOf count them) in the same pass.
    const unresolved = Math.max(0, a[o + STALL] - a[o + STALL_RECOVERED]);
    let requests = unresolved;
    let failures = unresolved;
    for (let k = 0; k < F; k++) {
      const v = a[o + k];
      if (v > 0) {
        b.pair(k, v);
        requests += REQ_OF[k] * v;
        failures += FAIL_OF[k] * v;
      }
    }
    s.done = small(s.done + requests - unresolved);
    s.doneFailures = small(s.doneFailures + failures - unresolved);
    if (stallNet !== 0) s.stallNet = small(s.stallNet + stallNet);
    this.addToTail(id, s, endMs, requests, failures);
    // Written through the chunk (the view in s.ttfb is the policy's; same memory).
    const t = this.ttfbChunks[Math.floor(id / TTFB_CHUNK)];
    const base = (id % TTFB_CHUNK) * NB;
    const os = this.eSums[id];
    os.version = ++this.changes;
    const ot = os.ttfb;
    for (let p = c.ttfbStart[i]; p < c.ttfbStart[i + 1]; p++) {
      const k = c.ttfbIdx[p];
      const n = c.ttfbN[p];
      t[base + k] += n;
      ot[k] += n;
      b.pair(TTFB_CODE + k, n);
    }
    b.endRow();
    this.live[id]++;
    return failures > 0 && failures * 2 >= requests;
  }

  /**
   * Append a window to entry id's tail (oldest first, newest last), keeping the
   * newest TAIL_SLOTS (the oldest is dropped first); a late one goes where its
   * end belongs (after windows with the same end).
   */
  private addToTail(id: number, s: Sums, endMs: number, requests: number, failures: number): void {
    const tb = id * TAIL_SLOTS;
    let h = this.tailHead[id];
    let len = this.tailLen[id];
    if (len >= TAIL_SLOTS) {
      if (this.tailFail[tb + h] > 0) s.tailFailing--;
      h = (h + 1) % TAIL_SLOTS;
      len--;
    }
    if (failures > 0) s.tailFailing++;
    // Slide newer windows up one slot until endMs fits (none in the common case: time moves forward).
    let i = len;
    while (i > 0 && this.tailEnd[tb + ((h + i - 1) % TAIL_SLOTS)] > endMs) {
      const from = tb + ((h + i - 1) % TAIL_SLOTS);
      const to = tb + ((h + i) % TAIL_SLOTS);
      this.tailEnd[to] = this.tailEnd[from];
      this.tailReq[to] = this.tailReq[from];
      this.tailFail[to] = this.tailFail[from];
      i--;
    }
    const j = tb + ((h + i) % TAIL_SLOTS);
    this.tailEnd[j] = endMs;
    this.tailReq[j] = requests;
    this.tailFail[j] = failures;
    this.tailHead[id] = h;
    this.tailLen[id] = len + 1;
  }

  /** Entry id's tail as NodeInput.tail shows it (Sums.tail). */
  tailOf(id: number): TailWindow[] {
    const out: TailWindow[] = [];
    const tb = id * TAIL_SLOTS;
    for (let k = 0, len = this.tailLen[id], h = this.tailHead[id]; k < len; k++) {
      const j = tb + ((h + k) % TAIL_SLOTS);
      out.push({ endMs: this.tailEnd[j], requests: this.tailReq[j], failures: this.tailFail[j] });
    }
    return out;
  }

  private bucketFor(endMs: number): Bucket {
    const key = Math.floor(endMs / BUCKET_MS);
    const last = this.lastBucket;
    if (last && last.key === key) return last;
    let b = this.buckets.get(key);
    if (!b) {
      b = this.spare.pop() ?? new Bucket(key);
      b.reset(key);
      this.buckets.set(key, b);
      insertSorted(this.keys, key);
    }
    this.lastBucket = b;
    return b;
  }

  /** Slide the lookback to end at nowMs: windows ending at or before nowMs - lookback leave the sums. */
  advance(nowMs: number): void {
    this.lowMs = nowMs - this.lookbackMs;
    const limit = Math.floor(this.lowMs / BUCKET_MS);
    const emptied: number[] = [];
    let n = 0;
    while (n < this.keys.length && this.keys[n] <= limit) {
      const b = this.buckets.get(this.keys[n])!;
      this.leaveLookback(b, emptied);
      // A bucket straddling the edge stays for the next advance.
      if (b.live > 0) break;
      this.buckets.delete(b.key);
      if (this.lastBucket === b) this.lastBucket = undefined;
      this.spare.push(b);
      n++;
    }
    if (n > 0) this.keys.splice(0, n);
    if (this.spare.length > 64) this.spare.length = 64;
    const keepStalls = nowMs - STALL_MEMORY_MS;
    for (const id of this.stallOnly) {
      if (this.live[id] > 0) this.stallOnly.delete(id);
      else if (this.lastEndMs[id] < keepStalls) {
        this.stallOnly.delete(id);
        this.forget(id);
      }
    }
    for (const id of emptied) {
      if (this.live[id] > 0 || this.dead[id]) continue;
      // Keep a node with outstanding stalls a while: its later timeouts are netted against them.
      if (this.stalls[id] > 0 && this.lastEndMs[id] >= keepStalls) this.stallOnly.add(id);
      else this.forget(id);
    }
  }

  private leaveLookback(b: Bucket, emptied: number[]): void {
    const low = this.lowMs;
    for (let r = 0; r < b.n; r++) {
      if (b.state[r] === 2 || b.endMs[r] > low) continue;
      b.state[r] = 2;
      b.live--;
      const id = b.entry[r];
      if (--this.live[id] === 0) emptied.push(id);
      if (this.dead[id]) {
        if (this.live[id] === 0) this.release(id);
        continue;
      }
      const s = this.sums[id];
      const cs = s.counts;
      // Out of the tail's sums too (it may still hold the window): the oldest such window, zeroed.
      const endMs = b.endMs[r];
      const tb = id * TAIL_SLOTS;
      for (let k = 0, len = this.tailLen[id], h = this.tailHead[id]; k < len; k++) {
        const j = tb + ((h + k) % TAIL_SLOTS);
        if (this.tailEnd[j] === endMs && (this.tailReq[j] > 0 || this.tailFail[j] > 0)) {
          if (this.tailFail[j] > 0) s.tailFailing--;
          this.tailReq[j] = this.tailFail[j] = 0;
          break;
        }
      }
      const t = this.ttfbChunks[Math.floor(id / TTFB_CHUNK)];
      const base = (id % TTFB_CHUNK) * NB;
      const os = this.eSums[id];
      os.version = ++this.changes;
      const ot = os.ttfb;
      // A row's count pairs come first, then its TTFB pairs.
      let done = 0;
      let doneFailures = 0;
      let stallNet = 0;
      const end = b.pairEnd[r];
      const pairs = b.pairs;
      for (let p = r === 0 ? 0 : b.pairEnd[r - 1]; p < end; ) {
        const u = pairs[p];
        const code = u & CODE_MASK;
        let v = u >>> CODE_BITS;
        if (v === ESCAPE) {
          v = pairs[p + 1] + pairs[p + 2] * 0x10000;
          p += 3;
        } else p++;
        if (code < F) {
          subCode(cs, code, v);
          done += REQ_OF[code] * v;
          doneFailures += FAIL_OF[code] * v;
          if (code === STALL) stallNet += v;
          else if (code === STALL_RECOVERED) stallNet -= v;
        } else {
          t[base + code - TTFB_CODE] -= v;
          ot[code - TTFB_CODE] -= v;
        }
      }
      s.done = small(s.done - done);
      s.doneFailures = small(s.doneFailures - doneFailures);
      if (stallNet !== 0) s.stallNet = small(s.stallNet - stallNet);
    }
  }

  /** The entry leaves its origin and node maps; its id is reused once no row refers to it. */
  private forget(id: number): void {
    const origin = this.eOrigin[id];
    const nodeId = this.sums[id].nodeId;
    const o = this.byOrigin.get(origin);
    if (o && o.nodes.get(nodeId) === id) {
      o.nodes.delete(nodeId);
      o.version = ++this.changes;
      o.list = undefined;
      if (o.nodes.size === 0) this.byOrigin.delete(origin);
    }
    const mine = this.byNode.get(nodeId);
    if (mine && mine.get(origin) === id) {
      mine.delete(origin);
      if (mine.size === 0) this.byNode.delete(nodeId);
    }
    this.stallOnly.delete(id);
    if (this.live[id] === 0) this.release(id);
    else this.dead[id] = 1;
  }

  private release(id: number): void {
    this.dead[id] = 1;
    this.sums[id] = undefined as unknown as Sums;
    this.eSums[id] = undefined as unknown as OriginSums;
    this.free.push(id);
  }

  /** Operator forget: drop every node's sums for the origin at once. */
  forgetOrigin(origin: string): void {
    const o = this.byOrigin.get(origin);
    if (!o) return;
    for (const id of [...o.nodes.values()]) this.forget(id);
    this.byOrigin.delete(origin);
  }

  /** Operator forget: drop one node's sums in every origin. */
  forgetNode(nodeId: string): void {
    const mine = this.byNode.get(nodeId);
    if (!mine) return;
    for (const [origin, id] of [...mine]) {
      // Its windows leave the origin's TTFB sum now; its rows then touch no sum.
      const ot = this.byOrigin.get(origin)?.ttfb;
      const t = this.sums[id].ttfb;
      if (ot) for (let k = 0; k < NB; k++) ot[k] -= t[k];
      this.forget(id);
    }
  }

  origins(): string[] {
    return [...this.byOrigin.keys()];
  }

  /** Whether any node has sums (or outstanding stalls) for the origin. */
  has(origin: string): boolean {
    return this.byOrigin.has(origin);
  }

  /** Sum of the ttfb buckets of every node of the origin over the lookback (live array: read only). */
  totalTtfb(origin: string): readonly number[] | undefined {
    return this.byOrigin.get(origin)?.ttfb as unknown as readonly number[] | undefined;
  }

  /** The nodes of an origin with their lookback sums (live objects and a shared array: read, do not keep or modify). */
  nodes(origin: string): readonly NodeInput[] {
    const o = this.byOrigin.get(origin);
    if (!o) return [];
    if (!o.list) {
      o.list = [];
      for (const id of o.nodes.values()) o.list.push(this.sums[id]);
    }
    return o.list;
  }

  /** Changes whenever anything nodes(origin) shows changes (-1: no sums for the origin). */
  version(origin: string): number {
    return this.byOrigin.get(origin)?.version ?? -1;
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
