/**
 * What the counts of a window mean, in one place: which outcome classes are
 * completed requests and which are the origin's (or the path's) failures.
 * DESIGN.md §5: failures = 5xx, connection-level errors, first-byte timeouts,
 * body errors, body timeouts and unresolved stalls; 4xx, client aborts, pool
 * exhaustion (the sidecar's own socket pool was full) and accepted upgrades
 * are requests but not failures.
 */
import type { OutcomeCounts } from "./gen/originwatch/v1/common_pb.js";

/** Requests that completed in the window (every outcome class, stalls excluded). */
export function completedOf(c: OutcomeCounts): bigint {
  return (
    c.ok + c.clientError + c.serverError + c.connectRefused + c.connectTimeout + c.dns + c.tls + c.reset +
    c.firstByteTimeout + c.bodyError + c.clientAbort + c.bodyTimeout + c.poolExhausted + c.upgrade
  );
}

/** Completed requests that failed because of the origin or the path to it (stalls excluded). */
export function completedFailuresOf(c: OutcomeCounts): bigint {
  return (
    c.serverError + c.connectRefused + c.connectTimeout + c.dns + c.tls + c.reset + c.firstByteTimeout + c.bodyError +
    c.bodyTimeout
  );
}
