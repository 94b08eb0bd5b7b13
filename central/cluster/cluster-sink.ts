/**
 * The ingest's batch sink in cluster mode (issue 16): a validated batch is
 * handed to the window log's publisher (its shares join the next message of
 * each partition, window-log.ts), then the node's cluster-wide high-water mark is written to
 * KV `OW_NODES`; `commitBatch` resolves only after both, so the ingest acks
 * the sidecar after every PubAck, never before. A failure calls `onFailure`
 * (the ingest ends that node's stream with UNAVAILABLE, the sidecar replays,
 * the owners' high-water marks make the replay count once).
 *
 * Why a per-node KV record for the Welcome's high_water_seq (and not asking
 * the partition owners): a node's batches touch many partitions, so "the
 * node's mark" would be the minimum over every owner's mark — P requests to
 * possibly dead owners on every hello. The record is written only after the
 * PubAcks of that seq, so it is never above what is stored (never a loss); a
 * late write from an old replica can only leave it lower than the truth,
 * which costs a replay that the owners' marks drop. A node's
 * writes from one replica are serialised (one chain per node), so they never
 * go backwards there.
 */
import { create, fromBinary } from "@bufbuild/protobuf";
import type { KV } from "@nats-io/kv";
import { NodeIdentitySchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { BatchSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import type { DecodedBatch } from "../ingest/batch-decoder.js";
import { CentralError } from "../errors.js";
import type { BatchSink } from "../ingest/batch-sink.js";
import type { NodeRecord } from "../store/level-store.js";
import type { ClusterContext } from "./cluster-context.js";
import { type WindowLogPublisher, createWindowLogPublisher } from "./window-log.js";

export const NODES_BUCKET = "OW_NODES";
/** KV key of a node's cluster-wide high-water mark. */
export const highWaterKey = (nodeId: string) => `hw.${Buffer.from(nodeId).toString("base64url")}`;

/** The largest window-log message: half the servers' max_payload (1 MiB by default), at most 512 KiB. */
const maxMessageBytes = (maxPayload: number | undefined) => Math.min(512 * 1024, Math.floor((maxPayload ?? 1024 * 1024) / 2));

export class ClusterSink implements BatchSink {
  onFailure?: (nodeIds: ReadonlySet<string>, err: unknown) => void;
  private readonly chains = new Map<string, Promise<void>>();
  private inFlight = 0;
  /** Failures already reported through onFailure, and for which nodes (one message's failure fails every node in it). */
  private readonly reported = new WeakMap<object, Set<string>>();

  private constructor(
    private readonly publisher: WindowLogPublisher,
    private readonly kv: KV,
    /** The ingest's high-water map: moved here once a batch is durable. */
    private readonly highWater: Map<string, bigint>,
  ) {}

  static async open(ctx: ClusterContext, highWater: Map<string, bigint>, o: { retryForMs?: number } = {}): Promise<ClusterSink> {
    const kv = await ctx.kvm.create(NODES_BUCKET, { replicas: ctx.options.replicas, history: 1 });
    return new ClusterSink(createWindowLogPublisher(ctx.js, { partitions: ctx.options.partitions, retryForMs: o.retryForMs, lingerMs: ctx.options.lingerMs, name: ctx.replicaId, maxMessageBytes: maxMessageBytes(ctx.nc.info?.max_payload) }), kv, highWater);
  }

  commitBatch(nodeId: string, seq: bigint, _deltas: unknown, node: NodeRecord | undefined, decoded: DecodedBatch): Promise<void> {
    // The ingest's hot decoder read columns; the window log carries protobuf windows, so the wire bytes are
    // read again here (cluster mode's publisher cost, central/cluster/README.md "Cost").
    if (!decoded.bytes) return Promise.reject(new CentralError("CENTRAL_BAD_MESSAGE", "cluster sink: the batch's wire bytes were not kept"));
    const batch = fromBinary(BatchSchema, decoded.bytes);
    const identity = create(NodeIdentitySchema, { nodeId, isp: node?.isp ?? "", region: node?.region ?? "", version: node?.version ?? "" });
    const prev = this.chains.get(nodeId) ?? Promise.resolve();
    this.inFlight++;
    // Handed to the publisher at once: it keeps a node's batches in order, lets a burst (a replay) share one
    // message per partition and fails a batch queued behind a failed one unpublished. The high-water mark is
    // written after this batch's PubAcks and after the previous batch's mark: in seq order, never above the log.
    const published = this.publisher.publish(identity, batch);
    const mine = Promise.all([prev, published])
      .then(async () => {
        try {
          await this.kv.put(highWaterKey(nodeId), seq.toString());
        } catch (err) {
          throw new CentralError("CENTRAL_NATS_UNAVAILABLE", `cannot record the high-water mark of ${nodeId}: ${(err as Error).message}`, { cause: err });
        }
        if (seq > (this.highWater.get(nodeId) ?? 0n)) this.highWater.set(nodeId, seq);
      })
      .finally(() => this.inFlight--);
    this.chains.set(nodeId, mine);
    return mine.then(
      () => {
        if (this.chains.get(nodeId) === mine) this.chains.delete(nodeId);
      },
      (err) => {
        if (this.chains.get(nodeId) === mine) this.chains.delete(nodeId);
        // Once per failure, not per batch queued behind it (they fail with the same error object).
        const key = Object(err) as object;
        const seen = this.reported.get(key) ?? new Set<string>();
        if (!seen.has(nodeId)) {
          seen.add(nodeId);
          this.reported.set(key, seen);
          this.onFailure?.(new Set([nodeId]), err);
        }
        throw err;
      },
    );
  }

  /** Node records stay per replica for now (see README, "What is not wired yet"). */
  saveNode(): Promise<void> {
    return Promise.resolve();
  }

  barrier(): Promise<void> {
    return Promise.all([...this.chains.values()]).then(() => undefined);
  }

  settled(): Promise<void> {
    return Promise.allSettled([...this.chains.values()]).then(() => undefined);
  }

  get waiting(): number {
    return this.inFlight;
  }

  async highWaterOf(nodeId: string): Promise<bigint | undefined> {
    const e = await this.kv.get(highWaterKey(nodeId));
    if (!e || e.operation !== "PUT") return undefined;
    const v = e.string();
    return /^\d{1,20}$/.test(v) ? BigInt(v) : undefined;
  }
}
