/**
 * What an ended ingest stream means, in one table (DESIGN.md §6: permanent vs
 * transient). Pure: the client (client.ts) acts on the answer — reconnect and
 * replay, back off to the maximum, split under a learned limit, or suspect the
 * head batch. Anything not in the table is transient: when in doubt, replay.
 */
import { status } from "@grpc/grpc-js";
import { learnMaxMessageBytes } from "./limits.js";

export type StreamEnd =
  /** Reconnect with backoff and replay what is unacknowledged. */
  | "transient"
  /** The central refuses this sidecar's Hello: fix the configuration; retry at the maximum backoff. */
  | "config_error"
  /** A message was over the central's read limit: split under `learnedMaxBytes` at the next Welcome. */
  | "too_large"
  /** The central (one without BatchReject) refused something sent after Welcome: suspect the head batch. */
  | "batch_refused";

export interface EndedStream {
  /** gRPC status code; undefined for a local ending (no Welcome, no acks, a plain end). */
  code?: number;
  details?: string;
  /** Whether a Welcome arrived on the stream. */
  welcomed: boolean;
  /** Encoded sizes of the batches written on it and not acknowledged. */
  sentSizes: readonly number[];
  /** The message limit in force. */
  maxMessageBytes: number;
}

export interface EndRule {
  codes: readonly number[];
  when: string;
  kind: StreamEnd;
}

/** The rules in order; the first that applies wins. */
export const STREAM_END_RULES: readonly EndRule[] = [
  {
    codes: [status.INVALID_ARGUMENT, status.UNAUTHENTICATED, status.PERMISSION_DENIED, status.RESOURCE_EXHAUSTED],
    when: "before Welcome (the Hello is refused: labels, identity, more origins or nodes than the central keeps)",
    kind: "config_error",
  },
  { codes: [status.RESOURCE_EXHAUSTED], when: "the details say a message this sidecar sent was too large", kind: "too_large" },
  { codes: [status.INVALID_ARGUMENT], when: "after Welcome, with batches sent and unacknowledged", kind: "batch_refused" },
  { codes: [status.UNAVAILABLE, status.INTERNAL, status.CANCELLED, status.DEADLINE_EXCEEDED], when: "always (and every other status)", kind: "transient" },
];

export function classifyEnd(s: EndedStream): { kind: StreamEnd; learnedMaxBytes?: number } {
  const code = s.code;
  if (code === undefined) return { kind: "transient" };
  if (!s.welcomed && STREAM_END_RULES[0].codes.includes(code)) return { kind: "config_error" };
  if (code === status.RESOURCE_EXHAUSTED) {
    const learned = learnMaxMessageBytes(s.details ?? "", s.sentSizes, s.maxMessageBytes);
    return learned === undefined ? { kind: "transient" } : { kind: "too_large", learnedMaxBytes: learned };
  }
  if (code === status.INVALID_ARGUMENT && s.welcomed && s.sentSizes.length > 0) return { kind: "batch_refused" };
  return { kind: "transient" };
}
