/**
 * IngestService.Stream: one session per connected sidecar. The sidecar sends
 * Hello first, then Batches. Each batch is, exactly one of:
 * - counted exactly once: its totals, its node's high-water mark and the node
 *   record are written durably (committer.ts) and only then applied in memory
 *   (totals, recent windows, exemplars, the "batch" event) and acknowledged;
 * - a duplicate (seq at or below what was accepted): acknowledged once the
 *   write that holds the original is durable, never counted again;
 * - refused for good (invalid content or over a cap, validate.ts): answered
 *   with BatchReject{seq, code, reason}, counted per node and in total, and the
 *   stream reads on; the high-water mark does not move for it.
 * Protocol violations (no hello first, hello twice, undecodable message, empty
 * oneof, a broken seq) end the stream with INVALID_ARGUMENT or
 * FAILED_PRECONDITION; a failed write ends the affected streams with
 * UNAVAILABLE so their sidecars replay.
 *
 * Reading is throttled per node across its streams by windows (rate-limit.ts).
 * Outbound messages (acks, rejects, config pushes, probe requests) go through
 * the session's queue, so other parts of the central can send to a sidecar at
 * any time with Session.send().
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { type CentralMessage, CentralMessageSchema, type ConfigAck, type Hello, type ProbeResult } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { CentralError, toConnectError } from "../errors.js";
import type { NodeRecord, OriginTotals } from "../store/level-store.js";
import { type PeerIdentity, checkNodeBinding, peerKey } from "../server/auth.js";
import { setTimeout as sleep } from "node:timers/promises";
import { NodeBuckets } from "./rate-limit.js";
import { AsyncQueue } from "./async-queue.js";
import type { TotalsDelta } from "./committer.js";
import type { BatchSink } from "./batch-sink.js";
import type { ExemplarStore } from "./exemplar-store.js";
import { IssuedProbes, type ProbeRequestFields } from "./issued-probes.js";
import { type IngestLimitOptions, advertisedLimits, exemplarsPerBatchOf, windowsPerBatchOf } from "./limits.js";
import { type Refusal, batchProblem, checkSeq, validateConfigAck, validateHello } from "./validate.js";
import { type DecodedBatch, decodeBatch } from "./batch-decoder.js";
import type { SidecarMessageView } from "./sidecar-message-view.js";
import { completedAt, completedFailuresAt } from "./window-columns.js";
import type { NodeLabelAllowlist } from "../verdict/node-labels.js";

export interface IngestState {
  /** Durable totals per origin (moved only by the committer, after the write). */
  totals: Map<string, OriginTotals>;
  /** Highest seq durably counted per node (moved only by the committer, after the write). */
  highWater: Map<string, bigint>;
  nodes: Map<string, NodeRecord>;
  /** Latest exemplars per origin (fed after the durable write). */
  exemplars?: ExemplarStore;
  /** Where counted batches go: the Committer (embedded) or the window-log publisher (cluster). */
  committer: BatchSink;
  log: Logger;
  /** mTLS: a sidecar may only claim a node_id its certificate names. */
  requireNodeCert?: boolean;
  /** --node-labels: the allowlisted ISP and region win over what a hello claims. */
  nodeLabels?: NodeLabelAllowlist;
  limits: IngestLimitOptions;
}

export interface IngestEvents {
  "node-connected": [session: Session];
  "node-disconnected": [session: Session];
  "config-ack": [session: Session, ack: ConfigAck];
  "probe-result": [session: Session, result: ProbeResult];
  /** A batch counted for the first time, after its durable write (windows as converted on arrival). */
  batch: [session: Session, batch: DecodedBatch];
  /** A replayed batch, acknowledged and not counted again (metrics). */
  duplicate: [session: Session, batch: DecodedBatch];
}

/** What the ingest refused, in total (per node: the node record). */
export interface IngestCounters {
  rejectedBatches: number;
  rejectedByCode: Record<string, number>;
  refusedHellos: number;
  refusedProbeResults: number;
  /** Writes that failed (each ended the affected streams with UNAVAILABLE). */
  failedWrites: number;
}

/** Messages waiting to go out on one session before it is ended as not reading. */
export const MAX_OUTBOUND = 4096;

/** A live stream from one sidecar. */
export class Session {
  readonly id = randomUUID();
  readonly outbound = new AsyncQueue<CentralMessage>();
  node: NodeRecord | undefined;
  hello: Hello | undefined;
  peer: PeerIdentity | undefined;
  /** Origins named in hello: batches may report only on these. */
  declaredOrigins: Set<string> | undefined;
  /** Probes sent on this session: the only ones it may answer. */
  readonly probes = new IssuedProbes();
  /** Refusal codes already logged on this session (each is logged once, then only counted). */
  readonly loggedRefusals = new Set<string>();
  /** Acks still waiting for their write (delivered before the call ends on a half-close). */
  readonly pending = new Set<Promise<unknown>>();

  track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /**
   * Queue a message to the sidecar; false when the session is closed. A
   * sidecar that does not read what it is sent (MAX_OUTBOUND waiting) is ended
   * with RESOURCE_EXHAUSTED: its acks would otherwise pile up without bound.
   */
  send(msg: NonNullable<MessageInitShape<typeof CentralMessageSchema>["kind"]>): boolean {
    if (this.closed) return false;
    if (this.outbound.size >= MAX_OUTBOUND) {
      this.close(new ConnectError(`the sidecar does not read the central's messages (${MAX_OUTBOUND} waiting) [CENTRAL_BAD_MESSAGE]`, Code.ResourceExhausted));
      return false;
    }
    if (msg.case === "probeRequest") this.probes.issue(msg.value as ProbeRequestFields, Date.now());
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

const storageUnavailable = () => new ConnectError("central storage unavailable, retry later [CENTRAL_DATA_UNAVAILABLE]", Code.Unavailable);

/** The message with its batch decoded (batch-decoder.ts); a batch that does not decode ends the stream. */
type InboundMessage = Exclude<SidecarMessageView["kind"], { case: "batch" }> | { case: "batch"; value: DecodedBatch };

function decodeInbound(msg: SidecarMessageView): InboundMessage {
  if (msg.kind.case !== "batch") return msg.kind;
  try {
    const batch = decodeBatch(msg.kind.value);
    batch.bytes = msg.kind.value;
    return { case: "batch", value: batch };
  } catch (err) {
    throw new CentralError("CENTRAL_BAD_MESSAGE", `cannot decode SidecarMessage.batch (${(err as Error).message})`);
  }
}

/** A skew beyond a year is reported as a year (the record keeps a plain number). */
const MAX_SKEW_MS = 365 * 24 * 3600_000;

export class Ingest extends EventEmitter<IngestEvents> {
  /** Live sessions by node_id (one per node: a newer one replaces the older). */
  readonly sessions = new Map<string, Session>();
  readonly counters: IngestCounters = { rejectedBatches: 0, rejectedByCode: {}, refusedHellos: 0, refusedProbeResults: 0, failedWrites: 0 };
  /** Highest seq accepted per node, written or being written (duplicate detection); absent: the durable mark. */
  private accepted = new Map<string, bigint>();
  /** Origins known to the central (durable or being written): what the origin cap counts. */
  private knownOrigins: Set<string>;
  private readonly buckets: NodeBuckets;

  constructor(private state: IngestState) {
    super();
    this.knownOrigins = new Set(state.totals.keys());
    this.buckets = new NodeBuckets(state.limits.ingestRatePerSec, state.limits.ingestBurst);
    state.committer.onFailure = (nodes, err) => this.onWriteFailed(nodes, err);
  }

  /**
   * The handler of IngestService.Stream, served with sidecar-message-view.ts's
   * ingestStreamMethod (the batch arrives as bytes and is decoded here).
   */
  impl(): { stream(requests: AsyncIterable<SidecarMessageView>, ctx: HandlerContext): AsyncIterable<CentralMessage> } {
    const self = this;
    return {
      async *stream(requests: AsyncIterable<SidecarMessageView>, ctx: HandlerContext) {
        const session = new Session();
        session.peer = ctx.values.get(peerKey);
        const reader = (async () => {
          for await (const raw of requests) {
            if (session.closed) break;
            const msg = decodeInbound(raw);
            if (session.node) {
              // Charged by what costs, per node across its streams: a reconnect does not refill it.
              const wait = self.buckets.of(session.node.nodeId).take(self.costOf(msg));
              if (wait > 0) await sleep(wait);
              if (session.closed) break;
            }
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

  /**
   * Tokens a message costs: a batch its windows and exemplars (at least 1).
   * A batch over the per-batch caps (so over what the bucket may ever hold)
   * costs 1: it is refused at once, before any per-window work.
   */
  private costOf(msg: InboundMessage): number {
    if (msg.case !== "batch") return 1;
    const b = msg.value;
    const l = this.state.limits;
    if (b.windows.length > windowsPerBatchOf(l) || b.exemplars.length > exemplarsPerBatchOf(l)) return 1;
    return Math.max(1, b.windows.length + b.exemplars.length);
  }

  private async handle(session: Session, msg: InboundMessage): Promise<void> {
    switch (msg.case) {
      case "hello":
        return this.onHello(session, msg.value);
      case "batch":
        if (!session.node) throw new CentralError("CENTRAL_HELLO_REQUIRED", "the first message on a stream must be hello");
        return this.onBatch(session, msg.value);
      case "configAck":
        if (!session.node) throw new CentralError("CENTRAL_HELLO_REQUIRED", "the first message on a stream must be hello");
        validateConfigAck(msg.value);
        this.emit("config-ack", session, msg.value);
        return;
      case "probeResult":
        if (!session.node) throw new CentralError("CENTRAL_HELLO_REQUIRED", "the first message on a stream must be hello");
        return this.onProbeResult(session, msg.value);
      default:
        throw new CentralError("CENTRAL_BAD_MESSAGE", "message has no known kind (empty oneof or a newer sidecar)");
    }
  }

  private async onHello(session: Session, hello: Hello): Promise<void> {
    if (session.node) throw new CentralError("CENTRAL_BAD_MESSAGE", "hello sent twice on one stream");
    const { limits } = this.state;
    let id;
    try {
      id = validateHello(hello, limits);
      if (this.state.requireNodeCert) checkNodeBinding(session.peer ?? { authorized: false, names: [], tls: false }, id.nodeId);
      if (!this.state.nodes.has(id.nodeId) && this.state.nodes.size >= limits.maxNodes) {
        throw new CentralError("CENTRAL_NODE_LIMIT", `the central keeps at most ${limits.maxNodes} nodes (--max-nodes) and node ${id.nodeId} is new`);
      }
    } catch (err) {
      this.counters.refusedHellos++;
      throw err;
    }
    const now = Date.now();
    const prev = this.state.nodes.get(id.nodeId);
    const labels = this.state.nodeLabels?.resolve(id.nodeId, id) ?? { isp: id.isp, region: id.region, mismatch: "", unlisted: false };
    if (labels.mismatch) this.state.log.warn({ node: id.nodeId, mismatch: labels.mismatch }, "node labels disagree with the allowlist; using the allowlist");
    else if (labels.unlisted) this.state.log.warn({ node: id.nodeId, isp: id.isp, region: id.region }, "node not in the labels allowlist; using its claimed labels");
    const origins = [...new Set(hello.origins)];
    const node: NodeRecord = {
      nodeId: id.nodeId,
      isp: labels.isp,
      region: labels.region,
      labelMismatch: labels.mismatch,
      labelMismatches: (BigInt(prev?.labelMismatches || "0") + (labels.mismatch ? 1n : 0n)).toString(),
      version: id.version,
      origins,
      lastSeenMs: now,
      connectedSinceMs: now,
      appliedConfigVersion: hello.appliedConfigVersion.toString(),
      lastNackReason: prev?.lastNackReason ?? "",
      bufferedBatches: prev?.bufferedBatches ?? "0",
      droppedBatches: prev?.droppedBatches ?? "0",
      rejectedBatches: prev?.rejectedBatches ?? 0,
      lastRejectReason: prev?.lastRejectReason ?? "",
      reportedRejectedBatches: prev?.reportedRejectedBatches ?? "0",
      clockSkewMs: prev?.clockSkewMs ?? 0,
      refusedProbeResults: prev?.refusedProbeResults ?? 0,
    };
    this.state.nodes.set(node.nodeId, node);
    session.node = node;
    session.hello = hello;
    session.declaredOrigins = new Set(origins);
    const older = this.sessions.get(node.nodeId);
    this.sessions.set(node.nodeId, session);
    if (older && older !== session) {
      older.close(new ConnectError(`replaced by a newer session of node ${node.nodeId}`, Code.Aborted));
    }
    try {
      // Writes are sequential: once this one is durable, so is every batch accepted before it.
      await this.state.committer.saveNode(node);
      // Cluster mode: the mark is cluster-wide (the node may have been on another replica).
      const mark = await this.state.committer.highWaterOf?.(node.nodeId);
      if (mark !== undefined && mark > (this.state.highWater.get(node.nodeId) ?? 0n)) this.state.highWater.set(node.nodeId, mark);
    } catch {
      throw storageUnavailable();
    }
    session.send({
      case: "welcome",
      value: {
        sessionId: session.id,
        highWaterSeq: this.state.highWater.get(node.nodeId) ?? 0n,
        serverTimeUnixMs: BigInt(Date.now()),
        limits: advertisedLimits(limits),
      },
    });
    this.state.log.info({ node: node.nodeId, isp: node.isp, region: node.region, session: session.id }, "sidecar connected");
    this.emit("node-connected", session);
  }

  private onBatch(session: Session, batch: DecodedBatch): void {
    if (session.closed) return;
    const node = session.node!;
    const now = Date.now();
    const accepted = this.accepted.get(node.nodeId) ?? this.state.highWater.get(node.nodeId) ?? 0n;
    checkSeq(batch.seq, accepted);
    node.lastSeenMs = now;
    node.bufferedBatches = batch.bufferedBatches.toString();
    node.droppedBatches = batch.droppedBatches.toString();
    node.reportedRejectedBatches = batch.rejectedBatches.toString();
    node.clockSkewMs = Math.max(-MAX_SKEW_MS, Math.min(MAX_SKEW_MS, Number(batch.clockSkewMs)));
    const seq = batch.seq;
    if (seq <= accepted) {
      // Replay of a batch already counted (or being written): acknowledge once
      // its write is durable, never count it twice.
      this.emit("duplicate", session, batch);
      session.track(
        this.state.committer.barrier().then(
          () => session.send({ case: "batchAck", value: { seq, serverTimeUnixMs: BigInt(Date.now()) } }),
          () => session.close(storageUnavailable()),
        ),
      );
      return;
    }
    const problem = batchProblem(batch, { nowMs: now, declared: session.declaredOrigins!, limits: this.state.limits }) ?? this.originCapProblem(batch);
    if (problem) return this.refuse(session, seq, problem);
    this.accepted.set(node.nodeId, seq);
    // Summed as numbers (exact: a batch is at most a few thousand capped windows), BigInt once per origin.
    const sums = new Map<string, { requests: number; failures: number }>();
    const w = batch.windows;
    for (let i = 0; i < w.length; i++) {
      let d = sums.get(w.origin[i]);
      if (!d) sums.set(w.origin[i], (d = { requests: 0, failures: 0 }));
      d.requests += completedAt(w, i);
      d.failures += completedFailuresAt(w, i);
    }
    const deltas = new Map<string, TotalsDelta>();
    for (const [origin, d] of sums) deltas.set(origin, { requests: BigInt(d.requests), failures: BigInt(d.failures), atMs: now });
    // Not awaited: the next message is read while this one is written; acks
    // still go out in order because the committer completes writes in order.
    session.track(
      this.state.committer.commitBatch(node.nodeId, seq, deltas, node, batch).then(
        () => {
          this.apply(session, node, batch);
          session.send({ case: "batchAck", value: { seq, serverTimeUnixMs: BigInt(Date.now()) } });
        },
        () => session.close(storageUnavailable()),
      ),
    );
  }

  /** A durable batch reaches memory: exemplars, listeners (the verdict's lookback and history). */
  private apply(session: Session, node: NodeRecord, batch: DecodedBatch): void {
    if (batch.exemplars.length > 0) this.state.exemplars?.add(node.nodeId, batch.exemplars);
    this.emit("batch", session, batch);
  }

  /** A batch that would make the central know more origins than --max-origins. */
  private originCapProblem(batch: DecodedBatch): Refusal | undefined {
    let fresh: Set<string> | undefined;
    const origins = batch.windows.origin;
    for (let i = 0; i < origins.length; i++) {
      if (!this.knownOrigins.has(origins[i])) (fresh ??= new Set()).add(origins[i]);
    }
    if (!fresh) return undefined;
    const max = this.state.limits.maxOrigins;
    if (this.knownOrigins.size + fresh.size > max) {
      return {
        code: "CENTRAL_ORIGIN_LIMIT",
        reason: `batch.windows would add ${fresh.size} new origins (e.g. ${JSON.stringify([...fresh][0])}) to the ${this.knownOrigins.size} the central knows, more than ${max} (--max-origins)`,
      };
    }
    for (const o of fresh) this.knownOrigins.add(o);
    return undefined;
  }

  /** BatchReject: never counted, counted as refused, the stream reads on. */
  private refuse(session: Session, seq: bigint, r: Refusal): void {
    const node = session.node!;
    node.rejectedBatches = (node.rejectedBatches ?? 0) + 1;
    node.lastRejectReason = `${r.code}: ${r.reason}`;
    this.counters.rejectedBatches++;
    this.counters.rejectedByCode[r.code] = (this.counters.rejectedByCode[r.code] ?? 0) + 1;
    this.logRefusal(session, r, { seq: seq.toString() }, "batch refused for good (BatchReject)");
    session.send({ case: "batchReject", value: { seq, code: r.code, reason: r.reason } });
    // The count survives a restart; a failed write here loses only that count.
    this.state.committer.saveNode(node).catch(() => {});
  }

  private onProbeResult(session: Session, r: ProbeResult): void {
    const problem = session.probes.check(r, Date.now());
    if (problem) {
      const node = session.node!;
      node.refusedProbeResults = (node.refusedProbeResults ?? 0) + 1;
      this.counters.refusedProbeResults++;
      this.logRefusal(session, problem, { probeId: r.probeId.slice(0, 64) }, "probe result refused");
      return;
    }
    this.emit("probe-result", session, r);
  }

  /** Logs the first refusal of each code on a session; the rest are only counted. */
  private logRefusal(session: Session, r: Refusal, extra: Record<string, unknown>, msg: string): void {
    if (session.loggedRefusals.has(r.code)) return;
    session.loggedRefusals.add(r.code);
    this.state.log.warn({ node: session.node?.nodeId, session: session.id, code: r.code, reason: r.reason, ...extra }, msg);
  }

  /** A write failed: what those nodes sent since their durable mark is lost; end their streams so they replay. */
  private onWriteFailed(nodes: ReadonlySet<string>, err: unknown): void {
    this.counters.failedWrites++;
    this.state.log.error({ err, nodes: [...nodes].slice(0, 20), count: nodes.size }, "cannot persist batches; ending those streams so the sidecars replay them");
    for (const id of nodes) {
      this.accepted.delete(id);
      this.sessions.get(id)?.close(storageUnavailable());
    }
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

  /** Resolves once every counted-batch write issued so far is done. */
  settled(): Promise<void> {
    return this.state.committer.settled();
  }

  isConnected(nodeId: string): boolean {
    return this.sessions.has(nodeId);
  }

  /**
   * Forget an origin in memory (operator forget, ageing out): its totals
   * and exemplars, and its place under --max-origins. Deleting
   * it from the store is the caller's part. A sidecar reporting it again
   * starts it afresh.
   */
  forgetOrigin(origin: string): boolean {
    const known = this.knownOrigins.delete(origin);
    const had = this.state.totals.delete(origin);
    this.state.exemplars?.forget(origin);
    return known || had;
  }

  /**
   * Forget a node in memory (operator forget, ageing out): its record, its
   * throttle bucket and its high-water mark, and its
   * place under --max-nodes. A node with a live session is refused
   * (CENTRAL_NODE_CONNECTED). Deleting it from the store is the caller's part.
   * A node that comes back starts from seq 0 again. False when unknown.
   */
  forgetNode(nodeId: string): boolean {
    if (this.sessions.has(nodeId)) {
      throw new CentralError("CENTRAL_NODE_CONNECTED", `node ${nodeId} has a live session: stop its sidecar (or wait until it disconnects) before forgetting it`);
    }
    const known = this.state.nodes.delete(nodeId);
    this.state.highWater.delete(nodeId);
    this.accepted.delete(nodeId);
    this.buckets.forget(nodeId);
    return known;
  }

  /** Sizes and refusal counts, for metrics and tests. */
  stats() {
    return {
      ...this.counters,
      rejectedByCode: { ...this.counters.rejectedByCode },
      origins: this.knownOrigins.size,
      nodes: this.state.nodes.size,
      sessions: this.sessions.size,
      exemplars: this.state.exemplars?.size ?? 0,
      pendingWrites: this.state.committer.waiting,
    };
  }

  /** Close every session (shutdown). */
  closeAll(): void {
    for (const s of this.sessions.values()) s.close(new ConnectError("central shutting down", Code.Unavailable));
  }
}
