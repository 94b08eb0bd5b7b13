/**
 * Confirmation probes on doubt (issue 4 step 2): when the policy cannot tell
 * a down origin from the one failing ISP (nothing else with traffic proves
 * the origin answers), ask up to max_sidecars sidecars on OTHER ISPs that
 * route to the origin for a few probe requests, and turn their answers into
 * "origin-up" or "origin-down". At most one round per origin per
 * min_interval_ms: the one place we send synthetic load, and only on doubt.
 */
import { Outcome } from "../../proto/gen/originwatch/v1/common_pb.js";
import type { Confirmation } from "./policy.js";
import type { NodeAnswer, ProbeBroker, ProbeTarget } from "./probe-broker.js";
import type { ProbeOptions } from "./settings.js";

/** Outcomes that mean the probe reached an answering origin. */
const REACHED = new Set([Outcome.OK, Outcome.CLIENT_ERROR]);

/**
 * The verdict of one round: a sidecar reached the origin when most of its
 * attempts got an answer (2xx-4xx); the origin is up when most sidecars that
 * answered reached it. undefined when no sidecar answered at all.
 */
export function judgeAnswers(answers: NodeAnswer[]): Confirmation | undefined {
  let reached = 0;
  let failed = 0;
  for (const a of answers) {
    if (a.attempts.length === 0) continue;
    const ok = a.attempts.filter((x) => REACHED.has(x.outcome)).length;
    if (ok * 2 > a.attempts.length) reached++;
    else failed++;
  }
  if (reached + failed === 0) return undefined;
  return reached >= failed ? "origin-up" : "origin-down";
}

/** Up to n targets, spread over ISPs (one per ISP first), never on the suspect ISP. */
export function pickTargets(candidates: ProbeTarget[], suspectIsp: string, n: number): ProbeTarget[] {
  const byIsp = new Map<string, ProbeTarget[]>();
  for (const c of [...candidates].sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1))) {
    if (suspectIsp && c.isp === suspectIsp) continue;
    let l = byIsp.get(c.isp);
    if (!l) byIsp.set(c.isp, (l = []));
    l.push(c);
  }
  const out: ProbeTarget[] = [];
  const lists = [...byIsp.values()];
  for (let i = 0; out.length < n; i++) {
    let any = false;
    for (const l of lists) {
      if (i < l.length && out.length < n) {
        out.push(l[i]);
        any = true;
      }
    }
    if (!any) break;
  }
  return out;
}

export type RequestOutcome = "started" | "pending" | "rate-limited" | "unavailable" | "disabled";

interface OriginState {
  lastRoundMs: number;
  pending: boolean;
  result?: Confirmation;
  resultMs: number;
}

export class Confirmer {
  private state = new Map<string, OriginState>();
  /** Every finished round, for logs and tests. */
  onRound?: (origin: string, answers: NodeAnswer[], result: Confirmation | undefined) => void;

  constructor(private broker: ProbeBroker, private now: () => number = Date.now) {}

  /** The settled answer for the origin's current doubt, if any. */
  confirmation(origin: string): Confirmation | undefined {
    return this.state.get(origin)?.result;
  }

  pending(origin: string): boolean {
    return this.state.get(origin)?.pending ?? false;
  }

  /**
   * Start a round unless one is under way or the origin was probed less than
   * min_interval_ms ago. A settled result stays in force until clear().
   */
  request(origin: string, suspectIsp: string, opts: ProbeOptions, candidates: ProbeTarget[]): RequestOutcome {
    if (!opts.enabled) return "disabled";
    let s = this.state.get(origin);
    if (!s) this.state.set(origin, (s = { lastRoundMs: Number.NEGATIVE_INFINITY, pending: false, resultMs: 0 }));
    if (s.pending) return "pending";
    const now = this.now();
    if (now - s.lastRoundMs < opts.minIntervalMs) return "rate-limited";
    const targets = pickTargets(candidates, suspectIsp, opts.maxSidecars);
    if (targets.length === 0) return "unavailable";
    s.pending = true;
    s.lastRoundMs = now;
    const st = s;
    void this.broker
      .round(targets, { origin, method: opts.method, path: opts.path, count: opts.count, timeoutMs: opts.timeoutMs })
      .then((answers) => {
        st.pending = false;
        const result = judgeAnswers(answers);
        if (result) {
          st.result = result;
          st.resultMs = this.now();
        }
        this.onRound?.(origin, answers, result);
      });
    return "started";
  }

  /** The doubt is over: forget the answer (the rate limit stays). */
  clear(origin: string): void {
    const s = this.state.get(origin);
    if (s) s.result = undefined;
  }
}
