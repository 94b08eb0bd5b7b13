/**
 * Which central a stream opens next, with a backoff per address.
 *
 * Spread: among the endpoints in good standing, each node prefers the one with
 * the highest rendezvous hash of (node id, endpoint) — stable for a node, even
 * over a fleet, and when one replica goes away only its own nodes move, evenly
 * over the rest. Equal scores (practically never) are broken at random.
 *
 * Failure: an endpoint whose stream failed gets its own gRPC-shaped backoff
 * (client.ts BACKOFF: 1 s, ×1.6, ±20 % jitter, capped) and is tried last while
 * it failed recently; a Welcome resets it. When every endpoint is waiting, the
 * one that is ready first is next. With one endpoint this is exactly the
 * single-central backoff.
 *
 * Pure: no I/O, no timers; `now` and `random` come from the caller.
 */
import { createHash } from "node:crypto";
import { BACKOFF, backoffStep } from "./backoff.js";

export interface PickerEndpoint {
  readonly key: string;
}

interface Standing {
  /** Base of the next backoff step. */
  baseMs: number;
  /** Not to be tried before this (ms, caller's clock). */
  retryAt: number;
  /** Last failure (ms; -Infinity when never). */
  failedAt: number;
}

/** The next endpoint and how long to wait before opening it. */
export interface Pick<E> {
  endpoint: E;
  waitMs: number;
}

export interface EndpointPickerOptions {
  nodeId: string;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** A failure this recent puts an endpoint behind every endpoint that did not fail (default maxBackoffMs). */
  recentMs?: number;
}

/** Rendezvous (highest random weight) score of an endpoint for a node: 48 bits of sha-1. */
export function rendezvousScore(nodeId: string, key: string): number {
  return createHash("sha1").update(nodeId).update("\0").update(key).digest().readUIntBE(0, 6);
}

export class EndpointPicker<E extends PickerEndpoint> {
  private readonly standing = new Map<string, Standing>();
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly recentMs: number;

  constructor(private readonly opts: EndpointPickerOptions) {
    this.initialMs = opts.initialBackoffMs ?? BACKOFF.initialMs;
    this.maxMs = opts.maxBackoffMs ?? BACKOFF.maxMs;
    this.recentMs = opts.recentMs ?? this.maxMs;
  }

  private of(key: string): Standing {
    let s = this.standing.get(key);
    if (!s) {
      s = { baseMs: this.initialMs, retryAt: -Infinity, failedAt: -Infinity };
      this.standing.set(key, s);
    }
    return s;
  }

  /**
   * The endpoint to open next among `endpoints` (undefined when empty):
   * 1. ready and not failed recently, by rendezvous score;
   * 2. ready but failed recently, the longest ago first;
   * 3. else the one whose backoff ends first, after that wait.
   */
  pick(endpoints: readonly E[], now: number, random: () => number = Math.random): Pick<E> | undefined {
    if (endpoints.length === 0) return undefined;
    const ranked = endpoints.map((e) => {
      const s = this.of(e.key);
      const tier = s.retryAt > now ? 2 : now - s.failedAt < this.recentMs ? 1 : 0;
      return { e, s, tier, score: rendezvousScore(this.opts.nodeId, e.key), tie: random() };
    });
    ranked.sort((a, b) => a.tier - b.tier || (a.tier === 0 ? b.score - a.score || a.tie - b.tie : a.tier === 1 ? a.s.failedAt - b.s.failedAt : a.s.retryAt - b.s.retryAt));
    const best = ranked[0];
    return { endpoint: best.e, waitMs: Math.max(0, best.s.retryAt - now) };
  }

  /** The stream to `key` failed at `now`: its next try waits one backoff step (the maximum for a refused Hello). */
  failed(key: string, now: number, opts: { refused?: boolean; random?: number } = {}): number {
    const s = this.of(key);
    if (opts.refused) s.baseMs = this.maxMs;
    const { waitMs, nextBaseMs } = backoffStep(s.baseMs, this.maxMs, opts.random);
    s.baseMs = nextBaseMs;
    s.retryAt = now + waitMs;
    s.failedAt = now;
    return waitMs;
  }

  /** `key` welcomed a stream: its backoff starts over. */
  succeeded(key: string): void {
    const s = this.of(key);
    s.baseMs = this.initialMs;
    s.retryAt = -Infinity;
  }

  /** Forget endpoints no longer resolved (bounded by what DNS returns). */
  retain(keys: Iterable<string>): void {
    const keep = new Set(keys);
    for (const k of this.standing.keys()) if (!keep.has(k)) this.standing.delete(k);
  }
}
