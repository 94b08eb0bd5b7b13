/**
 * The one bidi gRPC stream to the central (grpc-js over the protobuf-es bridge).
 *
 * Contract: send() never blocks and never throws — the request path only ever
 * calls send() through the window ticker (fail-open). Batches are numbered
 * 1, 2, 3… per node, kept until acknowledged (BatchAck is cumulative; Welcome's
 * high_water_seq acknowledges too) and replayed on every new stream. Any end
 * or error of the stream means "reconnect with backoff".
 */
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { NodeIdentity } from "../../proto/gen/originwatch/v1/common_pb.js";
import { NodeIdentitySchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import {
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
import { ReplayBuffer } from "./replay-buffer.js";

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
  log?: (level: "info" | "warn", msg: string, fields?: Record<string, unknown>) => void;
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
  /** When the stream last showed progress (Welcome or an ack). */
  private progressAt = 0;
  /** Highest seq the central acknowledged. */
  ackedSeq = 0n;
  /** Streams opened (for metrics and tests). */
  connects = 0;

  constructor(opts: StreamClientOptions) {
    this.opts = opts;
    this.buffer = new ReplayBuffer(opts.bufferBytes ?? 64 * 1024 * 1024, opts.maxBufferedBatches);
    this.backoffMs = opts.initialBackoffMs ?? BACKOFF.initialMs;
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

  /** Queue one batch of windows; it is sent now if the stream is up, else on reconnect. */
  send(windows: WindowSummary[], exemplars: Exemplar[] = []): void {
    if (this._state === "closed") return;
    const batch = create(BatchSchema, {
      seq: this.nextSeq++,
      windows,
      exemplars,
      droppedBatches: BigInt(this.buffer.dropped),
      bufferedBatches: BigInt(this.buffer.size),
    });
    this.buffer.push(batch);
    this.checkStuck();
    this.flush();
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
      case "batchAck":
        this.ack(m.kind.value.seq);
        return;
      case "configPush":
        this.opts.onConfigPush?.(m.kind.value);
        return;
      case "probeRequest":
        this.opts.onProbeRequest?.(m.kind.value);
        return;
      default:
        return;
    }
  }

  private ack(seq: bigint): void {
    this.progressAt = Date.now();
    if (seq > this.ackedSeq) this.ackedSeq = seq;
    this.buffer.ackThrough(seq);
  }

  private flush(): void {
    const call = this.call;
    if (!call || !this.welcomed || this.blocked) return;
    for (const b of this.buffer.after(this.sentThrough)) {
      this.sentThrough = b.seq;
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
    const { waitMs: wait, nextBaseMs } = backoffStep(this.backoffMs, this.opts.maxBackoffMs ?? BACKOFF.maxMs);
    this.backoffMs = nextBaseMs;
    this.setState("backoff");
    this.opts.log?.("warn", "stream lost; reconnecting", { error: err instanceof Error ? err.message : undefined, retryInMs: wait });
    this.timer = setTimeout(() => this.connect(), wait);
    this.timer.unref();
  }
}
