/**
 * The one bidi gRPC stream to the central (grpc-js over the protobuf-es bridge).
 *
 * Contract: send() never blocks and never throws — the request path only ever
 * calls send() through the window ticker (fail-open). Batches are numbered
 * 1, 2, 3… per node, kept until acknowledged (BatchAck is cumulative; Welcome's
 * high_water_seq acknowledges too) and replayed on every new stream.
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
import { splitBatch } from "./batch-split.js";
import { ClockSkew } from "./clock-skew.js";
import { DEFAULT_INGEST_LIMITS, type StreamLimits, limitsFromWelcome } from "./limits.js";
import { type StreamEnd, classifyEnd } from "./stream-end.js";
import { type BufferedBatch, ReplayBuffer } from "./replay-buffer.js";
import { INVALID_ARGUMENT_CODE, Rejections, TOO_LARGE_CODE } from "./rejections.js";

/** gRPC connection-backoff shape (grpc/doc/connection-backoff.md): 1 s, ×1.6, ±20 % jitter, capped. */
export const BACKOFF = Object.freeze({ initialMs: 1000, multiplier: 1.6, jitter: 0.2, maxMs: 30_000 });

/** The wait before the next attempt and the base for the one after; random in [0, 1). */
export function backoffStep(baseMs: number, maxMs: number, random = Math.random()): { waitMs: number; nextBaseMs: number } {
  const waitMs = Math.round(baseMs * (1 - BACKOFF.jitter + 2 * BACKOFF.jitter * random));
  return { waitMs, nextBaseMs: Math.min(baseMs * BACKOFF.multiplier, maxMs) };
}

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

/** INVALID_ARGUMENT endings after Welcome with the same head batch before it is dropped (older centrals). */
export const HEAD_REFUSALS_BEFORE_DROP = 2;

export type StreamLogLevel = "info" | "warn" | "error";

export interface StreamClientOptions {
  /** http://host:port (plaintext h2c) or https://host:port */
  central: string;
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
  private call?: Duplex;
  private nextSeq = 1n;
  private sentThrough = 0n;
  private welcomed = false;
  private everWelcomed = false;
  private blocked = false;
  private backoffMs: number;
  private timer?: NodeJS.Timeout;
  private welcomeTimer?: NodeJS.Timeout;
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
    this.backoffMs = opts.initialBackoffMs ?? BACKOFF.initialMs;
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
      connects: this.connects,
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
    const u = new URL(this.opts.central);
    const target = `${u.hostname.includes(":") ? `[${u.hostname}]` : u.hostname}:${u.port || (u.protocol === "https:" ? 443 : 80)}`;
    const creds = u.protocol === "https:" ? grpc.credentials.createSsl(this.opts.ca ?? null, this.opts.key ?? null, this.opts.cert ?? null) : grpc.credentials.createInsecure();
    const Ctor = grpc.makeGenericClientConstructor(ingestDefinition(), "IngestService");
    this.client = new Ctor(target, creds, {
      "grpc.keepalive_time_ms": this.opts.keepaliveTimeMs ?? 30_000,
      "grpc.keepalive_timeout_ms": this.opts.keepaliveTimeoutMs ?? 10_000,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.initial_reconnect_backoff_ms": this.opts.initialBackoffMs ?? BACKOFF.initialMs,
      "grpc.max_reconnect_backoff_ms": this.opts.maxBackoffMs ?? BACKOFF.maxMs,
      "grpc.max_receive_message_length": 4 * 1024 * 1024,
    }) as unknown as grpc.Client & { stream(): Duplex };
    this.connect();
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

  private connect(): void {
    if (this._state === "closed" || !this.client) return;
    this.setState("connecting");
    this.connects++;
    this.welcomed = false;
    this.blocked = false;
    this.sentThrough = 0n;
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
          this.ack(hw);
        }
        // Every held seq is now above the central's high-water mark: none is stored, so they may be rewritten.
        this.conformBuffer();
        this.configError = undefined;
        this.everWelcomed = true;
        this.welcomed = true;
        this.progressAt = Date.now();
        if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
        this.backoffMs = this.opts.initialBackoffMs ?? BACKOFF.initialMs;
        this.setState("connected");
        this.opts.log?.("info", "stream connected", { sessionId: m.kind.value.sessionId, highWaterSeq: hw.toString() });
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
   * Bring every held batch within the limits in force and the clock-skew
   * correction in force: split what is over a limit (dropping, counted, an
   * item that cannot fit), shift times taken under another correction, and
   * number everything again from the first held seq. Only right after a
   * Welcome (nothing held is stored by the central yet).
   */
  private conformBuffer(): void {
    const limits = this._limits;
    const applied = this.skew.appliedMs;
    let tooLarge = 0;
    const needs = (e: BufferedBatch) =>
      e.bytes.length > limits.maxMessageBytes || e.windows > limits.maxWindowsPerBatch || e.exemplars > limits.maxExemplarsPerBatch || e.skewMs !== applied;
    const transform = (b: Batch, e: BufferedBatch): Batch[] => {
      const delta = applied - e.skewMs;
      if (delta !== 0) retime(b, delta);
      if (e.bytes.length <= limits.maxMessageBytes && e.windows <= limits.maxWindowsPerBatch && e.exemplars <= limits.maxExemplarsPerBatch) return [b];
      const { parts, tooLarge: n } = splitBatch(b.windows, b.exemplars, limits);
      tooLarge += n;
      this.splitBatches += Math.max(0, parts.length - 1);
      return parts.map((p) => create(BatchSchema, { ...b, windows: p.windows, exemplars: p.exemplars }));
    };
    const next = this.buffer.rebuild(needs, transform, applied);
    if (next === undefined) return;
    this.nextSeq = next;
    if (tooLarge > 0) this.dropForGood(TOO_LARGE_CODE, tooLarge, `a window or exemplar alone is over the central's message limit of ${limits.maxMessageBytes} bytes`);
  }

  private flush(): void {
    const call = this.call;
    if (!call || !this.welcomed || this.blocked) return;
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

  private lost(call: Duplex | undefined, err: unknown): void {
    if (call && call !== this.call) return;
    if (this._state === "closed") return;
    const wasWelcomed = this.welcomed;
    this.call = undefined;
    this.welcomed = false;
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    if (call) {
      try {
        call.cancel();
      } catch {
        /* gone */
      }
    }
    const kind = this.classify(err, wasWelcomed);
    const maxMs = this.opts.maxBackoffMs ?? BACKOFF.maxMs;
    // A refused Hello will be refused again until someone fixes the config: ask rarely.
    if (kind === "config_error") this.backoffMs = maxMs;
    const { waitMs: wait, nextBaseMs } = backoffStep(this.backoffMs, maxMs);
    this.backoffMs = nextBaseMs;
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
      this.opts.log?.("warn", "stream lost; reconnecting", { error: err instanceof Error ? err.message : undefined, end: kind, retryInMs: wait });
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
