/**
 * A fake sidecar on the real ingest stream (grpc-js, as the sidecar uses):
 * hello, batches of window summaries at a fixed period from a traffic
 * function, and answers to ProbeRequests from a probe function. A fake peer
 * for the central's tests and demos, not a test hack.
 */
import { wireCounts } from "../../proto/outcomes.js";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { Outcome } from "../../proto/gen/originwatch/v1/common_pb.js";
import { type CentralMessage, IngestService, type ProbeRequest, type SidecarMessage, SidecarMessageSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { grpcService } from "../../proto/grpc-bridge.js";
import { HistogramAccumulator } from "../../proto/histogram.js";
import type { Counts } from "../../central/verdict/counts.js";

const Client = grpc.makeGenericClientConstructor(grpcService(IngestService), "IngestService");
type StreamClient = grpc.Client & { stream(): grpc.ClientDuplexStream<SidecarMessage, CentralMessage> };

export interface FakeSidecarOptions {
  address: string;
  nodeId: string;
  isp: string;
  region: string;
  origins: string[];
  /** Window length and batch period (default 200 ms). */
  periodMs?: number;
  /** Counts for one window of an origin (scaled to the period by the caller). */
  traffic: (origin: string) => Partial<Counts>;
  /** Outcome of each probe attempt (default OK). */
  probe?: (req: ProbeRequest) => Outcome;
  /** Sampled requests sent with each batch, per origin (default none). */
  exemplarsPerBatch?: number;
  /** What the sidecar reports about itself in each batch (refused batches, measured clock skew). */
  report?: () => { rejectedBatches?: bigint; clockSkewMs?: bigint };
}

export class FakeSidecar {
  private client: StreamClient;
  private call: grpc.ClientDuplexStream<SidecarMessage, CentralMessage> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private seq = 1n;
  probes: ProbeRequest[] = [];
  received: CentralMessage[] = [];

  get isp(): string {
    return this.o.isp;
  }

  constructor(private o: FakeSidecarOptions) {
    this.client = new Client(o.address, grpc.credentials.createInsecure()) as unknown as StreamClient;
  }

  start(): void {
    const call = this.client.stream();
    this.call = call;
    call.on("data", (m: CentralMessage) => {
      this.received.push(m);
      if (m.kind.case === "welcome") this.seq = m.kind.value.highWaterSeq + 1n;
      if (m.kind.case === "probeRequest") {
        const req = m.kind.value;
        this.probes.push(req);
        const outcome = this.o.probe?.(req) ?? Outcome.OK;
        call.write(
          create(SidecarMessageSchema, {
            kind: {
              case: "probeResult",
              value: { probeId: req.probeId, origin: req.origin, attempts: Array.from({ length: req.count || 1 }, () => ({ outcome, status: outcome === Outcome.OK ? 200 : 0, ttfbMs: 5 })) },
            },
          }),
        );
      }
    });
    call.on("error", () => {});
    call.write(
      create(SidecarMessageSchema, {
        kind: { case: "hello", value: { node: { nodeId: this.o.nodeId, isp: this.o.isp, region: this.o.region, version: "fake" }, origins: this.o.origins } },
      }),
    );
    const period = this.o.periodMs ?? 200;
    this.timer = setInterval(() => this.sendBatch(period), period);
  }

  private sendBatch(period: number): void {
    const end = Date.now();
    const windows = this.o.origins.map((origin) => {
      const c = this.o.traffic(origin);
      const h = new HistogramAccumulator();
      // A liar's 2^40 OK carries no TTFB samples (recording them one by one would never end).
      if ((c.ok ?? 0) <= 100_000) for (let i = 0; i < (c.ok ?? 0); i++) h.record(30);
      return {
        origin,
        startUnixMs: BigInt(end - period),
        lengthMs: period,
        ...wireCounts(c),
        ttfb: h.toHistogram(),
      };
    });
    const seq = this.seq++;
    const exemplars = this.o.origins.flatMap((origin) =>
      Array.from({ length: this.o.exemplarsPerBatch ?? 0 }, (_, i) => ({ timeUnixMs: BigInt(end), origin, method: "GET", path: `/b${seq}/${i}`, status: 200, outcome: Outcome.OK, ttfbMs: 30, totalMs: 31 })),
    );
    this.call?.write(create(SidecarMessageSchema, { kind: { case: "batch", value: { seq, windows, exemplars, ...this.o.report?.() } } }));
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.call?.end();
    this.call?.cancel();
    this.client.close();
  }
}
