/**
 * The outcome vocabulary, in one place, for the sidecar, the central and the
 * tools: the outcome classes, what counts as a request and as a failure, the
 * plain-number Counts with add / subtract, and how counts travel on the wire
 * (the OutcomeCounts message of earlier releases, or the packed form
 * WindowSummary.packed_counts).
 *
 * DESIGN.md §5: failures = 5xx, connection-level errors, first-byte timeouts,
 * body errors, body timeouts and unresolved stalls; 4xx, client aborts, pool
 * exhaustion (the sidecar's own socket pool was full) and accepted upgrades
 * are requests but not failures. Stalls are netted over the lookback
 * (stall - stall_recovered), so a slow origin whose requests cross stall_ms
 * and then answer does not look failing.
 *
 * The list itself is the contract's (common.proto): the Outcome enum and the
 * OutcomeCounts fields, read here from the generated descriptors. Adding an
 * outcome class "foo" touches one list:
 *   1. common.proto: OUTCOME_FOO in Outcome and `uint64 foo = N` in OutcomeCounts
 *      (then `npx buf generate`);
 *   2. NOT_FAILURES below, only if it is not the origin's fault;
 *   3. the sidecar's classification (sidecar/proxy/outcome.ts) that produces it.
 * Counts, sums, packing and the recorder follow from the descriptors.
 */
import { Outcome, type OutcomeCounts, OutcomeCountsSchema, OutcomeSchema } from "./gen/originwatch/v1/common_pb.js";

/** Key of one count field (camelCase, as protobuf-es names it). */
export type CountField = Exclude<keyof OutcomeCounts, "$typeName" | "$unknown">;

/** An outcome class of a completed request: the Outcome enum name in snake case ("first_byte_timeout"). */
export type OutcomeClass = Lowercase<Exclude<keyof typeof Outcome, "UNSPECIFIED" | "STALL">>;

/** Counts of one window or a sum of windows, as plain numbers. */
export type Counts = Record<CountField, number>;

const FIELDS = [...OutcomeCountsSchema.fields].sort((a, b) => a.number - b.number);

/** Every count field in OutcomeCounts field-number order: entry i is field i + 1 and packed_counts[i] on the wire. */
export const COUNT_FIELDS: readonly CountField[] = FIELDS.map((f) => f.localName as CountField);

/** The two stall fields: counted when a request crosses stall_ms, not when it completes. */
const STALL_FIELDS: readonly CountField[] = ["stall", "stallRecovered"];

/** Classes of completed requests, in OutcomeCounts order. */
export const OUTCOME_CLASSES: readonly OutcomeClass[] = FIELDS.filter((f) => !STALL_FIELDS.includes(f.localName as CountField)).map((f) => f.name as OutcomeClass);

/** Completed requests that are not the origin's (or the path's) fault. Every other class is a failure. */
const NOT_FAILURES: ReadonlySet<OutcomeClass> = new Set<OutcomeClass>(["ok", "client_error", "client_abort", "pool_exhausted", "upgrade"]);

/** The count field of each class ("first_byte_timeout" → "firstByteTimeout"). */
export const FIELD_OF_CLASS: Readonly<Record<OutcomeClass, CountField>> = Object.fromEntries(
  FIELDS.map((f) => [f.name, f.localName as CountField]),
) as Record<OutcomeClass, CountField>;

/** Contract enum value of each class (exemplars, probe results). */
export const OUTCOME_ENUM: Readonly<Record<OutcomeClass, Outcome>> = Object.fromEntries(
  OUTCOME_CLASSES.map((c) => [c, Outcome[c.toUpperCase() as keyof typeof Outcome]]),
) as Record<OutcomeClass, Outcome>;

/** A failure as DESIGN.md §5 counts it (the sidecar samples failures at the error rate). */
export function isFailure(outcome: OutcomeClass): boolean {
  return !NOT_FAILURES.has(outcome);
}

const COMPLETED_FIELDS = OUTCOME_CLASSES.map((c) => FIELD_OF_CLASS[c]);
const FAILURE_FIELDS = OUTCOME_CLASSES.filter(isFailure).map((c) => FIELD_OF_CLASS[c]);

// The hot paths (every window on arrival and on leaving the lookback) are unrolled from the lists once.
const unrolled = <F>(args: string, body: string): F => new Function(...args.split(","), body) as F;
const sumOf = (fields: readonly CountField[], wrap: string) => fields.map((k) => `${wrap}(c.${k})`).join(" + ");

/** All-zero OutcomeCounts as a literal (protobuf-es create() is several times slower on the ingest path). */
const zeroOutcomeCounts = unrolled<() => OutcomeCounts>("", `return { $typeName: "${OutcomeCountsSchema.typeName}", ${COUNT_FIELDS.map((k) => `${k}: 0n`).join(", ")} };`);

/** All-zero Counts. */
export const zeroCounts = unrolled<() => Counts>("", `return { ${COUNT_FIELDS.map((k) => `${k}: 0`).join(", ")} };`);

/** into += c (OutcomeCounts or Counts); returns into. */
export const addCounts = unrolled<(into: Counts, c: Counts | OutcomeCounts) => Counts>("into,c", `${COUNT_FIELDS.map((k) => `into.${k} += Number(c.${k});`).join(" ")} return into;`);

/** into -= c; returns into (a window leaving the lookback). */
export const subCounts = unrolled<(into: Counts, c: Counts) => Counts>("into,c", `${COUNT_FIELDS.map((k) => `into.${k} -= c.${k};`).join(" ")} return into;`);

/** Counts with the given fields, zero elsewhere (tests, tools). */
export function counts(partial: Partial<Counts> = {}): Counts {
  return Object.assign(zeroCounts(), partial);
}

/** Requests that completed (every outcome class, stalls excluded). */
export const completed = unrolled<(c: Counts) => number>("c", `return ${sumOf(COMPLETED_FIELDS, "")};`);

/** Stalls crossed in the lookback and not answered in it. */
export function unresolvedStalls(c: Counts): number {
  return Math.max(0, c.stall - c.stallRecovered);
}

/** Requests over a lookback: completed plus the unresolved stalls. */
export function requestsOf(c: Counts): number {
  return completed(c) + unresolvedStalls(c);
}

const completedFailures = unrolled<(c: Counts) => number>("c", `return ${sumOf(FAILURE_FIELDS, "")};`);

/** Failures over a lookback: completed failures plus the unresolved stalls. */
export function failuresOf(c: Counts): number {
  return completedFailures(c) + unresolvedStalls(c);
}

/** Requests that completed in the window (every outcome class, stalls excluded), on the contract's 64-bit counts. */
export const completedOf = unrolled<(c: OutcomeCounts) => bigint>("c", `return ${sumOf(COMPLETED_FIELDS, "")};`);

/** Completed requests that failed because of the origin or the path to it (stalls excluded). */
export const completedFailuresOf = unrolled<(c: OutcomeCounts) => bigint>("c", `return ${sumOf(FAILURE_FIELDS, "")};`);

const KNOWN_OUTCOMES = new Set(OutcomeSchema.values.map((v) => v.number));

/** An Outcome value this build knows (from the contract, so a new class is known everywhere at once). */
export function isKnownOutcome(n: number): boolean {
  return KNOWN_OUTCOMES.has(n);
}

/** OutcomeCounts (the contract message) of plain counts, missing fields zero. */
export function toOutcomeCounts(c: Readonly<Partial<Record<CountField, number | bigint>>>): OutcomeCounts {
  const out = zeroOutcomeCounts();
  for (const k of COUNT_FIELDS) out[k] = BigInt(c[k] ?? 0);
  return out;
}

/**
 * The packed wire form of counts: COUNT_FIELDS order, trailing zeros left
 * out. Throws RangeError when a count does not fit in a uint32 (a sender then
 * keeps the OutcomeCounts form for that window, see wireCounts).
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
 * counted in `extra` (the caller refuses them: a newer sender's outcome this
 * central cannot place would otherwise be lost silently).
 */
export function unpackCounts(packed: readonly number[]): { counts: OutcomeCounts; extra: number } {
  const counts = zeroOutcomeCounts();
  const n = Math.min(packed.length, COUNT_FIELDS.length);
  for (let i = 0; i < n; i++) if (packed[i] !== 0) counts[COUNT_FIELDS[i]] = BigInt(packed[i]);
  return { counts, extra: packed.length - n };
}

/** Plain counts of a window in either wire form (the engine's conversion on arrival). */
export function countsOfWire(w: { counts?: OutcomeCounts | Counts; packedCounts?: readonly number[] }): Counts {
  if (w.counts) return addCounts(zeroCounts(), w.counts);
  const c = zeroCounts();
  const p = w.packedCounts;
  if (p) for (let i = 0; i < p.length && i < COUNT_FIELDS.length; i++) c[COUNT_FIELDS[i]] = p[i];
  return c;
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
    return { counts: toOutcomeCounts(c), packedCounts: [] };
  }
}
