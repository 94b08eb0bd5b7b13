/**
 * The one bidi gRPC stream to the central (grpc-js over the protobuf-es bridge).
 *
 * Contract: send() never blocks and never throws — the request path only ever
 * calls send() through the window ticker (fail-open). Batches are numbered
 * 1, 2, 3… per node, kept until acknowledged (BatchAck is cumulative; Welcome's
 * high_water_seq acknowledges too) and replayed on every new stream.
 *
 * Several centrals (central-endpoints.ts, endpoint-picker.ts): one stream at a
 * time, to the address the node id hashes to among those in good standing;
 * when it ends for any reason the next one in good standing is opened at once
 * (a failed address waits its own backoff), and the replay goes there. A
 * batch once written keeps its seq and bytes on every central (conformBuffer),
 * so replicas can count it once by (node, seq).
 *
 * Permanent vs transient (DESIGN.md §6):
 * - no batch is ever over the central's limits (limits.ts; split in
 *   batch-split.ts, each part its own seq);
 * - BatchReject{seq}: that batch is dropped from the replay buffer, counted by
 *   code (rejections.ts), its reason logged once per code; the stream goes on;
 * - the stream ends with UNAVAILABLE, INTERNAL, CANCELLED, DEADLINE_EXCEEDED
 *   (or anything else not below): transient, reconnect with backoff and replay;
 * - RESOURCE_EXHAUSTED "message too large": the limit is learned and the held
 *   batches are split under it at the next Welcome (a single item that cannot
 *   fit is dropped, counted as SIDECAR_MESSAGE_TOO_LARGE);
 * - INVALID_ARGUMENT (or UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED)
 *   before Welcome: the central refuses this sidecar's Hello — a configuration error, logged loudly,
 *   retried at the maximum backoff; proxying is never affected;
 * - INVALID_ARGUMENT after Welcome (a central without BatchReject): when the same
 *   head batch ends two streams in a row it is dropped, counted, and the rest flow.
 * Clock skew is sampled from Welcome and BatchAck server times (clock-skew.ts)
 * and reported in every batch.
 */
import { isIP } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { NodeIdentity } from "../../proto/gen/originwatch/v1/common_pb.js";
import { NodeIdentitySchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import {
  type Batch,
  BatchSchema,
  type CentralMessage,
  type ConfigPush,
  IngestService,
  type ProbeRequest,
  type SidecarMessage,
  SidecarMessageSchema,
  type WindowSummary,
} from "../../proto/gen/originwatch/v1/ingest_pb.js";
import type { Exemplar } from "../../proto/gen/originwatch/v1/common_pb.js";
import { grpcService } from "../../proto/grpc-bridge.js";
import { BACKOFF } from "./backoff.js";
import { splitBatch } from "./batch-split.js";
import { type CentralEndpoint, type CentralUrl, type ResolveHost, dnsServerResolve, grpcTarget, literalEndpoints, parseCentrals, resolveCentrals, systemResolve } from "./central-endpoints.js";
import { EndpointPicker } from "./endpoint-picker.js";
import { ClockSkew } from "./clock-skew.js";
import { DEFAULT_INGEST_LIMITS, type StreamLimits, limitsFromWelcome } from "./limits.js";
import { type StreamEnd, classifyEnd } from "./stream-end.js";
import { type BufferedBatch, ReplayBuffer } from "./replay-buffer.js";
import { INVALID_ARGUMENT_CODE, Rejections, TOO_LARGE_CODE } from "./rejections.js";

/**
 * The grpc-js definition of IngestService.Stream whose request serialiser
 * passes pre-encoded messages (the replay buffer's bytes) through unchanged.
 */
function ingestDefinition(): grpc.ServiceDefinition {
  const def = grpcService(IngestService) as Record<string, grpc.MethodDefinition<unknown, unknown>>;
  const stream = def.stream;
  def.stream = {
    ...stream,
    requestSerialize: (v: unknown) =>
      v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : Buffer.from(toBinary(SidecarMessageSchema, v as SidecarMessage)),
  };
  return def as grpc.ServiceDefinition;
}

export type StreamState = "idle" | "connecting" | "connected" | "backoff" | "closed";
export const STREAM_STATES: readonly StreamState[] = ["idle", "connecting", "connected", "backoff", "closed"];

/** The picker's key for "no central resolved to any address" (its backoff grows like an address's). */
const NO_ADDRESS = "";

/** How long a rebalancing stream waits for the preferred central's connection before it stays where it is. */
export const REBALANCE_CONNECT_MS = 2000;

/** INVALID_ARGUMENT endings after Welcome with the same head batch before it is dropped (older centrals). */
export const HEAD_REFUSALS_BEFORE_DROP = 2;

export type StreamLogLevel = "info" | "warn" | "error";

export interface StreamClientOptions {
  /**
   * The centrals: http://host:port (plaintext h2c) or https://host:port, one
   * or several (a comma-separated string or a list); a name stands for every
   * address it resolves to (central-endpoints.ts). One stream at a time.
   */
  central: string | readonly string[];
  /** DNS server for central names (default: the system resolver); re-asked before every connect. */
  resolver?: { host: string; port: number };
  /**
   * With several centrals: every this long (±20 %) a connected stream checks
   * whether another central is now preferred (a replica came back, DNS lists
   * a new one) and moves there after its written batches are acknowledged.
   * 0 (default): a stream stays while it works.
   */
  rebalanceMs?: number;
  node: { nodeId: string; isp: string; region: string; version?: string };
  origins: string[];
  /** Bound of the replay buffer in encoded bytes (default 64 MiB). */
  bufferBytes?: number;
  /** Bound of the replay buffer in batches (default: bytes only). */
  maxBufferedBatches?: number;
  capabilities?: string[];
  appliedConfigVersion?: () => bigint;
  /** Channel keepalive (DESIGN.md: ≥ 30 s time, 10 s timeout). */
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** A stream without Welcome after this long is restarted. */
  welcomeTimeoutMs?: number;
  /** A stream with sent batches but no ack for this long is restarted (a stuck stream on a live connection). */
  ackTimeoutMs?: number;
  /** CA (PEM) for an https central. */
  ca?: Buffer;
  /** Client certificate and key (PEM) for mTLS. */
  cert?: Buffer;
  key?: Buffer;
  onState?: (state: StreamState) => void;
  onConfigPush?: (push: ConfigPush) => void;
  onProbeRequest?: (req: ProbeRequest) => void;
  /** The central asks for the origin's open window now (FlushWindows, issue 13). */
  onFlushWindows?: (origin: string) => void;
  /** n batches dropped for good under `code` (a bounded label: rejections.ts). */
  onRejected?: (code: string, n: number) => void;
  /** Clock-skew measurement and correction shared with the recorder (default: its own, on Date.now). */
  skew?: ClockSkew;
  log?: (level: StreamLogLevel, msg: string, fields?: Record<string, unknown>) => void;
}

type Duplex = grpc.ClientDuplexStream<SidecarMessage | Uint8Array, CentralMessage>;

export class StreamClient {
  private readonly opts: StreamClientOptions;
  private readonly buffer: ReplayBuffer;
  private client?: grpc.Client & { stream(): Duplex };
  private readonly centrals: readonly CentralUrl[];
  /** Every address of every central, as last resolved. */
  private endpoints: CentralEndpoint[] = [];
  /** The endpoint `client` talks to. */
  private endpoint?: CentralEndpoint;
  private readonly picker: EndpointPicker<CentralEndpoint>;
  private readonly resolveHost: ResolveHost;
  /** Some central is a name: resolve before every connect. */
  private readonly named: boolean;
  private call?: Duplex;
  private nextSeq = 1n;
  private sentThrough = 0n;
  private welcomed = false;
  private everWelcomed = false;
  private blocked = false;
  private timer?: NodeJS.Timeout;
  private welcomeTimer?: NodeJS.Timeout;
  private rebalanceTimer?: NodeJS.Timeout;
  /** Moving to a preferred central: nothing new is written until the written batches are acknowledged. */
  private draining = false;
  private _state: StreamState = "idle";
  /** When the stream last showed progress (Welcome, an ack or a reject). */
  private progressAt = 0;
  /** When this stream's Hello was written (local clock; RTT of the Welcome). */
  private helloSentAt = 0;
  /** A message cap learned from RESOURCE_EXHAUSTED (never raised again). */
  private learnedMaxBytes = Number.POSITIVE_INFINITY;
  /** The head batch that ended streams with INVALID_ARGUMENT, and how often in a row. */
  private headRefusals = { seq: 0n, count: 0 };
  private warnedOrigins = false;
  private _limits: StreamLimits = { ...DEFAULT_INGEST_LIMITS };
  readonly skew: ClockSkew;
  readonly rejections = new Rejections();
  /** Highest seq the central acknowledged. */
  ackedSeq = 0n;
  /** Streams opened (for metrics and tests). */
  connects = 0;
  /** Streams opened to another central than the one before (failovers and rebalancing). */
  moves = 0;
  /** Extra batches made by splitting (a tick's output, or a held batch after a smaller limit). */
  splitBatches = 0;
  /** Largest encoded batch written to a stream (compare with limits.maxMessageBytes). */
  largestSentBytes = 0;
  /** Why the central last refused this sidecar's Hello (cleared by a Welcome). */
  configError: string | undefined;
  /** How the last stream ended. */
  lastEnd: { kind: StreamEnd; code?: number; details?: string } | undefined;

  constructor(opts: StreamClientOptions) {
    this.opts = opts;
    this.buffer = new ReplayBuffer(opts.bufferBytes ?? 64 * 1024 * 1024, opts.maxBufferedBatches);
    this.centrals = parseCentrals(opts.central);
    this.named = this.centrals.some((c) => isIP(c.host) === 0);
    this.resolveHost = opts.resolver ? dnsServerResolve(opts.resolver) : systemResolve;
    this.picker = new EndpointPicker({ nodeId: opts.node.nodeId, initialBackoffMs: opts.initialBackoffMs, maxBackoffMs: opts.maxBackoffMs });
    this.skew = opts.skew ?? new ClockSkew();
  }

  get state(): StreamState {
    return this._state;
  }
  get bufferedBatches(): number {
    return this.buffer.size;
  }
  get bufferedBytes(): number {
    return this.buffer.bytes;
  }
  get droppedBatches(): number {
    return this.buffer.dropped;
  }
  /** Batches dropped for good: refused by the central or too large to send (cumulative). */
  get rejectedBatches(): number {
    return this.rejections.total;
  }
  /** The central's limits in force (defaults until a Welcome states them). */
  get limits(): Readonly<StreamLimits> {
    return this._limits;
  }
  /** The stream's figures for the admin /status page (JSON-serialisable). */
  status(): Record<string, unknown> {
    return {
      state: this._state,
      central: this.central,
      connects: this.connects,
      moves: this.moves,
      ackedSeq: this.ackedSeq.toString(),
      nextSeq: this.nextSeq.toString(),
      bufferedBatches: this.buffer.size,
      bufferedBytes: this.buffer.bytes,
      droppedBatches: this.buffer.dropped,
      rejectedBatches: this.rejections.total,
      rejectedByCode: this.rejections.counts(),
      splitBatches: this.splitBatches,
      largestSentBytes: this.largestSentBytes,
      limits: { ...this._limits },
      clockSkew: { estimateMs: this.skew.estimateMs, appliedMs: this.skew.appliedMs, samples: this.skew.samples },
      ...(this.configError !== undefined ? { configError: this.configError } : {}),
      ...(this.lastEnd ? { lastEnd: this.lastEnd } : {}),
    };
  }
  /** The central endpoint ("url@address") of the current or last stream. */
  get central(): string | undefined {
    return this.endpoint?.key;
  }
  /** seq the next batch will get. */
  get seq(): bigint {
    return this.nextSeq;
  }

  private setState(s: StreamState): void {
    if (this._state === s) return;
    this._state = s;
    this.opts.onState?.(s);
  }

  start(): void {
    if (this._state !== "idle") return;
    this.connect();
  }

  /** A channel to one endpoint; a name keeps its own authority and TLS name when connected by address. */
  private channelTo(ep: CentralEndpoint): grpc.Client & { stream(): Duplex } {
    const c = ep.central;
    const creds = c.tls ? grpc.credentials.createSsl(this.opts.ca ?? null, this.opts.key ?? null, this.opts.cert ?? null) : grpc.credentials.createInsecure();
    const byName = isIP(c.host) === 0;
    const Ctor = grpc.makeGenericClientConstructor(ingestDefinition(), "IngestService");
    return new Ctor(grpcTarget(ep), creds, {
      "grpc.keepalive_time_ms": this.opts.keepaliveTimeMs ?? 30_000,
      "grpc.keepalive_timeout_ms": this.opts.keepaliveTimeoutMs ?? 10_000,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.initial_reconnect_backoff_ms": this.opts.initialBackoffMs ?? BACKOFF.initialMs,
      "grpc.max_reconnect_backoff_ms": this.opts.maxBackoffMs ?? BACKOFF.maxMs,
      "grpc.max_receive_message_length": 4 * 1024 * 1024,
      ...(byName ? { "grpc.default_authority": `${c.host}:${c.port}` } : {}),
      ...(byName && c.tls ? { "grpc.ssl_target_name_override": c.host } : {}),
    }) as unknown as grpc.Client & { stream(): Duplex };
  }

  /**
   * Queue one tick's windows and exemplars, split into as many batches as the
   * central's limits require; they are sent now if the stream is up, else on
   * reconnect. Never throws, never waits.
   */
  send(windows: WindowSummary[], exemplars: Exemplar[] = []): void {
    if (this._state === "closed") return;
    try {
      const { parts, tooLarge } = splitBatch(windows, exemplars, this._limits);
      if (tooLarge > 0) this.dropForGood(TOO_LARGE_CODE, tooLarge, `a window or exemplar alone is over the central's message limit of ${this._limits.maxMessageBytes} bytes`);
      if (parts.length > 1) this.splitBatches += parts.length - 1;
      for (const p of parts) this.buffer.push(this.batchOf(p.windows, p.exemplars, this.nextSeq++), this.skew.appliedMs);
      this.checkStuck();
      this.flush();
    } catch (err) {
      this.opts.log?.("warn", "could not queue a batch", { error: err instanceof Error ? err.message : String(err) });
    }
  }

  private batchOf(windows: WindowSummary[], exemplars: Exemplar[], seq: bigint): Batch {
    return create(BatchSchema, {
      seq,
      windows,
      exemplars,
      droppedBatches: BigInt(this.buffer.dropped),
      bufferedBatches: BigInt(this.buffer.size),
      clockSkewMs: BigInt(this.skew.estimateMs),
      rejectedBatches: BigInt(this.rejections.total),
    });
  }

  /** Count n batches dropped for good; the reason is logged the first time a code is seen. */
  private dropForGood(code: string, n: number, reason: string, seq?: bigint): void {
    const { label, first } = this.rejections.record(code, n);
    this.opts.onRejected?.(label, n);
    if (first) {
      this.opts.log?.("warn", "dropping a batch the central will never accept (logged once per code; see originwatch_sidecar_stream_rejected_batches_total)", {
        code,
        reason: reason.slice(0, 512),
        ...(seq !== undefined ? { seq: seq.toString() } : {}),
      });
    }
  }

  private checkStuck(): void {
    const call = this.call;
    if (!call || !this.welcomed) return;
    const first = this.buffer.first();
    if (!first || first.seq > this.sentThrough) return;
    if (Date.now() - this.progressAt > (this.opts.ackTimeoutMs ?? 30_000)) {
      this.opts.log?.("warn", "central stopped acknowledging; restarting stream", { oldestUnacked: first.seq.toString() });
      this.lost(call, new Error("ack timeout"));
    }
  }

  /** Send any message on the live stream (config acks, probe results); dropped when down. */
  sendMessage(msg: SidecarMessage): boolean {
    if (!this.call || !this.welcomed) return false;
    try {
      this.call.write(msg);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Stop: wait up to drainMs for acks of what is buffered (when connected),
   * then close the stream and channel. Idempotent, safe before start().
   */
  async shutdown(drainMs = 0): Promise<void> {
    if (this._state === "closed") return;
    if (drainMs > 0 && this.call && this.welcomed && this.buffer.size > 0) {
      const deadline = Date.now() + drainMs;
      while (this.buffer.size > 0 && this.call && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    this.setState("closed");
    if (this.timer) clearTimeout(this.timer);
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    if (this.rebalanceTimer) clearTimeout(this.rebalanceTimer);
    const call = this.call;
    this.call = undefined;
    if (call) {
      try {
        call.end();
        call.cancel();
      } catch {
        /* already gone */
      }
    }
    this.client?.close();
  }

  /** Resolve the centrals' names again (when there are any), then open a stream to the picked endpoint. */
  private connect(): void {
    if (this._state === "closed") return;
    this.setState("connecting");
    this.connects++;
    this.welcomed = false;
    this.blocked = false;
    this.sentThrough = 0n;
    if (!this.named) {
      if (this.endpoints.length === 0) this.endpoints = literalEndpoints(this.centrals);
      this.open();
      return;
    }
    void resolveCentrals(this.centrals, this.resolveHost, this.endpoints).then((eps) => {
      if (this._state !== "connecting" || this.call) return;
      this.endpoints = eps;
      this.picker.retain([...eps.map((e) => e.key), NO_ADDRESS]);
      this.open();
    });
  }

  private open(): void {
    const ep = this.picker.pick(this.endpoints, Date.now())?.endpoint;
    if (!ep) {
      this.endpoint = undefined;
      this.lost(undefined, new Error(`no address for ${this.centrals.map((c) => c.url).join(", ")}`));
      return;
    }
    if (!this.client || this.endpoint?.key !== ep.key) {
      if (this.client && this.endpoint) this.moves++;
      this.client?.close();
      this.client = this.channelTo(ep);
      this.endpoint = ep;
    }
    let call: Duplex;
    try {
      call = this.client.stream();
    } catch (err) {
      this.lost(undefined, err);
      return;
    }
    this.call = call;
    call.on("data", (m: CentralMessage) => this.onMessage(call, m));
    call.on("error", (err: Error) => this.lost(call, err));
    call.on("end", () => this.lost(call, undefined));
    call.on("status", () => {});
    this.welcomeTimer = setTimeout(() => {
      if (this.call === call && !this.welcomed) {
        this.opts.log?.("warn", "no Welcome from central; restarting stream");
        this.lost(call, new Error("welcome timeout"));
      }
    }, this.opts.welcomeTimeoutMs ?? 10_000);
    this.welcomeTimer.unref();
    this.helloSentAt = this.skew.clock();
    const node: NodeIdentity = create(NodeIdentitySchema, {
      nodeId: this.opts.node.nodeId,
      isp: this.opts.node.isp,
      region: this.opts.node.region,
      version: this.opts.node.version ?? "",
    });
    call.write(
      create(SidecarMessageSchema, {
        kind: {
          case: "hello",
          value: {
            node,
            origins: this.opts.origins,
            appliedConfigVersion: this.opts.appliedConfigVersion?.() ?? 0n,
            capabilities: this.opts.capabilities ?? [],
          },
        },
      }),
    );
  }

  private onMessage(call: Duplex, m: CentralMessage): void {
    if (call !== this.call) return;
    switch (m.kind.case) {
      case "welcome": {
        const hw = m.kind.value.highWaterSeq;
        this.skew.sample(this.helloSentAt, this.skew.clock(), m.kind.value.serverTimeUnixMs);
        this._limits = limitsFromWelcome(m.kind.value.limits, this.learnedMaxBytes);
        if (this.opts.origins.length > this._limits.maxOriginsPerNode && !this.warnedOrigins) {
          this.warnedOrigins = true;
          this.opts.log?.("error", "this sidecar declares more origins than the central accepts per node; windows of the extra origins will be refused", {
            origins: this.opts.origins.length,
            maxOriginsPerNode: this._limits.maxOriginsPerNode,
          });
        }
        const first = this.buffer.first()?.seq ?? this.nextSeq;
        if (!this.everWelcomed && hw >= first) {
          // A restarted sidecar: nothing it buffered was ever delivered, so renumber above the mark.
          const delta = hw + 1n - first;
          this.buffer.shift(delta);
          this.nextSeq += delta;
          this.opts.log?.("info", "resuming sequence above central high-water mark", { highWaterSeq: hw.toString(), nextSeq: this.nextSeq.toString() });
        } else {
          if (hw >= this.nextSeq) {
            // Above anything this sidecar numbered: replicas disagree on the node's mark (ingest.proto, Welcome).
            this.opts.log?.("warn", "the central's high-water mark is above every seq this sidecar has sent; its replicas may not share the node's mark", {
              central: this.endpoint?.key,
              highWaterSeq: hw.toString(),
              nextSeq: this.nextSeq.toString(),
            });
          }
          this.ack(hw);
        }
        // Every held seq is now above the central's high-water mark: none is stored, so they may be rewritten.
        this.conformBuffer();
        this.configError = undefined;
        this.everWelcomed = true;
        this.welcomed = true;
        this.progressAt = Date.now();
        if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
        if (this.endpoint) this.picker.succeeded(this.endpoint.key);
        this.setState("connected");
        this.opts.log?.("info", "stream connected", { central: this.endpoint?.key, sessionId: m.kind.value.sessionId, highWaterSeq: hw.toString() });
        this.scheduleRebalance(call);
        this.flush();
        return;
      }
      case "batchAck": {
        const sent = this.buffer.get(m.kind.value.seq)?.sentAtMs;
        if (sent !== undefined) this.skew.sample(sent, this.skew.clock(), m.kind.value.serverTimeUnixMs);
        this.ack(m.kind.value.seq);
        return;
      }
      case "batchReject": {
        const { seq, code, reason } = m.kind.value;
        // The central is alive and answering: never a reason for the ack timeout to restart the stream.
        this.progressAt = Date.now();
        if (this.buffer.remove(seq)) this.dropForGood(code || "UNSPECIFIED", 1, reason, seq);
        return;
      }
      case "configPush":
        this.opts.onConfigPush?.(m.kind.value);
        return;
      case "probeRequest":
        this.opts.onProbeRequest?.(m.kind.value);
        return;
      case "flushWindows":
        this.opts.onFlushWindows?.(m.kind.value.origin);
        return;
      default:
        return;
    }
  }

  private ack(seq: bigint): void {
    this.progressAt = Date.now();
    if (seq > this.ackedSeq) this.ackedSeq = seq;
    this.buffer.ackThrough(seq);
    if (seq >= this.headRefusals.seq) this.headRefusals = { seq: 0n, count: 0 };
  }

  /**
   * Bring the held batches within the limits in force and the clock-skew
   * correction in force: split what is over a limit (dropping, counted, an
   * item that cannot fit), shift times taken under another correction, and
   * number them again. A batch already written to a stream keeps its seq and
   * bytes (its identity on any central, replay-buffer.ts) unless it is over
   * a limit — then no central with these limits can have stored it. Only
   * right after a Welcome.
   */
  private conformBuffer(): void {
    const limits = this._limits;
    const applied = this.skew.appliedMs;
    let tooLarge = 0;
    const fits = (e: BufferedBatch) => e.bytes.length <= limits.maxMessageBytes && e.windows <= limits.maxWindowsPerBatch && e.exemplars <= limits.maxExemplarsPerBatch;
    const needs = (e: BufferedBatch) => !fits(e) || e.skewMs !== applied;
    const written = (e: BufferedBatch) => e.sentAtMs !== undefined && fits(e);
    const transform = (b: Batch, e: BufferedBatch): Batch[] => {
      const delta = applied - e.skewMs;
      if (delta !== 0) retime(b, delta);
      if (fits(e)) return [b];
      const { parts, tooLarge: n } = splitBatch(b.windows, b.exemplars, limits);
      tooLarge += n;
      this.splitBatches += Math.max(0, parts.length - 1);
      return parts.map((p) => create(BatchSchema, { ...b, windows: p.windows, exemplars: p.exemplars }));
    };
    const next = this.buffer.rebuild(needs, transform, applied, written);
    if (next === undefined) return;
    this.nextSeq = next;
    if (tooLarge > 0) this.dropForGood(TOO_LARGE_CODE, tooLarge, `a window or exemplar alone is over the central's message limit of ${limits.maxMessageBytes} bytes`);
  }

  private flush(): void {
    const call = this.call;
    if (!call || !this.welcomed || this.blocked || this.draining) return;
    for (const b of this.buffer.after(this.sentThrough)) {
      this.sentThrough = b.seq;
      b.sentAtMs = this.skew.clock();
      if (b.bytes.length > this.largestSentBytes) this.largestSentBytes = b.bytes.length;
      let ok: boolean;
      try {
        ok = call.write(b.bytes);
      } catch (err) {
        this.lost(call, err);
        return;
      }
      if (!ok) {
        this.blocked = true;
        call.once("drain", () => {
          if (this.call !== call) return;
          this.blocked = false;
          this.flush();
        });
        return;
      }
    }
  }

  private scheduleRebalance(call: Duplex): void {
    const every = this.opts.rebalanceMs ?? 0;
    if (every <= 0 || (this.centrals.length === 1 && !this.named)) return;
    if (this.rebalanceTimer) clearTimeout(this.rebalanceTimer);
    this.rebalanceTimer = setTimeout(() => void this.rebalance(call), Math.round(every * (0.8 + 0.4 * Math.random())));
    this.rebalanceTimer.unref();
  }

  /**
   * Move a working stream to the central the picker now prefers, if another
   * and it accepts a connection: stop writing, wait (up to the ack timeout)
   * until every written batch is acknowledged, so nothing is in flight on two
   * centrals, then reopen there.
   */
  private async rebalance(call: Duplex): Promise<void> {
    if (call !== this.call || !this.welcomed) return;
    if (this.named) {
      const eps = await resolveCentrals(this.centrals, this.resolveHost, this.endpoints);
      if (call !== this.call) return;
      this.endpoints = eps;
      this.picker.retain([...eps.map((e) => e.key), NO_ADDRESS]);
    }
    const best = this.picker.pick(this.endpoints, Date.now());
    if (!best || best.waitMs > 0 || best.endpoint.key === this.endpoint?.key) return this.scheduleRebalance(call);
    // Only towards a central that answers: one that is still down costs a failed connection, not a move.
    const next = this.channelTo(best.endpoint);
    const ready = await new Promise<boolean>((r) => next.waitForReady(Date.now() + REBALANCE_CONNECT_MS, (err) => r(!err)));
    if (!ready || call !== this.call) {
      next.close();
      if (!ready) this.picker.failed(best.endpoint.key, Date.now());
      if (call === this.call) this.scheduleRebalance(call);
      return;
    }
    this.draining = true;
    const deadline = Date.now() + (this.opts.ackTimeoutMs ?? 30_000);
    while (call === this.call && (this.buffer.first()?.seq ?? this.sentThrough + 1n) <= this.sentThrough && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.draining = false;
    if (call !== this.call || this._state === "closed") {
      next.close();
      return;
    }
    this.opts.log?.("info", "moving the stream to the preferred central", { from: this.endpoint?.key, to: best.endpoint.key });
    this.client?.close();
    this.client = next;
    this.endpoint = best.endpoint;
    this.moves++;
    this.call = undefined;
    this.welcomed = false;
    try {
      call.end();
      call.cancel();
    } catch {
      /* gone */
    }
    this.connect();
  }

  private lost(call: Duplex | undefined, err: unknown): void {
    if (call && call !== this.call) return;
    if (this._state === "closed") return;
    const wasWelcomed = this.welcomed;
    this.call = undefined;
    this.welcomed = false;
    this.draining = false;
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    if (this.rebalanceTimer) clearTimeout(this.rebalanceTimer);
    if (call) {
      try {
        call.cancel();
      } catch {
        /* gone */
      }
    }
    const kind = this.classify(err, wasWelcomed);
    // This address waits its own backoff (a refused Hello will be refused again until someone
    // fixes the config: ask rarely); another central that is ready is opened at once.
    const now = Date.now();
    const failedWait = this.picker.failed(this.endpoint?.key ?? NO_ADDRESS, now, { refused: kind === "config_error" });
    const wait = this.endpoint ? (this.picker.pick(this.endpoints, now)?.waitMs ?? failedWait) : failedWait;
    this.setState("backoff");
    const e = err as Partial<grpc.ServiceError> | undefined;
    this.lastEnd = { kind, code: e?.code, details: e?.details ?? (err instanceof Error ? err.message : undefined) };
    if (kind === "config_error") {
      this.opts.log?.("error", "the central refuses this sidecar's Hello: fix its configuration (--node-id, --isp, --region, --origin, TLS identity); proxying continues, reporting is paused", {
        status: e?.code,
        reason: this.configError,
        retryInMs: wait,
      });
    } else {
      this.opts.log?.("warn", "stream lost; reconnecting", { central: this.endpoint?.key, error: err instanceof Error ? err.message : undefined, end: kind, retryInMs: wait });
    }
    this.timer = setTimeout(() => this.connect(), wait);
    this.timer.unref();
  }

  /** What an ended stream means (stream-end.ts), acting on the permanent cases. */
  private classify(err: unknown, wasWelcomed: boolean): StreamEnd {
    const e = err as Partial<grpc.ServiceError> | undefined;
    const details = e?.details ?? "";
    // Batches written on the stream that ended and not acknowledged: the central stopped at one of them.
    const sent = [...this.buffer.after(0n)].filter((b) => b.seq <= this.sentThrough);
    const { kind, learnedMaxBytes } = classifyEnd({
      code: typeof e?.code === "number" ? e.code : undefined,
      details,
      welcomed: wasWelcomed,
      sentSizes: sent.map((b) => b.bytes.length),
      maxMessageBytes: this._limits.maxMessageBytes,
    });
    if (kind === "config_error") this.configError = details || grpc.status[e!.code!];
    if (kind === "too_large" && learnedMaxBytes !== undefined) {
      this.learnedMaxBytes = Math.min(this.learnedMaxBytes, learnedMaxBytes);
      this._limits = { ...this._limits, maxMessageBytes: Math.min(this._limits.maxMessageBytes, learnedMaxBytes) };
      this.opts.log?.("warn", "the central refused a message as too large; held batches are split under the smaller limit at the next Welcome", {
        details,
        maxMessageBytes: this._limits.maxMessageBytes,
      });
    }
    if (kind === "batch_refused") {
      const head = sent[0];
      this.headRefusals = this.headRefusals.seq === head.seq ? { seq: head.seq, count: this.headRefusals.count + 1 } : { seq: head.seq, count: 1 };
      if (this.headRefusals.count >= HEAD_REFUSALS_BEFORE_DROP) {
        this.buffer.remove(head.seq);
        this.headRefusals = { seq: 0n, count: 0 };
        this.dropForGood(/\[([A-Z][A-Z0-9_]*)\]/.exec(details)?.[1] ?? INVALID_ARGUMENT_CODE, 1, details, head.seq);
      }
    }
    return kind;
  }
}

/**
 * Move a batch's times by −deltaMs (taken under a clock-skew correction
 * deltaMs smaller than the one in force): windows stay aligned to their length.
 */
function retime(b: Batch, deltaMs: number): void {
  for (const w of b.windows) {
    const len = w.lengthMs || 1;
    w.startUnixMs = BigInt(Math.floor((Number(w.startUnixMs) - deltaMs) / len) * len);
  }
  for (const x of b.exemplars) x.timeUnixMs -= BigInt(deltaMs);
}
