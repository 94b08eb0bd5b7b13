/**
 * A hand-driven ingest stream for tests (grpc-js, as the sidecar uses): send
 * exactly the messages an attack needs, wait for the central's answers, and
 * see how the stream ended. The builders make the usual messages.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { type Batch, BatchSchema, type CentralMessage, IngestService, type SidecarMessage, SidecarMessageSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { grpcService } from "../../proto/grpc-bridge.js";

const Client = grpc.makeGenericClientConstructor(grpcService(IngestService), "IngestService");
type StreamClient = grpc.Client & { stream(): grpc.ClientDuplexStream<SidecarMessage, CentralMessage> };

export function hello(nodeId: string, origins: string[], isp = "isp-a", region = "eu"): SidecarMessage {
  return create(SidecarMessageSchema, { kind: { case: "hello", value: { node: { nodeId, isp, region, version: "test" }, origins } } });
}

/** A batch; windows default to one 1 s window of `origin` ending now with `ok` requests. */
export function batch(seq: bigint | number, init: Omit<MessageInitShape<typeof BatchSchema>, "seq"> = {}): SidecarMessage {
  return create(SidecarMessageSchema, { kind: { case: "batch", value: create(BatchSchema, { ...init, seq: BigInt(seq) } as MessageInitShape<typeof BatchSchema>) } });
}

/** One window of `origin` starting `agoMs` before now. */
export function win(origin: string, counts: Record<string, bigint> = { ok: 1n }, agoMs = 1000, lengthMs = 1000) {
  return { origin, startUnixMs: BigInt(Date.now() - agoMs), lengthMs, counts };
}

export class IngestStream {
  private client: StreamClient;
  readonly call: grpc.ClientDuplexStream<SidecarMessage, CentralMessage>;
  readonly received: CentralMessage[] = [];
  /** How the stream ended (status code and details). */
  readonly ended: Promise<{ code: number; details: string }>;
  private waiters: Array<() => void> = [];
  private done = false;

  constructor(address: string) {
    this.client = new Client(address, grpc.credentials.createInsecure(), { "grpc.max_send_message_length": 8 << 20 }) as unknown as StreamClient;
    this.call = this.client.stream();
    this.call.on("data", (m: CentralMessage) => {
      this.received.push(m);
      for (const w of this.waiters) w();
    });
    this.call.on("error", () => {});
    this.ended = new Promise((resolve) =>
      this.call.on("status", (s: grpc.StatusObject) => {
        this.done = true;
        resolve({ code: s.code, details: s.details });
        for (const w of this.waiters) w();
      }),
    );
  }

  /** Write; resolves when grpc-js would take more (its buffer drained) or the stream has ended. */
  async send(...msgs: SidecarMessage[]): Promise<void> {
    for (const m of msgs) {
      if (this.done) return;
      if (!this.call.write(m)) await Promise.race([new Promise<void>((r) => this.call.once("drain", () => r())), this.ended]);
    }
  }

  /** Resolves with the received messages once pred holds; rejects after timeoutMs or when the stream ends first. */
  async until(pred: (got: CentralMessage[]) => boolean, timeoutMs = 10_000): Promise<CentralMessage[]> {
    let ended = false;
    void this.ended.then(() => (ended = true));
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.received)) {
      if (ended) throw new Error(`stream ended before the condition held; got ${this.received.map((m) => m.kind.case).join(",")}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; got ${this.received.map((m) => m.kind.case).join(",")}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      this.waiters = [];
    }
    return this.received;
  }

  acks(): bigint[] {
    return this.received.flatMap((m) => (m.kind.case === "batchAck" ? [m.kind.value.seq] : []));
  }

  rejects(): Array<{ seq: bigint; code: string; reason: string }> {
    return this.received.flatMap((m) => (m.kind.case === "batchReject" ? [m.kind.value] : []));
  }

  close(): void {
    this.call.end();
    this.call.cancel();
    this.client.close();
  }
}

export type { Batch };
