/**
 * The one change made to a running sidecar's config: the stall threshold of
 * each origin, from the pushed config over the local flags.
 *
 * Why it is a mutation: the hop reads `origin.stallMs` of the same
 * OriginConfig objects per request (when a request starts and when it gets an
 * upstream socket), so an accepted push takes effect for the requests that
 * start after it, with no copy to keep in step. Every other OriginConfig
 * field is readonly after validation (config.ts).
 */
import type { Config } from "../../proto/gen/originwatch/v1/config_pb.js";
import type { OriginConfig } from "../config.js";

/** The stall thresholds from flags and the config file, before any push: what a zero in a push falls back to. */
export function localStallMs(origins: readonly OriginConfig[]): ReadonlyMap<string, number> {
  return new Map(origins.map((o) => [o.name, o.stallMs]));
}

/**
 * Set each origin's stallMs: the push's per-origin value, else its fleet-wide
 * value, else the local one (a zero in the pushed config leaves the local
 * value in force). Contract: `local` holds every origin's name (localStallMs).
 */
export function applyStallOverride(origins: readonly OriginConfig[], pushed: Config, local: ReadonlyMap<string, number>): void {
  for (const o of origins) o.stallMs = pushed.origins[o.name]?.stallMs || pushed.stallMs || local.get(o.name)!;
}
