/**
 * What the central accepts on one ingest stream, as this sidecar knows it.
 *
 * Until a Welcome states limits (`Welcome.limits`, IngestLimits), the sidecar
 * assumes DEFAULT_INGEST_LIMITS; a Welcome's non-zero fields replace them (a
 * zero field means "not stated" and leaves the default). A stream that ends
 * with RESOURCE_EXHAUSTED because a message was too large lowers the message
 * limit further for the life of the process (`learnMaxMessageBytes`): the
 * central's real limit is then known to be smaller than the one assumed.
 * The sidecar never sends a batch over these limits (batch-split.ts).
 */
import type { IngestLimits } from "../../proto/gen/originwatch/v1/ingest_pb.js";

export interface StreamLimits {
  /** Largest encoded SidecarMessage the central reads. */
  maxMessageBytes: number;
  maxWindowsPerBatch: number;
  maxExemplarsPerBatch: number;
  /** Distinct origins one node may declare and report on. */
  maxOriginsPerNode: number;
}

/** The central's limits assumed until a Welcome says otherwise. */
export const DEFAULT_INGEST_LIMITS: Readonly<StreamLimits> = Object.freeze({
  maxMessageBytes: 1 << 20,
  maxWindowsPerBatch: 2000,
  maxExemplarsPerBatch: 1000,
  maxOriginsPerNode: 1000,
});

/** No limit is taken below this: a central that claims less is misconfigured, and a window must still fit. */
export const MIN_MESSAGE_BYTES = 1024;

/** The limits in force after a Welcome: its stated fields over the defaults, never above a learned message cap. */
export function limitsFromWelcome(stated: IngestLimits | undefined, learnedMaxBytes = Number.POSITIVE_INFINITY): StreamLimits {
  const pick = (v: number | undefined, def: number) => (v !== undefined && v > 0 ? v : def);
  return {
    maxMessageBytes: Math.max(MIN_MESSAGE_BYTES, Math.min(pick(stated?.maxMessageBytes, DEFAULT_INGEST_LIMITS.maxMessageBytes), learnedMaxBytes)),
    maxWindowsPerBatch: pick(stated?.maxWindowsPerBatch, DEFAULT_INGEST_LIMITS.maxWindowsPerBatch),
    maxExemplarsPerBatch: pick(stated?.maxExemplarsPerBatch, DEFAULT_INGEST_LIMITS.maxExemplarsPerBatch),
    maxOriginsPerNode: pick(stated?.maxOriginsPerNode, DEFAULT_INGEST_LIMITS.maxOriginsPerNode),
  };
}

/** Status details that say "the message was too large" (connect-node's readMaxBytes, grpc-js's receive limit). */
const TOO_LARGE = /larger than|too large|message size/i;

/**
 * The message cap to assume after a stream ended with RESOURCE_EXHAUSTED, or
 * undefined when the status was not about a message this sidecar sent (then it
 * is transient). `sentSizes`: encoded sizes of the batches written and not
 * acknowledged on that stream (the central stopped at one of them).
 * connect-node says "message size N is larger than configured readMaxBytes M",
 * grpc-js "Received message larger than max (N vs M)" — the same words grpc-js
 * uses for a message the central sent us, so N must be one of ours. The cap is
 * M when stated, else half the largest suspect.
 */
export function learnMaxMessageBytes(details: string, sentSizes: readonly number[], current: number): number | undefined {
  if (!TOO_LARGE.test(details) || sentSizes.length === 0) return undefined;
  const size = /message size (\d+)|larger than max \((\d+)/.exec(details);
  const n = size ? Number(size[1] ?? size[2]) : undefined;
  // A few bytes of slack: a server may count the 5-byte gRPC frame header.
  if (n !== undefined && !sentSizes.some((s) => Math.abs(s - n) <= 8)) return undefined;
  const largest = Math.max(...sentSizes);
  const max = /readMaxBytes (\d+)|vs\.? (\d+)\)/.exec(details);
  const cap = max ? Number(max[1] ?? max[2]) : Math.floor(largest / 2);
  return Math.max(MIN_MESSAGE_BYTES, Math.min(current, cap, largest - 1));
}
