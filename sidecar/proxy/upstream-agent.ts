/**
 * The keep-alive agent per origin: a bounded pool, LIFO reuse, the origin's
 * CA and TLS identity.
 */
import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import type { OriginConfig } from "../config.js";
import { originCa, originServername } from "./origin-tls.js";

/**
 * The agent for one origin. Verification stays on for https: extra CAs
 * (`origin.caFile`) are added to Node's default roots, never replace the check,
 * and the servername is the origin's (origin-tls.ts), not one derived from the
 * cache's Host header. `lookup` undefined means the system resolver.
 */
export function createUpstreamAgent(origin: OriginConfig, lookup: LookupFunction | undefined): http.Agent {
  const opts = {
    lookup,
    keepAlive: true,
    maxSockets: origin.maxSockets,
    maxFreeSockets: origin.maxFreeSockets,
    scheduling: "lifo" as const,
  };
  if (origin.url.protocol === "https:") {
    // Verification stays on: extra CAs are added to Node's default roots, never replace the check.
    // The agent's servername overrides the one Node would derive from the (cache's) Host header:
    // the hop, upgrades and probes present one TLS identity per origin (origin-tls.ts).
    return new https.Agent({ ...opts, ca: originCa(origin), servername: originServername(origin), rejectUnauthorized: true });
  }
  return new http.Agent(opts);
}
