/**
 * What the counts of a window mean, in one place: which outcome classes are
 * completed requests and which are the origin's (or the path's) failures, and
 * how counts travel on the wire (the OutcomeCounts message of earlier
 * releases, or the packed form WindowSummary.packed_counts).
 * DESIGN.md §5: failures = 5xx, connection-level errors, first-byte timeouts,
 * body errors, body timeouts and unresolved stalls; 4xx, client aborts, pool
 * exhaustion (the sidecar's own socket pool was full) and accepted upgrades
 * are requests but not failures.
 *
 * The list of count fields is common.proto's OutcomeCounts itself
 * (COUNT_FIELDS, in field-number order = packed order): adding an outcome
 * class is a new OutcomeCounts field there, plus a line in completedOf (and
 * in completedFailuresOf when it is a failure).
 */
import { create } from "@bufbuild/protobuf";
import { type OutcomeCounts, OutcomeCountsSchema, OutcomeSchema } from "./gen/originwatch/v1/common_pb.js";

/** Key of one count field (camelCase, as protobuf-es names it). */
export type CountField = Exclude<keyof OutcomeCounts, "$typeName" | "$unknown">;

/**
 * Every count field in OutcomeCounts field-number order: entry i is field
 * i + 1 and packed_counts[i] on the wire.
 */
export const COUNT_FIELDS: readonly CountField[] = [...OutcomeCountsSchema.fields]
  .sort((a, b) => a.number - b.number)
  .map((f) => f.localName as CountField);

const KNOWN_OUTCOMES = new Set(OutcomeSchema.values.map((v) => v.number));

/** An Outcome value this build knows (from the contract, so a new class is known everywhere at once). */
export function isKnownOutcome(n: number): boolean {
  return KNOWN_OUTCOMES.has(n);
}

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

/**
 * The packed wire form of counts: COUNT_FIELDS order, trailing zeros left
 * out. Throws RangeError when a count does not fit in a uint32 (a sender then
 * keeps the OutcomeCounts form for that window).
 */
export function packCounts(c: OutcomeCounts | Readonly<Partial<Record<CountField, number | bigint>>>): number[] {
  const out: number[] = [];
  let last = 0;
  for (let i = 0; i < COUNT_FIELDS.length; i++) {
    const n = Number(c[COUNT_FIELDS[i]] ?? 0);
    if (!(n >= 0 && n <= 0xffffffff) || !Number.isInteger(n)) throw new RangeError(`count ${COUNT_FIELDS[i]} = ${n} does not fit the packed form`);
    out.push(n);
    if (n !== 0) last = i + 1;
  }
  out.length = last;
  return out;
}

/**
 * OutcomeCounts of a packed form. Entries beyond the known fields are
 * returned in `extra` (the caller refuses them: a newer sender's outcome this
 * central cannot place would otherwise be lost silently).
 */
export function unpackCounts(packed: readonly number[]): { counts: OutcomeCounts; extra: number } {
  const counts = create(OutcomeCountsSchema);
  const n = Math.min(packed.length, COUNT_FIELDS.length);
  for (let i = 0; i < n; i++) if (packed[i] !== 0) counts[COUNT_FIELDS[i]] = BigInt(packed[i]);
  return { counts, extra: packed.length - n };
}

/** The counts of a window in either wire form (OutcomeCounts, or packed_counts when counts is absent). */
export function countsOfWindow(w: { counts?: OutcomeCounts; packedCounts: readonly number[] }): OutcomeCounts {
  return w.counts ?? unpackCounts(w.packedCounts).counts;
}

/**
 * The fields of a WindowSummary that carry counts, as a sender emits them:
 * the packed form, or OutcomeCounts for a window whose counts do not fit it.
 */
export function wireCounts(c: OutcomeCounts | Readonly<Partial<Record<CountField, number | bigint>>>): { counts?: OutcomeCounts; packedCounts: number[] } {
  try {
    return { counts: undefined, packedCounts: packCounts(c) };
  } catch {
    const counts = create(OutcomeCountsSchema);
    for (const k of COUNT_FIELDS) counts[k] = BigInt(c[k] ?? 0);
    return { counts, packedCounts: [] };
  }
}
