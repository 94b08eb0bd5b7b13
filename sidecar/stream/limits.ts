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
const TOO_LARGE = /larger than|too large|message size|exceeds? .*(?:bytes|size)/i;

/**
 * The message cap to assume after a stream ended with RESOURCE_EXHAUSTED, or
 * undefined when the status was not about message size (then it is transient).
 * `largestSentBytes`: the largest batch sent and not acknowledged on that
 * stream (the culprit is at most that large). Uses the central's stated
 * readMaxBytes when the details carry it, else half the largest suspect.
 */
export function learnMaxMessageBytes(details: string, largestSentBytes: number, current: number): number | undefined {
  // grpc-js's own receive limit ("Received message larger than max") is about what the central sent us.
  if (!TOO_LARGE.test(details) || /^Received message/i.test(details) || largestSentBytes <= 0) return undefined;
  const stated = /readMaxBytes (\d+)|larger than (\d+)/.exec(details);
  const n = stated ? Number(stated[1] ?? stated[2]) : Math.floor(largestSentBytes / 2);
  return Math.max(MIN_MESSAGE_BYTES, Math.min(current, n, largestSentBytes - 1));
}
