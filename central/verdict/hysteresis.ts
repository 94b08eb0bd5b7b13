/**
 * The incident state machine: pure, one Track per (origin, incident subject).
 * An origin track covers ORIGIN_DOWN and ORIGIN_DEGRADED as one incident (a
 * DEGRADED incident that turns DOWN is the same incident, escalated), so a
 * flapping origin yields one incident. A network track covers one ISP, region
 * or node fault, keyed by scope key.
 *
 * Contract (DESIGN.md §5, issue 4 step 3):
 *  - an incident opens after open_after consecutive bad evaluations;
 *  - it closes after close_after consecutive good ones;
 *  - if it would open again within flap_window_ms of closing, the closed
 *    incident reopens instead: same id and dedupe key, flapping = true,
 *    reopen_count + 1;
 *  - "hold" (e.g. confirmation probes under way) changes nothing.
 */
import { IncidentKind } from "../../proto/gen/originwatch/v1/query_pb.js";
import type { HysteresisSettings } from "./settings.js";

export { IncidentKind };

export interface IncidentRecord {
  id: string;
  kind: IncidentKind;
  origin: string;
  /** ISP, region or node key for network incidents; "" for origin incidents. */
  scopeKey: string;
  openedMs: number;
  /** 0 while open. */
  closedMs: number;
  open: boolean;
  flapping: boolean;
  reopenCount: number;
  peakFailureRatio: number;
  peakP95TtfbMs: number;
  /** Stable across retries and reopenings. */
  dedupeKey: string;
  summary: string;
}

export interface Track {
  origin: string;
  /** "" for the origin track; otherwise "isp:KEY", "region:KEY", "node:KEY". */
  subject: string;
  badStreak: number;
  goodStreak: number;
  /** The open incident, or the last closed one (kept for the flap window). */
  incident?: IncidentRecord;
}

export type Observation =
  | { bad: true; kind: IncidentKind; failureRatio: number; p95TtfbMs: number; summary: string }
  | { bad: false }
  | "hold";

export type Transition = "opened" | "reopened" | "escalated" | "closed";

export interface StepResult {
  track: Track;
  transition?: Transition;
}

/** Higher is worse; the origin incident keeps the worst kind it has seen. */
const SEVERITY: Partial<Record<IncidentKind, number>> = {
  [IncidentKind.ORIGIN_DEGRADED]: 1,
  [IncidentKind.ORIGIN_DOWN]: 2,
};

export function newTrack(origin: string, subject = ""): Track {
  return { origin, subject, badStreak: 0, goodStreak: 0 };
}

/** Subject of a network track. */
export function subjectOf(kind: IncidentKind, key: string): string {
  const word = kind === IncidentKind.ISP_FAULT ? "isp" : kind === IncidentKind.REGION_FAULT ? "region" : "node";
  return `${word}:${key}`;
}

function hash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(36);
}

/** Incident ids sort by open time; unique per (origin, subject, open time). */
export function incidentId(origin: string, subject: string, openedMs: number): string {
  return `${openedMs.toString(36).padStart(9, "0")}-${hash(`${origin}\u0000${subject}`)}`;
}

/** A track is finished with: nothing open, no streak, and outside the flap window. */
export function isIdle(t: Track, nowMs: number, s: HysteresisSettings): boolean {
  if (t.badStreak > 0) return false;
  if (!t.incident) return true;
  return !t.incident.open && nowMs - t.incident.closedMs > s.flapWindowMs;
}

/** One evaluation. Pure: returns a new track (the input is not modified). */
export function step(track: Track, obs: Observation, nowMs: number, s: HysteresisSettings): StepResult {
  if (obs === "hold") return { track };
  const t: Track = { ...track, incident: track.incident ? { ...track.incident } : undefined };
  const inc = t.incident;
  if (!obs.bad) {
    t.badStreak = 0;
    t.goodStreak++;
    if (inc?.open && t.goodStreak >= s.closeAfter) {
      inc.open = false;
      inc.closedMs = nowMs;
      return { track: t, transition: "closed" };
    }
    return { track: t };
  }
  t.goodStreak = 0;
  t.badStreak++;
  if (inc?.open) {
    inc.peakFailureRatio = Math.max(inc.peakFailureRatio, obs.failureRatio);
    inc.peakP95TtfbMs = Math.max(inc.peakP95TtfbMs, obs.p95TtfbMs);
    if ((SEVERITY[obs.kind] ?? 0) > (SEVERITY[inc.kind] ?? 0)) {
      inc.kind = obs.kind;
      inc.summary = obs.summary;
      return { track: t, transition: "escalated" };
    }
    return { track: t };
  }
  if (t.badStreak < s.openAfter) return { track: t };
  if (inc && !inc.open && nowMs - inc.closedMs <= s.flapWindowMs) {
    inc.open = true;
    inc.closedMs = 0;
    inc.flapping = true;
    inc.reopenCount++;
    if ((SEVERITY[obs.kind] ?? 0) > (SEVERITY[inc.kind] ?? 0)) inc.kind = obs.kind;
    inc.peakFailureRatio = Math.max(inc.peakFailureRatio, obs.failureRatio);
    inc.peakP95TtfbMs = Math.max(inc.peakP95TtfbMs, obs.p95TtfbMs);
    inc.summary = obs.summary;
    return { track: t, transition: "reopened" };
  }
  const id = incidentId(t.origin, t.subject, nowMs);
  t.incident = {
    id,
    kind: obs.kind,
    origin: t.origin,
    scopeKey: t.subject.slice(t.subject.indexOf(":") + 1),
    openedMs: nowMs,
    closedMs: 0,
    open: true,
    flapping: false,
    reopenCount: 0,
    peakFailureRatio: obs.failureRatio,
    peakP95TtfbMs: obs.p95TtfbMs,
    dedupeKey: `${t.origin}/${t.subject || "origin"}/${id}`,
    summary: obs.summary,
  };
  return { track: t, transition: "opened" };
}
