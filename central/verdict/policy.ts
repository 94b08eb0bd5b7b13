/**
 * The verdict policy: a pure function from what every node saw of one origin
 * over the lookback to a verdict (DESIGN.md §5, issue 4). No I/O, no clock.
 *
 * Rules, in the order they apply:
 *  1. Judge each node: it counts once it has min_requests in the lookback, and
 *     is failing when its failure ratio is >= fail_ratio. Stale nodes (stopped
 *     reporting) are left out entirely. Fast path: a node whose newest
 *     min_requests requests fail clearly (FAST_FAIL_RATIO) is judged on those alone.
 *  2. Judge each ISP and each region as a pool of its nodes. A pool has traffic
 *     when its requests reach min_requests; it is failing when its pooled ratio
 *     is >= fail_ratio AND nothing inside it is healthy: no node with traffic is
 *     healthy, and its low-traffic nodes, pooled, are not healthy with traffic.
 *     (Half of an ISP failing is node faults, not an ISP fault.)
 *  3. DOWN when the failing ISPs are at least two and at least half of the ISPs
 *     with traffic, and (D1) those voting ISPs pooled fail at >= fail_ratio — unless one failing region holds every failing node and
 *     traffic outside it is healthy (a region fault seen through ISPs that live
 *     only in that region).
 *  4. Otherwise attribute failures to the smallest scopes that explain them:
 *     failing ISPs and regions not contained in another reported scope (a scope
 *     with one active node is that node), then failing nodes not covered.
 *     S1. A failing node, ISP or region is blamed only when its (weighted)
 *     failures are significantly above the pooled ratio of its peers (every
 *     other evidence node of the fleet): one-sided Fisher exact test at
 *     ATTRIBUTION_ALPHA (significance.ts). A uniform partial failure then
 *     blames nothing; it is DEGRADED (or DOWN) on the fleet. When the peers
 *     have less than min_requests there is nothing to compare with and the
 *     blame stands (step 5 asks probes).
 *  5. When the only ISP with traffic is failing, nothing in the fleet proves the
 *     origin answers: the verdict is unconfirmed (needsConfirmation) until
 *     probes from other ISPs say "origin up" (ISP fault) or "origin down" (DOWN).
 *  6. DEGRADED when the rest of the fleet (not covered by a fault) has a failure
 *     ratio above degraded_fail_ratio with enough volume and failures, or a p95
 *     TTFB above the latency bar, either spanning ISPs the same way DOWN does.
 *
 * One liar is bounded (DESIGN.md §6, issue 10 item 5): a node's claims cannot
 * outweigh its peers in any pool (ISP, region, fleet).
 *  W1. Every pooled ratio weighs a node at most as much as the median node:
 *      weight = min(requests, lower median of the qualified nodes' requests);
 *      its failures and TTFB samples scale with it. Raw counts stay in the figures.
 *  W2. A lone dissenter is not healthy evidence: when exactly one qualified node
 *      is healthy while two or more fail, that node is left out of every pool,
 *      residual and witness (it neither vetoes an ISP or region nor exonerates one).
 *  W3. One healthy vote cannot veto several failing ones: a pool with exactly one
 *      healthy vote and two or more failing votes is failing (rule 2 otherwise).
 *  W4. In the DOWN vote (rule 3) an ISP counts only with at least half as many
 *      reporting nodes as the median ISP with traffic: one node claiming an
 *      ISP of its own cannot add a healthy (or failing) ISP to the count.
 */
import { DEFAULT_BOUNDS_MS, quantileOf } from "../../proto/histogram.js";
import { FaultScope, OriginState } from "../../proto/gen/originwatch/v1/query_pb.js";
import { type Counts, failuresOf, requestsOf, zeroCounts } from "./counts.js";
import type { VerdictThresholds } from "./settings.js";
import { significantlyAbove } from "./significance.js";

export { FaultScope, OriginState };

/** What one node saw of one origin over the lookback. */
export interface NodeInput {
  nodeId: string;
  isp: string;
  region: string;
  counts: Counts;
  /** TTFB bucket counts on DEFAULT_BOUNDS_MS (length bounds + 1); absent = none. */
  ttfb?: readonly number[];
  /** The node stopped reporting: left out of every figure. */
  stale?: boolean;
  /**
   * The node's newest windows, oldest first and newest last (fast path of
   * rule 1): requests and failures of each (zero once a window left the
   * lookback). A sidecar cuts a window at a fault's onset
   * (sidecar/recorder/onset.ts), so the newest part holds only the failures.
   */
  tail?: readonly { requests: number; failures: number }[];
  /**
   * How many windows of `tail` have failures, when the caller keeps the count
   * (the lookback does). 0 lets the policy skip reading the tail: with no
   * failure in it the fast path cannot apply. Absent: the tail is read.
   */
  tailFailing?: number;
  /** requestsOf(counts) and failuresOf(counts), when the caller keeps them (the lookback does): saves reading counts. */
  requests?: number;
  failures?: number;
}

/**
 * Rule 1, fast path: a node whose newest requests — its newest windows, until
 * they hold min_requests — fail at >= this ratio is judged on them alone, so a
 * hard fault is seen before older healthy windows leave the lookback. Set well
 * above fail_ratio; a partial failure that trips it by chance still has to
 * pass S1 against the peers before anything is blamed.
 */
export const FAST_FAIL_RATIO = 0.8;

/** What confirmation probes from other ISPs said about the origin. */
export type Confirmation = "origin-up" | "origin-down";

export interface PolicyInput {
  nodes: readonly NodeInput[];
  thresholds: VerdictThresholds;
  /** Result of probes for the current single-ISP doubt, if any came back. */
  confirmation?: Confirmation;
  /**
   * Sum of every node's ttfb buckets (stale ones included), when the caller
   * keeps it incrementally; saves a pass over all buckets of all nodes.
   */
  totalTtfb?: readonly number[];
  /**
   * Fill the per-node figures and the p95 of every ISP and region (default
   * true). The evaluation loop turns it off: the decision never needs them,
   * and GetOrigin asks again with it on.
   */
  breakdown?: boolean;
}

export interface ScopeFigures {
  key: string;
  requests: number;
  failures: number;
  failureRatio: number;
  p95TtfbMs: number;
  failing: boolean;
  /** For nodes: their labels; for ISPs the ISP, for regions the region. */
  isp: string;
  region: string;
}

export interface FaultFinding {
  scope: FaultScope;
  key: string;
  failureRatio: number;
  reason: string;
}

export interface Verdict {
  state: OriginState;
  faults: FaultFinding[];
  isps: ScopeFigures[];
  regions: ScopeFigures[];
  nodes: ScopeFigures[];
  /** Whole fleet (non-stale nodes) over the lookback. */
  requests: number;
  failures: number;
  failureRatio: number;
  p95TtfbMs: number;
  /** Faults but nothing healthy with traffic shows the origin answers (step 5). */
  doubt: boolean;
  /** In doubt and no probe has settled it. */
  needsConfirmation: boolean;
  /** DEGRADED (also) because of the latency bar, not only the failure ratio. */
  slow: boolean;
  /** The ISP in doubt (set with needsConfirmation, and when a confirmation was used). */
  suspectIsp: string;
  reason: string;
}

const NBUCKETS = DEFAULT_BOUNDS_MS.length + 1;

interface NodeJudgement {
  input: NodeInput;
  requests: number;
  failures: number;
  ratio: number;
  qualified: boolean;
  failing: boolean;
  /** W1: requests capped at the median node's. */
  weight: number;
  /** W1: failures scaled with the weight (failures * weight / requests). */
  wFailures: number;
  /** W1: weight / requests (1 when not capped); scales the TTFB samples. */
  scale: number;
  /** W2: false for a lone dissenter (left out of pools, residual and witness). */
  evidence: boolean;
  /**
   * S1's evidence: the node's whole lookback (not the fast path's newest
   * windows), W1-capped. Blame compares like with like — the scope's lookback
   * with its peers' lookback — so a node whose newest windows arrive before
   * its peers' (an onset cut) is not blamed for a failure its peers have not
   * reported yet.
   */
  sWeight: number;
  sFailures: number;
  /** Judged on its newest windows (the fast path): a suspect of its own, no peer in S1. */
  fast: boolean;
}

interface Pool {
  key: string;
  scope: FaultScope;
  /** Members that are evidence (W2). */
  members: NodeJudgement[];
  /** Raw figures (every member, for display). */
  requests: number;
  failures: number;
  /** Weighted figures of the evidence members (W1): what the decision uses. */
  weight: number;
  wFailures: number;
  /** S1's evidence of the evidence members (lookback, W1), and of those judged on the fast path. */
  sWeight: number;
  sFailures: number;
  fastSW: number;
  fastSF: number;
  ttfb: number[];
  hasTraffic: boolean;
  failing: boolean;
}

const ratio = (f: number, r: number): number => (r > 0 ? f / r : 0);
const pct = (x: number): string => `${Math.round(x * 1000) / 10}%`;

function addTtfb(into: number[], from: readonly number[] | undefined, scale = 1): void {
  if (!from) return;
  const n = Math.min(into.length, from.length);
  if (scale === 1) for (let i = 0; i < n; i++) into[i] += from[i];
  else for (let i = 0; i < n; i++) into[i] += from[i] * scale;
}

/**
 * W1: the lower median of the qualified nodes' requests (Infinity when none
 * qualifies): one node, however much it claims, then weighs no more than the
 * median node, and one node alone cannot move the median past its peers.
 */
export function weightCap(requests: readonly number[]): number {
  const n = requests.length;
  if (n === 0) return Infinity;
  if (capScratch.length < n) capScratch = new Float64Array(Math.max(n, capScratch.length * 2));
  const a = capScratch;
  for (let i = 0; i < n; i++) a[i] = requests[i];
  return selectKth(a, n, (n - 1) >> 1);
}

/** weightCap's copy of the requests, reused across calls (evaluate runs to completion: never reentered). */
let capScratch = new Float64Array(1024);

/**
 * The k-th smallest of a[0 .. n) (quickselect, reorders a): the value a sort
 * would put at index k, in linear time instead of a sort per evaluation.
 */
function selectKth(a: Float64Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const x = a[i];
        a[i] = a[j];
        a[j] = x;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

function p95(buckets: readonly number[] | undefined): number {
  return buckets ? quantileOf(DEFAULT_BOUNDS_MS, buckets, 0.95) : 0;
}

function ttfbCount(buckets: readonly number[] | undefined): number {
  if (!buckets) return 0;
  let n = 0;
  for (const c of buckets) n += c;
  return n;
}

/**
 * Step 2: a pool is failing only when nothing inside it is healthy — votes:
 * each qualified member is one, its low-traffic members pooled are one when
 * they reach min_requests. W3: a single healthy vote does not veto two or
 * more failing ones.
 */
function judgePool(p: Pool, t: VerdictThresholds): void {
  p.hasTraffic = p.weight >= t.minRequests;
  p.failing = p.hasTraffic && ratio(p.wFailures, p.weight) >= t.failRatio && votesFailing(p, t, (m) => m.failing, (f, r) => ratio(f, r) >= t.failRatio);
}

/**
 * The votes of step 2 (W3 included): `fails` says whether a qualified member
 * votes failing, `lowFails` whether its low-traffic members pooled do.
 */
function votesFailing(p: Pool, t: VerdictThresholds, fails: (m: NodeJudgement) => boolean, lowFails: (f: number, r: number, sf: number, sr: number) => boolean): boolean {
  let lowReq = 0;
  let lowFail = 0;
  let lowSR = 0;
  let lowSF = 0;
  let healthy = 0;
  let failing = 0;
  for (const m of p.members) {
    if (m.qualified) {
      if (fails(m)) failing++;
      else healthy++;
    } else {
      lowReq += m.weight;
      lowFail += m.wFailures;
      lowSR += m.sWeight;
      lowSF += m.sFailures;
    }
  }
  if (lowReq >= t.minRequests) {
    if (lowFails(lowFail, lowReq, lowSF, lowSR)) failing++;
    else healthy++;
  }
  return healthy === 0 || (healthy === 1 && failing >= 2);
}

function figures(p: Pool, detail: boolean): ScopeFigures {
  return {
    key: p.key,
    requests: p.requests,
    failures: p.failures,
    failureRatio: ratio(p.wFailures, p.weight),
    p95TtfbMs: detail ? p95(p.ttfb) : 0,
    failing: p.failing,
    isp: p.scope === FaultScope.ISP ? p.key : "",
    region: p.scope === FaultScope.REGION ? p.key : "",
  };
}

const NO_TTFB: number[] = [];

function pool(map: Map<string, Pool>, key: string, scope: FaultScope, n: NodeJudgement, detail: boolean): void {
  let p = map.get(key);
  if (!p) {
    p = { key, scope, members: [], requests: 0, failures: 0, weight: 0, wFailures: 0, sWeight: 0, sFailures: 0, fastSW: 0, fastSF: 0, ttfb: detail ? new Array<number>(NBUCKETS).fill(0) : NO_TTFB, hasTraffic: false, failing: false };
    map.set(key, p);
  }
  p.requests += n.requests;
  p.failures += n.failures;
  if (!n.evidence) return;
  if (n.requests > 0) p.members.push(n);
  p.weight += n.weight;
  p.wFailures += n.wFailures;
  p.sWeight += n.sWeight;
  p.sFailures += n.sFailures;
  if (n.fast) {
    p.fastSW += n.sWeight;
    p.fastSF += n.sFailures;
  }
  if (detail) addTtfb(p.ttfb, n.input.ttfb, n.scale);
}

const byKey = (a: { key: string }, b: { key: string }): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** True when every member of inner is a member of outer. */
function contains(outer: Pool, inner: Pool): boolean {
  if (inner.members.length > outer.members.length) return false;
  const set = new Set(outer.members);
  return inner.members.every((m) => set.has(m));
}

function scopeWord(s: FaultScope): string {
  return s === FaultScope.ISP ? "ISP" : s === FaultScope.REGION ? "region" : "node";
}

/**
 * NodeJudgements reused by every evaluate() (it runs to completion and is never reentered; no judgement
 * outlives the call: the verdict holds copies of their figures).
 */
const spareJudgements: NodeJudgement[] = [];
const EMPTY_INPUT: NodeInput = { nodeId: "", isp: "", region: "", counts: zeroCounts() };
const newJudgement = (): NodeJudgement => ({
  input: EMPTY_INPUT,
  requests: 0,
  failures: 0,
  ratio: 0,
  qualified: false,
  failing: false,
  weight: 0,
  wFailures: 0,
  scale: 1,
  evidence: true,
  sWeight: 0,
  sFailures: 0,
  fast: false,
});

export function evaluate(input: PolicyInput): Verdict {
  const t = input.thresholds;
  const detail = input.breakdown ?? true;
  // Step 1: nodes.
  const judged: NodeJudgement[] = [];
  const isps = new Map<string, Pool>();
  const regions = new Map<string, Pool>();
  let requests = 0;
  let failures = 0;
  const qualifiedRequests: number[] = [];
  let anyFast = false;
  let healthyQualified: NodeJudgement | undefined;
  let healthyCount = 0;
  let failingCount = 0;
  for (const input_ of input.nodes) {
    if (input_.stale) continue;
    const r0 = input_.requests ?? requestsOf(input_.counts);
    const f0 = input_.failures ?? failuresOf(input_.counts);
    let r = r0;
    let f = f0;
    let fast = false;
    // No failing window in the tail: no fast path (its failures would be 0), and no read of the tail's windows.
    if (input_.tailFailing !== 0 && input_.tail && input_.tail.length > 0) {
      let rr = 0;
      let rf = 0;
      for (let i = input_.tail.length - 1; i >= 0 && rr < t.minRequests; i--) {
        rr += input_.tail[i].requests;
        rf += input_.tail[i].failures;
      }
      if (rr >= t.minRequests && rf >= rr * Math.max(t.failRatio, FAST_FAIL_RATIO) && rf / rr > f / Math.max(r, 1)) {
        r = rr;
        f = rf;
        fast = true;
      }
    }
    const qualified = r >= t.minRequests;
    // Reused across evaluations (no object per node per origin per tick); every field is set here.
    const k = judged.length;
    const n = spareJudgements[k] ?? (spareJudgements[k] = newJudgement());
    n.input = input_;
    n.requests = r;
    n.failures = f;
    n.ratio = ratio(f, r);
    n.qualified = qualified;
    n.failing = false;
    n.weight = r;
    n.wFailures = f;
    n.scale = 1;
    n.evidence = true;
    n.sWeight = r0;
    n.sFailures = f0;
    n.fast = fast;
    anyFast ||= fast;
    n.failing = qualified && n.ratio >= t.failRatio;
    if (qualified) {
      qualifiedRequests.push(r);
      if (n.failing) failingCount++;
      else {
        healthyCount++;
        healthyQualified = n;
      }
    }
    judged.push(n);
    requests += r;
    failures += f;
  }
  // W1: no node weighs more than the median node. W2: a lone dissenter is not evidence.
  const cap = weightCap(qualifiedRequests);
  // S1's W1 cap is on the lookback; it differs from the judged one only when a node is on the fast path.
  const sCap = anyFast ? weightCap(judged.filter((n) => n.sWeight >= t.minRequests).map((n) => n.sWeight)) : cap;
  if (healthyCount === 1 && failingCount >= 2) healthyQualified!.evidence = false;
  let adjusted = false;
  let fleetW = 0;
  let fleetWF = 0;
  let fleetSW = 0;
  let fleetSF = 0;
  let fastSW = 0;
  let fastSF = 0;
  for (const n of judged) {
    if (n.sWeight > sCap) {
      n.sFailures *= sCap / n.sWeight;
      n.sWeight = sCap;
    }
    if (n.requests > cap) {
      n.weight = cap;
      n.scale = cap / n.requests;
      n.wFailures = n.failures * n.scale;
      adjusted = true;
    }
    if (!n.evidence) adjusted = true;
    else {
      fleetW += n.weight;
      fleetWF += n.wFailures;
      fleetSW += n.sWeight;
      fleetSF += n.sFailures;
      if (n.fast) {
        fastSW += n.sWeight;
        fastSF += n.sFailures;
      }
    }
    pool(isps, n.input.isp, FaultScope.ISP, n, detail);
    pool(regions, n.input.region, FaultScope.REGION, n, detail);
  }
  // The fleet's TTFB samples (scaled, evidence only): the caller's running sum when nothing was adjusted.
  let fleetTtfb: number[];
  const summed = !!input.totalTtfb && !adjusted;
  if (summed) {
    fleetTtfb = input.totalTtfb!.slice(0, NBUCKETS);
    for (const n of input.nodes) if (n.stale && n.ttfb) for (let i = 0; i < NBUCKETS; i++) fleetTtfb[i] -= n.ttfb[i] ?? 0;
  } else {
    fleetTtfb = new Array<number>(NBUCKETS).fill(0);
    for (const n of judged) if (n.evidence) addTtfb(fleetTtfb, n.input.ttfb, n.scale);
  }
  // Step 2: pools.
  for (const p of isps.values()) judgePool(p, t);
  for (const p of regions.values()) judgePool(p, t);

  const ispList = [...isps.values()].sort(byKey);
  const regionList = [...regions.values()].sort(byKey);
  const verdict: Verdict = {
    state: OriginState.HEALTHY,
    faults: [],
    isps: ispList.map((p) => figures(p, detail)),
    regions: regionList.map((p) => figures(p, detail)),
    nodes: (detail ? judged : [])
      .map((n) => ({
        key: n.input.nodeId,
        requests: n.requests,
        failures: n.failures,
        failureRatio: n.ratio,
        p95TtfbMs: p95(n.input.ttfb),
        failing: n.failing,
        isp: n.input.isp,
        region: n.input.region,
      }))
      .sort(byKey),
    requests,
    failures,
    failureRatio: ratio(fleetWF, fleetW),
    p95TtfbMs: p95(fleetTtfb),
    doubt: false,
    needsConfirmation: false,
    slow: false,
    suspectIsp: "",
    reason: "",
  };

  if (requests === 0) {
    verdict.state = OriginState.NO_DATA;
    verdict.reason = "no node reported traffic for this origin in the lookback";
    return verdict;
  }

  const withTraffic = ispList.filter((p) => p.hasTraffic);
  const failingIsps = ispList.filter((p) => p.failing);
  const failingRegions = regionList.filter((p) => p.failing);
  const failingNodes = judged.filter((n) => n.failing);

  // Step 3: DOWN, unless one failing region explains everything. W4: ISPs of fewer than half the
  // median ISP's reporting nodes do not vote (one node claiming an ISP of its own cannot outvote real ones).
  const medianSize = weightCap(withTraffic.map((p) => p.members.length));
  const votes = (p: Pool) => p.members.length * 2 >= medianSize;
  const votingIsps = withTraffic.filter(votes);
  const votingFailing = failingIsps.filter(votes);
  // D1: and the voting ISPs pooled fail at fail_ratio (a uniform 45 % in a small fleet is DEGRADED, not DOWN).
  let voteW = 0;
  let voteWF = 0;
  for (const p of votingIsps) {
    voteW += p.weight;
    voteWF += p.wFailures;
  }
  if (votingFailing.length >= 2 && votingFailing.length * 2 >= votingIsps.length && ratio(voteWF, voteW) >= t.failRatio) {
    const inFailingIsps = failingIsps.flatMap((p) => p.members);
    const region = failingRegions.find((r) => {
      const set = new Set(r.members);
      if (!inFailingIsps.every((m) => set.has(m)) || !failingNodes.every((m) => set.has(m))) return false;
      let outReq = 0;
      let outFail = 0;
      for (const n of judged) {
        if (set.has(n) || !n.evidence) continue;
        outReq += n.weight;
        outFail += n.wFailures;
      }
      return outReq >= t.minRequests && ratio(outFail, outReq) < t.failRatio;
    });
    if (!region) {
      verdict.state = OriginState.DOWN;
      const names = votingFailing.map((p) => p.key).join(", ");
      verdict.reason =
        `origin down: failing on ${votingFailing.length} of ${votingIsps.length} ISPs with traffic (${names}); ` +
        `${pct(verdict.failureRatio)} of ${requests} requests failed`;
      return verdict;
    }
  }

  // Step 4: smallest scopes that explain the failures, among those significantly worse than their peers (S1).
  // Peers = every evidence node outside the scope (outside `outer` when given).
  // Evidence is the lookback on both sides (sWeight, sFailures), whatever the fast path judged on. Peers are
  // the evidence nodes outside the scope (outside `outer` when given) except those judged on the fast path:
  // a node whose newest requests fail overwhelmingly is a suspect of its own, not a yardstick (two faults at once).
  const blamable = (sFailures: number, sWeight: number, fast: boolean, outer?: Pool) => {
    const outW = outer ? outer.sWeight - outer.fastSW : fast ? 0 : sWeight;
    const outF = outer ? outer.sFailures - outer.fastSF : fast ? 0 : sFailures;
    const peerW = fleetSW - fastSW - outW;
    const peerF = fleetSF - fastSF - outF;
    return peerW < t.minRequests || significantlyAbove(sFailures, sWeight, peerF, peerW);
  };
  // A group is blamed when it is worse than its peers AND its votes still fail when a member votes failing
  // only if it too is worse than the group's peers (one broken node cannot carry its ISP).
  const suspects = failingIsps.length + failingRegions.length + failingNodes.length > 0;
  const groups = [...failingIsps, ...failingRegions].filter(
    (g) =>
      blamable(g.sFailures, g.sWeight, false, g) &&
      votesFailing(g, t, (m) => m.failing && blamable(m.sFailures, m.sWeight, m.fast, g), (f, r, sf, sr) => ratio(f, r) >= t.failRatio && blamable(sf, sr, false, g)),
  );
  const reported: Pool[] = [];
  for (const g of groups) {
    // Contained in another failing scope: that one explains it. Equal sets: the ISP (listed first) wins.
    const covered = groups.some((o) => o !== g && contains(o, g) && (o.members.length > g.members.length || groups.indexOf(o) < groups.indexOf(g)));
    if (!covered) reported.push(g);
  }
  const coveredNodes = new Set<NodeJudgement>();
  for (const g of reported) {
    if (g.members.length === 1 && g.members[0].failing) continue; // one active node: that node explains it
    for (const m of g.members) coveredNodes.add(m);
    const active = g.members.length;
    verdict.faults.push({
      scope: g.scope,
      key: g.key,
      failureRatio: ratio(g.wFailures, g.weight),
      reason:
        `${scopeWord(g.scope)} ${g.key}: ${pct(ratio(g.wFailures, g.weight))} of ${g.requests} requests failed ` +
        `across all ${active} of its reporting nodes`,
    });
  }
  for (const n of failingNodes) {
    if (coveredNodes.has(n) || !blamable(n.sFailures, n.sWeight, n.fast)) continue;
    coveredNodes.add(n);
    verdict.faults.push({
      scope: FaultScope.NODE,
      key: n.input.nodeId,
      failureRatio: n.ratio,
      reason: `node ${n.input.nodeId} (${n.input.isp}, ${n.input.region}): ${pct(n.ratio)} of ${n.requests} requests failed while its peers are healthy`,
    });
  }

  // Residual: the rest of the fleet, not covered by a fault.
  let { resReq, resFail, resTtfb } = coveredNodes.size ? residual(judged, coveredNodes, fleetTtfb) : { resReq: fleetW, resFail: fleetWF, resTtfb: fleetTtfb };
  let resRatio = ratio(resFail, resReq);

  // Step 5: faults but no healthy witness (nothing shows the origin answers).
  const witness = resReq >= t.minRequests && resRatio < t.failRatio;
  // (Suspects not blamed by S1 count too: failures everywhere with no healthy witness is still a doubt.)
  if ((verdict.faults.length > 0 || suspects) && !witness) {
    const single = withTraffic.length === 1 && withTraffic[0].failing ? withTraffic[0] : undefined;
    verdict.doubt = true;
    verdict.suspectIsp = single?.key ?? "";
    if (input.confirmation === "origin-down") {
      verdict.state = OriginState.DOWN;
      verdict.faults = [];
      verdict.reason = single
        ? `origin down: ${single.key} is the only ISP with traffic and is failing (${pct(ratio(single.wFailures, single.weight))} of ${single.requests} requests), and confirmation probes from other ISPs failed too`
        : `origin down: ${pct(verdict.failureRatio)} of ${requests} requests failed with too little traffic per ISP to localise, and confirmation probes failed too`;
      return verdict;
    }
    if (input.confirmation === "origin-up") {
      for (const f of verdict.faults) f.reason += "; confirmation probes from other ISPs reached the origin";
    } else {
      verdict.needsConfirmation = true;
      if (!single) {
        // Not one ISP's doubt: failures everywhere with too little traffic per ISP to call DOWN.
        verdict.faults = [];
        coveredNodes.clear();
        ({ resReq, resFail, resTtfb } = { resReq: fleetW, resFail: fleetWF, resTtfb: fleetTtfb });
        resRatio = ratio(resFail, resReq);
      }
    }
  }

  // Step 6: DEGRADED over the rest of the fleet.
  const minFailures = Math.max(2, Math.ceil(t.minRequests / 2));
  const resP95 = p95(resTtfb);
  let ratioBad = resReq >= t.minRequests && resFail >= minFailures && resRatio > t.degradedFailRatio;
  let latencyBad = resP95 > t.degradedP95TtfbMs && ttfbCount(resTtfb) >= t.minRequests;
  if (ratioBad || latencyBad) {
    const byIsp = spans(judged, coveredNodes, t, (n) => n.isp);
    const byRegion = spans(judged, coveredNodes, t, (n) => n.region);
    ratioBad &&= byIsp.ratio && byRegion.ratio;
    latencyBad &&= byIsp.latency && byRegion.latency;
  }
  const faultWords = verdict.faults.map((f) => `${scopeWord(f.scope)} ${f.key}`).join(", ");
  const rest = verdict.faults.length ? "the rest of the fleet" : "the fleet";
  if (ratioBad || latencyBad) {
    verdict.state = OriginState.DEGRADED;
    verdict.slow = latencyBad;
    const why: string[] = [];
    if (ratioBad) why.push(`${pct(resRatio)} of ${resReq} requests failed (above ${pct(t.degradedFailRatio)})`);
    if (latencyBad) why.push(`p95 TTFB ${Math.round(resP95)} ms (above ${t.degradedP95TtfbMs} ms)`);
    verdict.reason = `origin degraded: on ${rest}, ${why.join(" and ")}` + (faultWords ? `; also failing: ${faultWords}` : "");
  } else if (verdict.faults.length) {
    verdict.state = OriginState.HEALTHY;
    const doubt = verdict.needsConfirmation ? " (unconfirmed: it is the only ISP with traffic; confirmation probes needed)" : "";
    verdict.reason =
      `origin answers; failures localised to ${faultWords}${doubt}` +
      (resReq > 0 ? `; ${rest} is healthy (${pct(resRatio)} of ${resReq} requests failed)` : "");
  } else {
    verdict.reason =
      `origin healthy: ${pct(verdict.failureRatio)} of ${requests} requests failed, p95 TTFB ${Math.round(verdict.p95TtfbMs)} ms` +
      (requests < t.minRequests ? " (too little traffic to judge)" : "");
  }
  return verdict;
}

/** The rest of the fleet (evidence nodes not covered by a fault), weighted (W1). */
function residual(judged: NodeJudgement[], covered: Set<NodeJudgement>, fleetTtfb: number[]): { resReq: number; resFail: number; resTtfb: number[] } {
  let resReq = 0;
  let resFail = 0;
  if (covered.size * 2 < judged.length) {
    // Fewer covered nodes than others: subtract them from the fleet's TTFB sums.
    const resTtfb = fleetTtfb.slice();
    for (const n of judged) {
      if (!n.evidence || covered.has(n)) continue;
      resReq += n.weight;
      resFail += n.wFailures;
    }
    for (const n of covered) {
      const t = n.input.ttfb;
      if (t) for (let i = 0; i < NBUCKETS; i++) resTtfb[i] -= (t[i] ?? 0) * n.scale;
    }
    return { resReq, resFail, resTtfb };
  }
  const resTtfb = new Array<number>(NBUCKETS).fill(0);
  for (const n of judged) {
    if (!n.evidence || covered.has(n)) continue;
    resReq += n.weight;
    resFail += n.wFailures;
    addTtfb(resTtfb, n.input.ttfb, n.scale);
  }
  return { resReq, resFail, resTtfb };
}

/**
 * Step 6, breadth: a failure ratio or a latency counts as the origin's only
 * when it spans ISPs (and regions) the way DOWN does: >= 2 and >= half of
 * those with traffic in the rest of the fleet, or there is at most one. One
 * bad ISP or region among good ones is its path (a fault ramping up, or the
 * tail of a lifted one), not the origin.
 */
function spans(
  judged: NodeJudgement[],
  covered: Set<NodeJudgement>,
  t: VerdictThresholds,
  label: (n: NodeInput) => string,
): { ratio: boolean; latency: boolean } {
  const byIsp = new Map<string, { req: number; fail: number; ttfb: number[] }>();
  for (const n of judged) {
    if (covered.has(n) || !n.evidence) continue;
    const key = label(n.input);
    let s = byIsp.get(key);
    if (!s) byIsp.set(key, (s = { req: 0, fail: 0, ttfb: new Array<number>(NBUCKETS).fill(0) }));
    s.req += n.weight;
    s.fail += n.wFailures;
    addTtfb(s.ttfb, n.input.ttfb, n.scale);
  }
  let withTraffic = 0;
  let failing = 0;
  let withSamples = 0;
  let slow = 0;
  for (const s of byIsp.values()) {
    if (s.req >= t.minRequests) {
      withTraffic++;
      if (ratio(s.fail, s.req) > t.degradedFailRatio) failing++;
    }
    if (ttfbCount(s.ttfb) >= t.minRequests) {
      withSamples++;
      if (p95(s.ttfb) > t.degradedP95TtfbMs) slow++;
    }
  }
  const broad = (bad: number, n: number) => n <= 1 || (bad >= 2 && bad * 2 >= n);
  return { ratio: broad(failing, withTraffic), latency: broad(slow, withSamples) };
}
