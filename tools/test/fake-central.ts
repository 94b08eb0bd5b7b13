/**
 * A fake central's ingest endpoint on a real grpc-js server (port 0), for
 * tests of the sidecar's stream client: it speaks the real contract (Hello →
 * Welcome with limits and server time, BatchAck with server time, BatchReject)
 * and counts requests exactly once per (node, seq) like the real central, but
 * each decision is scriptable — refuse a Hello with a status, refuse a batch
 * with BatchReject or end the stream, read with a small message limit so a
 * large message ends the stream with a real RESOURCE_EXHAUSTED, run on a clock
 * of its own. With `script`, the test drives each call itself instead.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type Batch,
  type CentralMessage,
  CentralMessageSchema,
  type Hello,
  IngestLimitsSchema,
  IngestService,
  type SidecarMessage,
} from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { grpcService } from "../../proto/grpc-bridge.js";
import { completedOf, countsOfWindow } from "../../proto/outcomes.js";

export type FakeCall = grpc.ServerDuplexStream<SidecarMessage, CentralMessage>;

/** What the fake central does with one batch. */
export type BatchVerdict = "ack" | "ignore" | { reject: { code: string; reason: string } } | { end: { code: grpc.status; details: string } };

export interface FakeCentralOptions {
  /** IngestLimits sent in every Welcome (omit: none stated). */
  limits?: MessageInitShape<typeof IngestLimitsSchema>;
  /** The central's clock (default Date.now); 0 from it means "no server time" (an older central). */
  clock?: () => number;
  /** Largest message read; a larger one ends the stream with RESOURCE_EXHAUSTED (grpc-js's own check). */
  maxMessageBytes?: number;
  /** Refuse every Hello with this status (a central that rejects this sidecar's labels). */
  refuseHello?: { code: grpc.status; details: string };
  /** Per-batch decision (default: ack). Decided before counting. */
  onBatch?: (batch: Batch, seen: number) => BatchVerdict;
  /** Listen on this port (default 0: any; a replica that comes back on its old port). */
  port?: number;
  /** Listen on this loopback address (default 127.0.0.1; 127.0.0.2 etc. stand for other hosts). */
  host?: string;
  /** Drive each call by hand (no Welcome, no acks from the fake). */
  script?: (call: FakeCall, received: SidecarMessage[]) => void;
}

export interface FakeCentral {
  port: number;
  /** http://HOST:PORT */
  url: string;
  calls: Array<{ call: FakeCall; received: SidecarMessage[] }>;
  hellos: Hello[];
  /** Every batch read, duplicates included. */
  batches: Batch[];
  /** Requests counted per origin (each (node, seq) once). */
  counted: Map<string, number>;
  /** Seqs refused with BatchReject. */
  rejected: bigint[];
  /** Largest window start seen minus the fake's clock at arrival (ms). */
  maxWindowLeadMs: number;
  highWater(nodeId: string): bigint;
  close(): void;
}

export async function startFakeCentral(opts: FakeCentralOptions = {}): Promise<FakeCentral> {
  const clock = opts.clock ?? Date.now;
  const server = new grpc.Server(opts.maxMessageBytes ? { "grpc.max_receive_message_length": opts.maxMessageBytes } : {});
  const hw = new Map<string, bigint>();
  const fc: FakeCentral = {
    port: 0,
    url: "",
    calls: [],
    hellos: [],
    batches: [],
    counted: new Map(),
    rejected: [],
    maxWindowLeadMs: Number.NEGATIVE_INFINITY,
    highWater: (n) => hw.get(n) ?? 0n,
    close: () => server.forceShutdown(),
  };
  const out = (kind: MessageInitShape<typeof CentralMessageSchema>["kind"]) => create(CentralMessageSchema, { kind });
  server.addService(grpcService(IngestService), {
    stream: (call: FakeCall) => {
      const received: SidecarMessage[] = [];
      fc.calls.push({ call, received });
      call.on("error", () => {});
      call.on("data", (m: SidecarMessage) => received.push(m));
      if (opts.script) {
        opts.script(call, received);
        return;
      }
      let node = "";
      let ended = false;
      const end = (code: grpc.status, details: string) => {
        if (ended) return;
        ended = true;
        call.emit("error", { code, details });
      };
      call.on("data", (m: SidecarMessage) => {
        if (ended) return;
        if (m.kind.case === "hello") {
          fc.hellos.push(m.kind.value);
          if (opts.refuseHello) return end(opts.refuseHello.code, opts.refuseHello.details);
          node = m.kind.value.node?.nodeId ?? "";
          call.write(out({ case: "welcome", value: { sessionId: `s${fc.calls.length}`, highWaterSeq: hw.get(node) ?? 0n, serverTimeUnixMs: BigInt(clock()), limits: opts.limits } }));
          return;
        }
        if (m.kind.case !== "batch") return;
        const b = m.kind.value;
        fc.batches.push(b);
        const verdict = opts.onBatch?.(b, fc.batches.length) ?? "ack";
        if (verdict === "ignore") return;
        if (typeof verdict === "object" && "end" in verdict) return end(verdict.end.code, verdict.end.details);
        if (typeof verdict === "object" && "reject" in verdict) {
          fc.rejected.push(b.seq);
          call.write(out({ case: "batchReject", value: { seq: b.seq, ...verdict.reject } }));
          return;
        }
        if (b.seq > (hw.get(node) ?? 0n)) {
          hw.set(node, b.seq);
          const now = clock();
          for (const w of b.windows) {
            fc.counted.set(w.origin, (fc.counted.get(w.origin) ?? 0) + Number(completedOf(countsOfWindow(w))));
            fc.maxWindowLeadMs = Math.max(fc.maxWindowLeadMs, Number(w.startUnixMs) - now);
          }
        }
        call.write(out({ case: "batchAck", value: { seq: b.seq, serverTimeUnixMs: BigInt(clock()) } }));
      });
    },
  });
  fc.port = await new Promise<number>((res, rej) => server.bindAsync(`${opts.host ?? "127.0.0.1"}:${opts.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  fc.url = `http://${opts.host ?? "127.0.0.1"}:${fc.port}`;
  return fc;
}
