/**
 * IngestService.Stream: one session per connected sidecar. The sidecar sends
 * Hello first, then Batches; each batch is counted exactly once (duplicates
 * by (node_id, seq) are acknowledged but not counted) and acknowledged only
 * once durable. Outbound messages (acks, config pushes, probe requests) go
 * through the session's queue, so other parts of the central can send to a
 * sidecar at any time with Session.send().
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import {
  type Batch,
  type CentralMessage,
  CentralMessageSchema,
  type ConfigAck,
  type Hello,
  IngestService,
  type ProbeResult,
  type SidecarMessage,
} from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { completedFailuresOf, completedOf } from "../../proto/outcomes.js";
import { CentralError, toConnectError } from "../errors.js";
import type { NodeRecord, OriginTotals } from "../store/level-store.js";
import { type PeerIdentity, checkNodeBinding, peerKey } from "../server/auth.js";
import { setTimeout as sleep } from "node:timers/promises";
import { TokenBucket } from "./rate-limit.js";
import { AsyncQueue } from "./async-queue.js";
import type { Committer } from "./committer.js";
import { MAX_SEQ_JUMP, validateBatch, validateConfigAck, validateExemplars, validateHello } from "./validate.js";
import type { WindowStore } from "./window-store.js";
import type { NodeLabelAllowlist } from "../verdict/node-labels.js";

export interface IngestState {
  totals: Map<string, OriginTotals>;
  /** Highest seq counted per node (in memory; persisted by the committer). */
  highWater: Map<string, bigint>;
  nodes: Map<string, NodeRecord>;
  windows: WindowStore;
  committer: Committer;
  log: Logger;
  /** mTLS: a sidecar may only claim a node_id its certificate names. */
  requireNodeCert?: boolean;
  /** --node-labels: the allowlisted ISP and region win over what a hello claims. */
  nodeLabels?: NodeLabelAllowlist;
  /** Inbound messages per second per session (over it, reading waits). */
  ratePerSec?: number;
  rateBurst?: number;
}

export interface IngestEvents {
  "node-connected": [session: Session];
  "node-disconnected": [session: Session];
  "config-ack": [session: Session, ack: ConfigAck];
  "probe-result": [session: Session, result: ProbeResult];
  batch: [session: Session, batch: Batch];
  /** A replayed batch, acknowledged and not counted again (metrics). */
  duplicate: [session: Session, batch: Batch];
}

/** A live stream from one sidecar. */
export class Session {
  readonly id = randomUUID();
  readonly outbound = new AsyncQueue<CentralMessage>();
  node: NodeRecord | undefined;
  hello: Hello | undefined;
  peer: PeerIdentity | undefined;
  /** Origins named in hello. */
  declaredOrigins: Set<string> | undefined;

  /** Queue a message to the sidecar; false when the session is closed. */
  /** Acks still waiting for their write (delivered before the call ends on a half-close). */
  readonly pending = new Set<Promise<unknown>>();

  track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  send(msg: NonNullable<MessageInitShape<typeof CentralMessageSchema>["kind"]>): boolean {
    return this.outbound.push(create(CentralMessageSchema, { kind: msg }));
  }

  close(err?: unknown): void {
    this.outbound.close(err);
  }

  get closed(): boolean {
    return this.outbound.closed;
  }
}

/**
 * connect-es reports an undecodable inbound message as INTERNAL ("parse
 * binary: ..."); on the ingest stream that is the sidecar's bad input, so it
 * is INVALID_ARGUMENT with the decoder's reason.
 */
function inboundError(err: unknown): ConnectError {
  const e = toConnectError(err);
  if (e.code === Code.Internal && e.rawMessage.startsWith("parse binary")) {
    return new ConnectError(`cannot decode SidecarMessage (${e.rawMessage}) [CENTRAL_BAD_MESSAGE]`, Code.InvalidArgument);
  }
  return e;
}

export class Ingest extends EventEmitter<IngestEvents> {
  /** Live sessions by node_id (one per node: a newer one replaces the older). */
  readonly sessions = new Map<string, Session>();

  constructor(private state: IngestState) {
    super();
  }

  impl(): Partial<ServiceImpl<typeof IngestService>> {
    const self = this;
    return {
      async *stream(requests: AsyncIterable<SidecarMessage>, ctx) {
        const session = new Session();
        session.peer = ctx.values.get(peerKey);
        const bucket = new TokenBucket(self.state.ratePerSec ?? 200, self.state.rateBurst ?? 1000);
        const reader = (async () => {
          for await (const msg of requests) {
            if (session.closed) break;
            const wait = bucket.take();
            if (wait > 0) await sleep(wait);
            await self.handle(session, msg);
          }
          // The sidecar half-closed: deliver the acks of what it sent before ending the call.
          await Promise.allSettled([...session.pending]);
        })().then(
          () => session.close(),
          (err) => session.close(inboundError(err)),
        );
        try {
          yield* session.outbound;
        } finally {
          // Not awaiting the reader: when we end the call (replaced session,
          // shutdown) the client may not have half-closed yet.
          session.close();
          self.detach(session);
          void reader;
        }
      },
    };
  }

  private async handle(session: Session, msg: SidecarMessage): Promise<void> {
    switch (msg.kind.case) {
      case "hello":
        return this.onHello(session, msg.kind.value);
      case "batch":
        if (!session.node) throw new CentralError("CENTRAL_HELLO_REQUIRED", "the first message on a stream must be hello");
        return this.onBatch(session, msg.kind.value);
      case "configAck":
        if (!session.node) throw new CentralError("CENTRAL_HELLO_REQUIRED", "the first message on a stream must be hello");
        validateConfigAck(msg.kind.value);
        this.emit("config-ack", session, msg.kind.value);
        return;
      case "probeResult":
        if (!session.node) throw new CentralError("CENTRAL_HELLO_REQUIRED", "the first message on a stream must be hello");
        this.emit("probe-result", session, msg.kind.value);
        return;
      default:
        throw new CentralError("CENTRAL_BAD_MESSAGE", "message has no known kind (empty oneof or a newer sidecar)");
    }
  }

  private async onHello(session: Session, hello: Hello): Promise<void> {
    if (session.node) throw new CentralError("CENTRAL_BAD_MESSAGE", "hello sent twice on one stream");
    const id = validateHello(hello);
    if (this.state.requireNodeCert) checkNodeBinding(session.peer ?? { authorized: false, names: [], tls: false }, id.nodeId);
    const now = Date.now();
    const prev = this.state.nodes.get(id.nodeId);
    const labels = this.state.nodeLabels?.resolve(id.nodeId, id) ?? { isp: id.isp, region: id.region, mismatch: "", unlisted: false };
    if (labels.mismatch) this.state.log.warn({ node: id.nodeId, mismatch: labels.mismatch }, "node labels disagree with the allowlist; using the allowlist");
    else if (labels.unlisted) this.state.log.warn({ node: id.nodeId, isp: id.isp, region: id.region }, "node not in the labels allowlist; using its claimed labels");
    const node: NodeRecord = {
      nodeId: id.nodeId,
      isp: labels.isp,
      region: labels.region,
      labelMismatch: labels.mismatch,
      labelMismatches: (BigInt(prev?.labelMismatches || "0") + (labels.mismatch ? 1n : 0n)).toString(),
      rejectedBatches: prev?.rejectedBatches,
      lastRejectReason: prev?.lastRejectReason,
      clockSkewMs: prev?.clockSkewMs,
      version: id.version,
      origins: [...hello.origins],
      lastSeenMs: now,
      connectedSinceMs: now,
      appliedConfigVersion: hello.appliedConfigVersion.toString(),
      lastNackReason: prev?.lastNackReason ?? "",
      bufferedBatches: prev?.bufferedBatches ?? "0",
      droppedBatches: prev?.droppedBatches ?? "0",
    };
    this.state.nodes.set(node.nodeId, node);
    session.node = node;
    session.hello = hello;
    session.declaredOrigins = new Set(hello.origins);
    const older = this.sessions.get(node.nodeId);
    this.sessions.set(node.nodeId, session);
    if (older && older !== session) {
      older.close(new ConnectError(`replaced by a newer session of node ${node.nodeId}`, Code.Aborted));
    }
    await this.state.committer.commit(node.nodeId, this.state.highWater.get(node.nodeId) ?? 0n, [], node);
    session.send({
      case: "welcome",
      value: { sessionId: session.id, highWaterSeq: this.state.highWater.get(node.nodeId) ?? 0n },
    });
    this.state.log.info({ node: node.nodeId, isp: node.isp, region: node.region, session: session.id }, "sidecar connected");
    this.emit("node-connected", session);
  }

  private async onBatch(session: Session, batch: Batch): Promise<void> {
    const node = session.node!;
    const now = Date.now();
    validateBatch(batch, now, session.declaredOrigins);
    validateExemplars(batch, now, session.declaredOrigins);
    const hw = this.state.highWater.get(node.nodeId) ?? 0n;
    if (batch.seq > hw + MAX_SEQ_JUMP) {
      throw new CentralError("CENTRAL_BAD_MESSAGE", `batch.seq ${batch.seq} jumps more than 2^32 above the high-water mark ${hw}`);
    }
    node.lastSeenMs = now;
    node.bufferedBatches = batch.bufferedBatches.toString();
    node.droppedBatches = batch.droppedBatches.toString();
    node.rejectedBatches = batch.rejectedBatches.toString();
    node.clockSkewMs = Number(batch.clockSkewMs);
    if (batch.seq <= hw) {
      // Replay of a batch already counted: acknowledge, never count twice. The
      // ack waits for the write in progress, which may hold the original.
      const seq = batch.seq;
      this.emit("duplicate", session, batch);
      session.track(
        this.state.committer.commit(node.nodeId, hw, []).then(
          () => session.send({ case: "batchAck", value: { seq } }),
          () => session.close(new ConnectError("central storage unavailable, retry later", Code.Unavailable)),
        ),
      );
      return;
    }
    this.state.highWater.set(node.nodeId, batch.seq);
    const touched = new Set<string>();
    for (const w of batch.windows) {
      const counts = w.counts!;
      const requests = completedOf(counts);
      const failures = completedFailuresOf(counts);
      let t = this.state.totals.get(w.origin);
      if (!t) this.state.totals.set(w.origin, (t = { requests: 0n, failures: 0n, firstSeenMs: now, lastSeenMs: now }));
      t.requests += requests;
      t.failures += failures;
      t.lastSeenMs = now;
      touched.add(w.origin);
      this.state.windows.add(
        {
          nodeId: node.nodeId,
          isp: node.isp,
          region: node.region,
          startMs: Number(w.startUnixMs),
          lengthMs: w.lengthMs,
          counts,
          ttfb: w.ttfb,
          receivedMs: now,
        },
        w.origin,
      );
    }
    this.emit("batch", session, batch);
    const seq = batch.seq;
    // Not awaited: the next message is read while this one is written; acks
    // still go out in order because the committer completes writes in order.
    session.track(
      this.state.committer.commit(node.nodeId, seq, touched, node).then(
        () => session.send({ case: "batchAck", value: { seq } }),
        (err) => {
          this.state.log.error({ err, node: node.nodeId }, "cannot persist batch; closing session so the sidecar replays it");
          session.close(new ConnectError("central storage unavailable, retry later", Code.Unavailable));
        },
      ),
    );
  }

  private detach(session: Session): void {
    const node = session.node;
    if (!node) return;
    if (this.sessions.get(node.nodeId) === session) {
      this.sessions.delete(node.nodeId);
      node.lastSeenMs = Date.now();
      this.state.log.info({ node: node.nodeId, session: session.id }, "sidecar disconnected");
      this.emit("node-disconnected", session);
    }
  }

  /**
   * Forget an origin's counted totals and recent windows (operator forget,
   * age-out); false when it was unknown. The caller deletes its records
   * after committer.settled().
   */
  forgetOrigin(origin: string): boolean {
    const had = this.state.totals.delete(origin);
    return this.state.windows.forget(origin) || had;
  }

  /** Forget a node's record and high-water mark; CENTRAL_NODE_CONNECTED while it has a live session. */
  forgetNode(nodeId: string): boolean {
    if (this.sessions.has(nodeId)) {
      throw new CentralError("CENTRAL_NODE_CONNECTED", `node ${nodeId} has a live session: stop its sidecar (or wait until it disconnects) before forgetting it`);
    }
    this.state.highWater.delete(nodeId);
    return this.state.nodes.delete(nodeId);
  }

  /** Resolves once every counted-batch write issued so far is done. */
  settled(): Promise<void> {
    return this.state.committer.settled();
  }

  isConnected(nodeId: string): boolean {
    return this.sessions.has(nodeId);
  }

  /** Close every session (shutdown). */
  closeAll(): void {
    for (const s of this.sessions.values()) s.close(new ConnectError("central shutting down", Code.Unavailable));
  }
}
