/**
 * One completed request as an Exemplar, with every field the client or the
 * network chooses cut to a fixed cap at recording time. A client may send a
 * path of any length (2,048 characters and more); kept whole, 1,000 of them
 * made batches the central refused (issue 11). With these caps an exemplar is
 * at most ~1 KB encoded, so EXEMPLAR_CAPS × the central's exemplar limit stays
 * far under its message limit, and the split in stream/batch-split.ts never
 * has to drop one. The query string is never kept (it may carry secrets).
 */
import { create } from "@bufbuild/protobuf";
import { type Exemplar, ExemplarSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import type { CompletedRequest } from "../proxy/hop.js";
import { OUTCOME_ENUM } from "../proxy/outcome.js";

/** Characters kept per field (UTF-16 code units; an origin name is already bounded by config). */
export const EXEMPLAR_CAPS = Object.freeze({ path: 256, method: 32, upstreamAddr: 300 });

/** `s` cut to at most `max` code units, never ending inside a surrogate pair. */
export function capText(s: string, max: number): string {
  if (s.length <= max) return s;
  const cut = s.charCodeAt(max - 1);
  return s.slice(0, cut >= 0xd800 && cut <= 0xdbff ? max - 1 : max);
}

/** The path without its query string (or fragment), capped. */
export function exemplarPath(target: string): string {
  const q = target.search(/[?#]/);
  return capText(q >= 0 ? target.slice(0, q) : target, EXEMPLAR_CAPS.path);
}

/** The exemplar of one completed request, stamped `timeMs` (the central's clock as far as known). */
export function exemplarOf(r: CompletedRequest, timeMs: number): Exemplar {
  return create(ExemplarSchema, {
    timeUnixMs: BigInt(Math.round(timeMs)),
    origin: r.origin,
    method: capText(r.method, EXEMPLAR_CAPS.method),
    path: exemplarPath(r.path),
    status: r.status,
    outcome: OUTCOME_ENUM[r.outcome],
    ttfbMs: r.ttfbMs ?? 0,
    totalMs: r.totalMs,
    upstreamAddr: capText(r.upstreamAddr, EXEMPLAR_CAPS.upstreamAddr),
  });
}
