/**
 * Idle origins and nodes age out (issue 10 item 3): an origin with no batch
 * for `originIdleMs` and no window in the verdict's lookback, and a node with no session and
 * no batch for `nodeIdleMs`, are forgotten the way ForgetOrigin / ForgetNode
 * forget them (forget.ts). 0 turns either off. The central sweeps every few
 * minutes (AGE_OUT_SWEEP_MS) and once at start, so records left by a crowd of
 * junk origins do not outlive their idle time across restarts.
 */
import type { Ingest } from "../ingest/ingest-service.js";
import type { VerdictView } from "./verdict-view.js";
import type { NodeRecord, OriginTotals } from "../store/level-store.js";
import type { Forgetter } from "./forget.js";
import { type NodePresence, localPresence } from "./node-presence.js";

export const AGE_OUT_SWEEP_MS = 10 * 60_000;

export interface AgeOutOptions {
  /** An origin idle this long is forgotten (0 = never). */
  originIdleMs: number;
  /** A disconnected node idle this long is forgotten (0 = never). */
  nodeIdleMs: number;
}

export interface AgeOutDeps {
  totals: Map<string, OriginTotals>;
  nodes: Map<string, NodeRecord>;
  verdict: Pick<VerdictView, "isLive">;
  ingest: Ingest;
  /** Where nodes are connected (default: this central's sessions; cluster mode: any replica's). */
  presence?: NodePresence;
  forget: Forgetter;
}

export interface AgedOut {
  origins: string[];
  nodes: string[];
}

/** One sweep at nowMs: what it forgot. */
export async function ageOut(deps: AgeOutDeps, o: AgeOutOptions, nowMs = Date.now()): Promise<AgedOut> {
  const out: AgedOut = { origins: [], nodes: [] };
  if (o.originIdleMs > 0) {
    const cutoff = nowMs - o.originIdleMs;
    for (const [name, t] of deps.totals) {
      if (t.lastSeenMs < cutoff && !deps.verdict.isLive(name)) out.origins.push(name);
    }
    for (const name of out.origins) await deps.forget.origin(name, `idle since ${new Date(deps.totals.get(name)?.lastSeenMs ?? 0).toISOString()} (age-out)`);
  }
  if (o.nodeIdleMs > 0) {
    const cutoff = nowMs - o.nodeIdleMs;
    const presence = deps.presence ?? localPresence(deps.ingest);
    for (const [id, n] of deps.nodes) if (n.lastSeenMs < cutoff && !presence.isConnected(id)) out.nodes.push(id);
    for (const id of out.nodes) await deps.forget.node(id);
  }
  return out;
}
