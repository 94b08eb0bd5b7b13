/**
 * The keep-alive agent per origin (bounded pool, LIFO reuse, origin CA and TLS
 * identity) and the hook that hands the hop each upstream ClientRequest.
 *
 * Why the hook: the ClientRequest http-proxy creates is handed to the agent
 * synchronously inside proxy.web(); a patched `addRequest` that calls the
 * hop's `onRequest` lets the hop attach its deadlines to it without relying on
 * http-proxy's `proxyReq` event (skipped for `Expect` requests and emitted
 * only once a socket is assigned).
 */
import http, { type ClientRequest } from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import type { OriginConfig } from "../config.js";
import { originCa, originServername } from "./origin-tls.js";

/**
 * The agent for one origin. Verification stays on for https: extra CAs
 * (`origin.caFile`) are added to Node's default roots, never replace the check,
 * and the servername is the origin's (origin-tls.ts), not one derived from the
 * cache's Host header. `lookup` undefined means the system resolver.
 * `onRequest` is called synchronously with every ClientRequest the agent is
 * given (requests and upgrades alike), before it queues or gets a socket; one
 * function per agent, so nothing is allocated per request.
 */
export function createUpstreamAgent(origin: OriginConfig, lookup: LookupFunction | undefined, onRequest: (creq: ClientRequest) => void): http.Agent {
  const opts = {
    lookup,
    keepAlive: true,
    maxSockets: origin.maxSockets,
    maxFreeSockets: origin.maxFreeSockets,
    scheduling: "lifo" as const,
  };
  let agent: http.Agent;
  if (origin.url.protocol === "https:") {
    // Verification stays on: extra CAs are added to Node's default roots, never replace the check.
    // The agent's servername overrides the one Node would derive from the (cache's) Host header:
    // the hop, upgrades and probes present one TLS identity per origin (origin-tls.ts).
    agent = new https.Agent({ ...opts, ca: originCa(origin), servername: originServername(origin), rejectUnauthorized: true });
  } else {
    agent = new http.Agent(opts);
  }
  const a = agent as http.Agent & { addRequest(req: ClientRequest, o: unknown): void };
  const addRequest = a.addRequest;
  a.addRequest = function (this: http.Agent, req: ClientRequest, o: unknown) {
    onRequest(req);
    return addRequest.call(this, req, o);
  };
  return agent;
}
