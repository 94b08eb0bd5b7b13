/**
 * The reconnect backoff of the stream to a central: the gRPC connection-backoff
 * shape (grpc/doc/connection-backoff.md), kept per central address
 * (endpoint-picker.ts).
 */

/** 1 s, ×1.6, ±20 % jitter, capped at 30 s. */
export const BACKOFF = Object.freeze({ initialMs: 1000, multiplier: 1.6, jitter: 0.2, maxMs: 30_000 });

/** The wait before the next attempt and the base for the one after; random in [0, 1). */
export function backoffStep(baseMs: number, maxMs: number, random = Math.random()): { waitMs: number; nextBaseMs: number } {
  const waitMs = Math.round(baseMs * (1 - BACKOFF.jitter + 2 * BACKOFF.jitter * random));
  return { waitMs, nextBaseMs: Math.min(baseMs * BACKOFF.multiplier, maxMs) };
}
