/**
 * FlushWindows across replicas, in cluster mode (issue 16). Evaluation on
 * arrival (central/verdict/arrival.ts) asks every sidecar of an origin to send
 * its open window now, so the verdict compares every node over the same span
 * of time. The partition owner asking holds the sessions of only some of
 * those sidecars: without this relay the others report up to a window (1 s)
 * later, the first evaluation judges a part of the fleet (a uniform partial
 * failure then blames the nodes heard first) and the right verdict waits for
 * the next windows.
 *
 * The owner publishes `{from, origin}` on core NATS subject `ow.flush`
 * (fire and forget: a lost request only costs the speed-up); every other
 * replica sends FlushWindows for that origin on its own sessions of sidecars
 * that route to it. The asking replica flushes its own sessions itself
 * (VerdictService), so it skips its own message. How often is bounded at the
 * source (one round per origin per FLUSH_MIN_INTERVAL_MS) and by the sidecar
 * (at most one flush per origin per second).
 */
import { create } from "@bufbuild/protobuf";
import type { Msg, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { FlushWindowsSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import type { Ingest } from "../ingest/ingest-service.js";
import type { ReplicaLink } from "./replica-link.js";

/** The subject every replica listens on for flush requests. */
export const FLUSH_SUBJECT = "ow.flush";

interface FlushRequest {
  from: string;
  origin: string;
}

export interface FlushRelay {
  /** Ask the sidecars of `origin` on every other replica to send their open window now. */
  requestFlush(origin: string): void;
  /** FlushWindows this replica sent on behalf of others (tests, metrics). */
  sent(): number;
  close(): void;
}

export function startFlushRelay(o: { link: ReplicaLink; ingest: Ingest; log: Logger }): FlushRelay {
  const { link, ingest, log } = o;
  const me = link.replicaId;
  let sent = 0;
  const onRequest = (m: Msg) => {
    let req: FlushRequest;
    try {
      req = m.json<FlushRequest>();
      if (typeof req.origin !== "string" || typeof req.from !== "string") throw new Error("origin and from must be strings");
    } catch (err) {
      log.warn({ err: (err as Error).message, subject: m.subject }, "malformed flush request ignored");
      return;
    }
    if (req.from === me) return;
    for (const s of ingest.sessions.values()) {
      const node = s.node;
      if (!node || s.closed || !(s.hello?.origins ?? node.origins).includes(req.origin)) continue;
      if (s.send({ case: "flushWindows", value: create(FlushWindowsSchema, { origin: req.origin }) })) sent++;
    }
  };
  const sub: Subscription = link.nc.subscribe(FLUSH_SUBJECT, { callback: (err, m) => (err ? log.error({ err }, "flush relay subscription failed") : onRequest(m)) });
  return {
    requestFlush(origin) {
      if (link.nc.isClosed()) return;
      try {
        link.nc.publish(FLUSH_SUBJECT, JSON.stringify({ from: me, origin } satisfies FlushRequest));
      } catch (err) {
        log.warn({ err: (err as Error).message, origin }, "flush request not published");
      }
    },
    sent: () => sent,
    close: () => sub.unsubscribe(),
  };
}
