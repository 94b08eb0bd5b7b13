/**
 * Outcome counts as plain numbers, summed over a lookback, and what they mean
 * for the verdict (DESIGN.md §5, common.proto OutcomeCounts):
 *   failures = 5xx + connection-level + first-byte timeouts + body errors
 *              + body timeouts + max(0, stall - stall_recovered)
 *   requests = completed (ok .. client_abort, body_timeout, pool_exhausted,
 *              upgrade) + the same unresolved stalls
 * 4xx, client aborts, pool exhaustion (the sidecar's own pool was full) and
 * accepted upgrades are requests but never failures. Stalls are netted over
 * the whole lookback, so a slow origin whose requests cross stall_ms and then
 * answer does not look failing.
 */
import type { OutcomeCounts } from "../../proto/gen/originwatch/v1/common_pb.js";

export interface Counts {
  ok: number;
  clientError: number;
  serverError: number;
  connectRefused: number;
  connectTimeout: number;
  dns: number;
  tls: number;
  reset: number;
  firstByteTimeout: number;
  bodyError: number;
  clientAbort: number;
  bodyTimeout: number;
  poolExhausted: number;
  upgrade: number;
  stall: number;
  stallRecovered: number;
}

export function zeroCounts(): Counts {
  return {
    ok: 0, clientError: 0, serverError: 0, connectRefused: 0, connectTimeout: 0, dns: 0, tls: 0, reset: 0,
    firstByteTimeout: 0, bodyError: 0, clientAbort: 0, bodyTimeout: 0, poolExhausted: 0, upgrade: 0, stall: 0,
    stallRecovered: 0,
  };
}

/** counts(partial): a Counts with the given fields, zero elsewhere (tests, tools). */
export function counts(partial: Partial<Counts> = {}): Counts {
  return { ...zeroCounts(), ...partial };
}

/** into += c (proto or plain); returns into. */
export function addCounts(into: Counts, c: Counts | OutcomeCounts): Counts {
  into.ok += Number(c.ok);
  into.clientError += Number(c.clientError);
  into.serverError += Number(c.serverError);
  into.connectRefused += Number(c.connectRefused);
  into.connectTimeout += Number(c.connectTimeout);
  into.dns += Number(c.dns);
  into.tls += Number(c.tls);
  into.reset += Number(c.reset);
  into.firstByteTimeout += Number(c.firstByteTimeout);
  into.bodyError += Number(c.bodyError);
  into.clientAbort += Number(c.clientAbort);
  into.bodyTimeout += Number(c.bodyTimeout);
  into.poolExhausted += Number(c.poolExhausted);
  into.upgrade += Number(c.upgrade);
  into.stall += Number(c.stall);
  into.stallRecovered += Number(c.stallRecovered);
  return into;
}

/** into -= c; returns into (a window leaving the lookback). */
export function subCounts(into: Counts, c: Counts): Counts {
  into.ok -= c.ok;
  into.clientError -= c.clientError;
  into.serverError -= c.serverError;
  into.connectRefused -= c.connectRefused;
  into.connectTimeout -= c.connectTimeout;
  into.dns -= c.dns;
  into.tls -= c.tls;
  into.reset -= c.reset;
  into.firstByteTimeout -= c.firstByteTimeout;
  into.bodyError -= c.bodyError;
  into.clientAbort -= c.clientAbort;
  into.bodyTimeout -= c.bodyTimeout;
  into.poolExhausted -= c.poolExhausted;
  into.upgrade -= c.upgrade;
  into.stall -= c.stall;
  into.stallRecovered -= c.stallRecovered;
  return into;
}

/** Stalls crossed in the lookback and not answered in it. */
export function unresolvedStalls(c: Counts): number {
  return Math.max(0, c.stall - c.stallRecovered);
}

export function completed(c: Counts): number {
  return (
    c.ok + c.clientError + c.serverError + c.connectRefused + c.connectTimeout + c.dns + c.tls + c.reset +
    c.firstByteTimeout + c.bodyError + c.clientAbort + c.bodyTimeout + c.poolExhausted + c.upgrade
  );
}

export function requestsOf(c: Counts): number {
  return completed(c) + unresolvedStalls(c);
}

export function failuresOf(c: Counts): number {
  return (
    c.serverError + c.connectRefused + c.connectTimeout + c.dns + c.tls + c.reset + c.firstByteTimeout +
    c.bodyError + c.bodyTimeout + unresolvedStalls(c)
  );
}
