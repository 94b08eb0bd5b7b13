/**
 * The probes sent on one session, so that a node can only answer a probe that
 * was sent to it: a ProbeResult must name a probe_id issued on this session
 * and not yet answered or expired, for the same origin, with no more attempts
 * than were asked for, each attempt a known outcome with a plausible status
 * and TTFB. Anything else is refused (the caller counts it); a late answer
 * after its round timed out is refused the same way, harmlessly.
 *
 * Bounded: at most MAX_OUTSTANDING probes per session (the oldest is forgotten
 * first), each forgotten timeout + GRACE_MS after it was sent.
 */
import type { ProbeResult } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import type { Refusal } from "./validate.js";

const MAX_OUTSTANDING = 256;
const GRACE_MS = 5_000;
const MAX_OUTCOME = 12;
/** A TTFB beyond an hour is not a probe measurement. */
const MAX_TTFB_MS = 3_600_000;

interface Issued {
  origin: string;
  count: number;
  expiresMs: number;
}

export interface ProbeRequestFields {
  probeId?: string;
  origin?: string;
  count?: number;
  timeoutMs?: number;
}

export class IssuedProbes {
  private issued = new Map<string, Issued>();

  /** A ProbeRequest is being sent on this session. */
  issue(req: ProbeRequestFields, nowMs: number): void {
    if (!req.probeId) return;
    this.expire(nowMs);
    if (this.issued.size >= MAX_OUTSTANDING) this.issued.delete(this.issued.keys().next().value as string);
    this.issued.set(req.probeId, { origin: req.origin ?? "", count: Math.max(1, req.count ?? 1), expiresMs: nowMs + (req.timeoutMs ?? 0) + GRACE_MS });
  }

  /** Why the result is refused, or undefined (and the probe is marked answered). */
  check(r: ProbeResult, nowMs: number): Refusal | undefined {
    this.expire(nowMs);
    const refuse = (reason: string): Refusal => ({ code: "CENTRAL_PROBE_REFUSED", reason });
    const p = this.issued.get(r.probeId);
    if (!p) return refuse(`probe_result.probe_id ${JSON.stringify(r.probeId.slice(0, 64))} was not sent to this node (or was already answered, or expired)`);
    if (r.origin !== p.origin) return refuse(`probe_result.origin ${JSON.stringify(r.origin.slice(0, 64))} is not the origin probe ${r.probeId} asked about`);
    if (r.attempts.length > p.count) return refuse(`probe_result.attempts has ${r.attempts.length} entries, more than the ${p.count} asked for`);
    for (let i = 0; i < r.attempts.length; i++) {
      const a = r.attempts[i];
      if (a.outcome <= 0 || a.outcome > MAX_OUTCOME) return refuse(`probe_result.attempts[${i}].outcome ${a.outcome} is not a known Outcome`);
      if (a.status > 999) return refuse(`probe_result.attempts[${i}].status must be at most 999, got ${a.status}`);
      if (!Number.isFinite(a.ttfbMs) || a.ttfbMs < 0 || a.ttfbMs > MAX_TTFB_MS) return refuse(`probe_result.attempts[${i}].ttfb_ms must be in 0..${MAX_TTFB_MS}`);
    }
    this.issued.delete(r.probeId);
    return undefined;
  }

  private expire(nowMs: number): void {
    for (const [id, p] of this.issued) if (p.expiresMs < nowMs) this.issued.delete(id);
  }

  get size(): number {
    return this.issued.size;
  }
}
