/**
 * The one place where Node errors and HTTP statuses become outcome classes.
 * Every row of OUTCOME_TABLE has a socket-level test in outcome.test.ts /
 * hop.test.ts; the verdict engine is only as good as this table.
 */

/** The vocabulary (classes, their contract enum, what is a failure) is proto/outcomes.ts's. */
export { OUTCOME_CLASSES, OUTCOME_ENUM, type OutcomeClass, isFailure } from "../../proto/outcomes.js";
import type { OutcomeClass } from "../../proto/outcomes.js";

/** Response header naming the outcome class of a failure the sidecar answered itself. */
export const OUTCOME_HEADER = "x-originwatch-outcome";

/** Where a request was when it failed. */
export type Phase =
  /** waiting for a free socket from the origin's bounded pool */
  | "queue"
  /** waiting for TCP connect */
  | "connect"
  /** TCP up, TLS handshake running */
  | "tls"
  /** request sent (or being sent), no response head yet */
  | "wait"
  /** response head received, body streaming */
  | "body";

/** Error codes the hop raises itself when a deadline passes. */
export const CONNECT_TIMEOUT_CODE = "OW_CONNECT_TIMEOUT";
export const FIRST_BYTE_TIMEOUT_CODE = "OW_FIRST_BYTE_TIMEOUT";
export const BODY_TIMEOUT_CODE = "OW_BODY_TIMEOUT";
export const POOL_EXHAUSTED_CODE = "OW_POOL_EXHAUSTED";

const DNS_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME", "EAI_NODATA", "EAI_SERVICE", "ESERVFAIL"]);
const REFUSED_CODES = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "ENETDOWN", "EADDRNOTAVAIL"]);
const TLS_CODES = new Set([
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "HOSTNAME_MISMATCH",
  "EPROTO",
]);

/**
 * The classification table, in order: the first row whose test matches wins.
 * `clientGone` (the cache went away) beats everything: not the origin's fault.
 */
export const OUTCOME_TABLE: ReadonlyArray<{
  outcome: OutcomeClass;
  when: string;
  test: (code: string, phase: Phase, clientGone: boolean) => boolean;
}> = [
  { outcome: "client_abort", when: "the cache closed its side first", test: (_c, _p, gone) => gone },
  { outcome: "pool_exhausted", when: "no free socket in the sidecar's own bounded pool within connect timeout (nothing was sent)", test: (c, p) => c === POOL_EXHAUSTED_CODE || (c === CONNECT_TIMEOUT_CODE && p === "queue") },
  { outcome: "body_timeout", when: "the response body stopped for longer than the body idle timeout", test: (c) => c === BODY_TIMEOUT_CODE },
  { outcome: "connect_timeout", when: "no connection within connect timeout (ours or ETIMEDOUT while connecting)", test: (c, p) => c === CONNECT_TIMEOUT_CODE || (c === "ETIMEDOUT" && (p === "connect" || p === "tls")) },
  { outcome: "first_byte_timeout", when: "no response head within first-byte timeout", test: (c) => c === FIRST_BYTE_TIMEOUT_CODE || c === "ETIMEDOUT" },
  { outcome: "dns", when: "the origin's name did not resolve", test: (c) => DNS_CODES.has(c) },
  { outcome: "connect_refused", when: "connect answered with RST or the host is unreachable", test: (c) => REFUSED_CODES.has(c) },
  { outcome: "tls", when: "TLS handshake or certificate verification failed", test: (c, p) => p === "tls" || TLS_CODES.has(c) || c.startsWith("ERR_TLS_") || c.startsWith("ERR_SSL_") || c.startsWith("ERR_OSSL_") },
  { outcome: "body_error", when: "the origin failed after the response head", test: (_c, p) => p === "body" },
  { outcome: "reset", when: "connection reset or closed (or a broken response) before the response head", test: () => true },
];

/** Outcome of a request that failed with `err` in `phase`. */
export function classifyError(err: unknown, phase: Phase, clientGone = false): OutcomeClass {
  const code = errorCode(err);
  for (const row of OUTCOME_TABLE) if (row.test(code, phase, clientGone)) return row.outcome;
  return "reset";
}

/** Outcome of a request whose response completed with `status`. */
export function classifyStatus(status: number): OutcomeClass {
  if (status >= 500) return "server_error";
  if (status >= 400) return "client_error";
  return "ok";
}

/**
 * Status the sidecar answers the cache with for a failure it generates: 503
 * when its own pool is full (the origin was not asked), 504 for timeouts,
 * 502 otherwise.
 */
export function failureStatus(outcome: OutcomeClass): 502 | 503 | 504 {
  if (outcome === "pool_exhausted") return 503;
  return outcome === "connect_timeout" || outcome === "first_byte_timeout" || outcome === "body_timeout" ? 504 : 502;
}

function errorCode(err: unknown): string {
  if (err && typeof err === "object") {
    const e = err as { code?: unknown; cause?: unknown };
    if (typeof e.code === "string") return e.code;
    if (e.cause) return errorCode(e.cause);
  }
  return "";
}
