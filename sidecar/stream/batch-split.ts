/**
 * Cut what one window tick produced into batches the central accepts: at most
 * maxWindowsPerBatch windows, maxExemplarsPerBatch exemplars and
 * maxMessageBytes encoded bytes each (the size is computed from each item's
 * exact encoded length, so no part is ever over the limit). Windows keep their
 * order and come before exemplars. An item that alone does not fit under the
 * byte limit cannot be made smaller: it is left out and counted in `tooLarge`
 * (the caller counts it as a rejected batch), never sent to be refused forever.
 * Pure; O(items).
 */
import { toBinary } from "@bufbuild/protobuf";
import { type Exemplar, ExemplarSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { type WindowSummary, WindowSummarySchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import type { StreamLimits } from "./limits.js";

export interface BatchPart {
  windows: WindowSummary[];
  exemplars: Exemplar[];
}

export interface SplitResult {
  /** At least one part when the input was empty (an empty batch still reports buffer and skew figures). */
  parts: BatchPart[];
  /** Items left out because one alone is over maxMessageBytes. */
  tooLarge: number;
}

/**
 * Bytes of everything in an encoded SidecarMessage{batch} except the repeated
 * items: the oneof tag and length (≤ 6) plus Batch's scalar fields (seq,
 * dropped, buffered, clock skew, rejected: ≤ 5 × 11).
 */
export const BATCH_OVERHEAD_BYTES = 64;

function varintBytes(n: number): number {
  let b = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    b++;
  }
  return b;
}

/** Encoded bytes of one repeated message field: tag, length, body. */
export function fieldBytes(bodyLength: number): number {
  return 1 + varintBytes(bodyLength) + bodyLength;
}

export function splitBatch(windows: readonly WindowSummary[], exemplars: readonly Exemplar[], limits: StreamLimits): SplitResult {
  const parts: BatchPart[] = [];
  let tooLarge = 0;
  let cur: BatchPart = { windows: [], exemplars: [] };
  let bytes = BATCH_OVERHEAD_BYTES;
  const room = limits.maxMessageBytes - BATCH_OVERHEAD_BYTES;
  const close = () => {
    parts.push(cur);
    cur = { windows: [], exemplars: [] };
    bytes = BATCH_OVERHEAD_BYTES;
  };
  for (const w of windows) {
    const size = fieldBytes(toBinary(WindowSummarySchema, w).length);
    if (size > room) {
      tooLarge++;
      continue;
    }
    if (cur.windows.length >= limits.maxWindowsPerBatch || bytes + size > limits.maxMessageBytes) close();
    cur.windows.push(w);
    bytes += size;
  }
  for (const e of exemplars) {
    const size = fieldBytes(toBinary(ExemplarSchema, e).length);
    if (size > room) {
      tooLarge++;
      continue;
    }
    if (cur.exemplars.length >= limits.maxExemplarsPerBatch || bytes + size > limits.maxMessageBytes) close();
    cur.exemplars.push(e);
    bytes += size;
  }
  if (cur.windows.length > 0 || cur.exemplars.length > 0 || (parts.length === 0 && tooLarge === 0)) parts.push(cur);
  return { parts, tooLarge };
}
