/**
 * Probes across replicas, in cluster mode (issue 16): a probe asked on one
 * replica (ProbeOrigin, or a verdict worker's confirmation round) reaches
 * sidecars whose sessions are on other replicas.
 *
 * Each replica answers NATS requests on its own subject `ow.probe.<replica
 * id>`: a request names one node and one ProbeRequest; the replica sends it on
 * the node's session (under a probe id prefixed with the asking replica, so
 * two askers never collide) and replies with the sidecar's ProbeResult, or
 * with an error when the node is not connected there or its sidecar did not
 * answer in time. The asking side builds ordinary ProbeTargets (probe-broker.ts)
 * from the session directory (session-directory.ts), so a round mixes local
 * and remote nodes and settles the same way; what did not answer is named in
 * that node's error:
 *   - "replica B did not answer: nothing listens on ow.probe.B (stopped or cut off from NATS)"
 *   - "replica B did not answer within N ms"
 *   - "not connected to replica B any more"
 *   - "the sidecar on replica B did not answer within N ms"
 */
import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import type { Msg, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { type ProbeResult, ProbeResultSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import type { Ingest, Session } from "../ingest/ingest-service.js";
import type { ProbeBroker, ProbeTarget } from "../verdict/probe-broker.js";
import type { ReplicaLink } from "./replica-link.js";
import type { SessionDirectory } from "./session-directory.js";

/** The subject replica `id` answers probe requests on. */
export const probeSubject = (replicaId: string) => `ow.probe.${replicaId}`;

/** Extra time a relay waits past the probe's own timeout (the sidecar's round trip and NATS). */
const REPLY_SLACK_MS = 250;

interface RelayRequest {
  from: string;
  nodeId: string;
  probeId: string;
  origin: string;
  method: string;
  path: string;
  count: number;
  timeoutMs: number;
}

type RelayReply = { result: JsonValue } | { error: string };

export interface ProbeRelayOptions {
  link: ReplicaLink;
  ingest: Ingest;
  directory: SessionDirectory;
  log: Logger;
}

export interface ProbeRelay {
  /** ProbeTargets on other replicas for sidecars that route to `origin`; answers go to `broker`. */
  remoteTargets(origin: string, broker: ProbeBroker): ProbeTarget[];
  /** Requests this replica relayed to its own sessions (tests, metrics). */
  served(): number;
  close(): Promise<void>;
}

export function startProbeRelay(o: ProbeRelayOptions): ProbeRelay {
  const { link, ingest, directory, log } = o;
  const me = link.replicaId;
  /** Relayed probe id → the waiting request. */
  const pending = new Map<string, { reply: (r: RelayReply) => void }>();
  let served = 0;

  const onResult = (_s: Session, r: ProbeResult) => pending.get(r.probeId)?.reply({ result: toJson(ProbeResultSchema, r) });
  ingest.on("probe-result", onResult);

  const answer = (m: Msg) => {
    let req: RelayRequest;
    try {
      req = m.json<RelayRequest>();
    } catch {
      m.respond(JSON.stringify({ error: `replica ${me}: malformed probe relay request` }));
      return;
    }
    const s = ingest.sessions.get(req.nodeId);
    if (!s || s.closed) {
      m.respond(JSON.stringify({ error: `not connected to replica ${me} any more` } satisfies RelayReply));
      return;
    }
    served++;
    const relayedId = `${req.from}/${req.probeId}`;
    let done = false;
    const reply = (r: RelayReply) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      pending.delete(relayedId);
      m.respond(JSON.stringify(r));
    };
    const timer = setTimeout(() => reply({ error: `the sidecar on replica ${me} did not answer within ${req.timeoutMs} ms` }), req.timeoutMs + REPLY_SLACK_MS / 2);
    timer.unref();
    pending.set(relayedId, { reply });
    const sent = s.send({ case: "probeRequest", value: { probeId: relayedId, origin: req.origin, method: req.method, path: req.path, count: req.count, timeoutMs: req.timeoutMs } });
    if (!sent) reply({ error: `not connected to replica ${me} any more` });
  };

  const sub: Subscription = link.nc.subscribe(probeSubject(me), { callback: (err, m) => (err ? log.error({ err }, "probe relay subscription failed") : answer(m)) });

  return {
    remoteTargets(origin, broker) {
      const out: ProbeTarget[] = [];
      for (const rec of directory.list()) {
        if (rec.replica === me || !rec.origins.includes(origin)) continue;
        out.push({
          nodeId: rec.nodeId,
          isp: rec.isp,
          region: rec.region,
          send(req) {
            if (link.nc.isClosed()) return false;
            const body: RelayRequest = { from: me, nodeId: rec.nodeId, ...req };
            const waitMs = req.timeoutMs + REPLY_SLACK_MS;
            link.nc.request(probeSubject(rec.replica), JSON.stringify(body), { timeout: waitMs }).then(
              (m) => {
                const r = m.json<RelayReply>();
                if ("error" in r) broker.fail(rec.nodeId, req.probeId, r.error);
                else broker.onResult(rec.nodeId, { ...fromJson(ProbeResultSchema, r.result), probeId: req.probeId });
              },
              (err: Error & { isNoResponders?: () => boolean }) => {
                const noResponders = err.isNoResponders?.() === true || /no responders/i.test(err.message);
                broker.fail(
                  rec.nodeId,
                  req.probeId,
                  noResponders
                    ? `replica ${rec.replica} did not answer: nothing listens on ${probeSubject(rec.replica)} (stopped or cut off from NATS)`
                    : err.name === "TimeoutError" || /timeout/i.test(err.message)
                      ? `replica ${rec.replica} did not answer within ${waitMs} ms`
                      : `replica ${rec.replica} did not answer: ${err.message}`,
                );
              },
            );
            return true;
          },
        });
      }
      return out;
    },
    served: () => served,
    async close() {
      ingest.off("probe-result", onResult);
      sub.unsubscribe();
      for (const p of [...pending.values()]) p.reply({ error: `replica ${me} is shutting down` });
    },
  };
}
