/**
 * The window log (issue 16): window summaries sharded by origin into
 * JetStream, the cluster's replacement for "the ingest hands a batch to the
 * verdict engine in memory".
 *
 * - P partitions; p = partitionOf(origin, P) (FNV-1a, partition.ts).
 * - One stream per partition: `OW_WIN_<p>` on subject `ow.win.<p>`, R3 (the
 *   replicas option), file storage, max age 15 min (the replay horizon of a
 *   new owner), duplicate window 5 min. One stream per partition (not one
 *   stream with P subjects) because a stream is JetStream's unit of leadership
 *   and of ordered consumption: P streams spread their leaders over the
 *   servers, and a partition reader needs no subject filter (several filters
 *   per consumer are not on 2.9).
 * - Publishing: one message per (sidecar batch, partition), a PartitionBatch,
 *   msgID `<node_id>:<seq>:<p>`, so a batch replayed within the duplicate
 *   window (after an ingest failover, a lost ack) is stored once; the owner's
 *   high-water mark per (node, partition) covers replays after it.
 *   `publish` resolves only when every partition's PubAck arrived: the ingest
 *   acks the sidecar after it, never before (durable before acknowledged).
 * - Reading: an ordered pull consumer per partition from a given stream
 *   sequence (see readPartition for why ordered and not durable).
 */
import type { NodeIdentity } from "../../proto/gen/originwatch/v1/common_pb.js";
import type { Exemplar } from "../../proto/gen/originwatch/v1/common_pb.js";
import type { Batch, WindowSummary } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { type PartitionBatch, PartitionBatchSchema } from "../../proto/gen/originwatch/v1/cluster_pb.js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { nanos } from "@nats-io/transport-node";
import { type Consumer, type JetStreamClient, type JetStreamManager, DeliverPolicy, DiscardPolicy, JetStreamApiError, RetentionPolicy, StorageType, type StreamConfig } from "@nats-io/jetstream";
import { CentralError } from "../errors.js";
import type { NatsOptions } from "./nats-options.js";
import { partitionOf } from "./partition.js";

/** Stream of partition p. */
export const windowStream = (p: number) => `OW_WIN_${p}`;
/** Subject of partition p. */
export const windowSubject = (p: number) => `ow.win.${p}`;
/** JetStream msgID of one batch's share of partition p: dedup across ingest replicas. */
export const windowMsgId = (nodeId: string, seq: bigint | number, p: number) => `${nodeId}:${seq}:${p}`;

export type WindowLogOptions = Pick<NatsOptions, "partitions" | "replicas" | "windowMaxAgeMs" | "dedupWindowMs">;

/** The stream configuration of partition p (one definition for creation and checks). */
export function windowStreamConfig(p: number, o: WindowLogOptions): Partial<StreamConfig> & { name: string } {
  return {
    name: windowStream(p),
    subjects: [windowSubject(p)],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: o.replicas,
    max_age: nanos(o.windowMaxAgeMs),
    duplicate_window: nanos(o.dedupWindowMs),
  };
}

/**
 * Creates the P streams, idempotently: an existing stream with the same
 * config is left as it is, one whose limits differ is updated to ours. Refuses
 * (CENTRAL_BAD_CONFIG) when the log already has a partition ≥ P, i.e. another
 * replica runs with more partitions.
 */
export async function ensureWindowStreams(jsm: JetStreamManager, o: WindowLogOptions): Promise<void> {
  for await (const name of jsm.streams.names()) {
    const m = /^OW_WIN_(\d+)$/.exec(name);
    if (m && Number(m[1]) >= o.partitions) {
      throw new CentralError("CENTRAL_BAD_CONFIG", `the window log already has stream ${name}: another replica runs with more partitions than --partitions ${o.partitions}; every replica needs the same --partitions`);
    }
  }
  for (let p = 0; p < o.partitions; p++) {
    const config = windowStreamConfig(p, o);
    try {
      await jsm.streams.add(config);
    } catch (err) {
      // 10058: a stream of that name exists with another configuration.
      if (err instanceof JetStreamApiError && err.code === 10058) await jsm.streams.update(config.name, config);
      else throw err;
    }
  }
}

/** One partition's share of a batch. */
export interface PartitionShare {
  windows: WindowSummary[];
  exemplars: Exemplar[];
}

/** Splits a batch's windows and exemplars by partition, keeping batch order; partitions without either are absent. */
export function splitByPartition(batch: Pick<Batch, "windows" | "exemplars">, partitions: number): Map<number, PartitionShare> {
  const out = new Map<number, PartitionShare>();
  const share = (p: number) => {
    let s = out.get(p);
    if (!s) out.set(p, (s = { windows: [], exemplars: [] }));
    return s;
  };
  for (const w of batch.windows) share(partitionOf(w.origin, partitions)).windows.push(w);
  for (const e of batch.exemplars) share(partitionOf(e.origin, partitions)).exemplars.push(e);
  return out;
}

export interface PublishOutcome {
  /** Messages published (one per partition the batch touches). */
  messages: number;
  /** Of those, how many the stream already had (same msgID within the duplicate window). */
  duplicates: number;
}

export interface WindowLogPublisher {
  /**
   * Publishes `batch` from `node` as one message per partition it touches and
   * resolves when every PubAck arrived. A PubAck that does not come (a leader
   * election, no quorum) is retried with the same msgID until `retryForMs`;
   * then it rejects with CENTRAL_NATS_UNAVAILABLE and the caller must not ack
   * the batch (the sidecar replays it; the msgIDs make that safe). Safe to call
   * concurrently; calls for the same node are published one after the other,
   * in call order (the partition owner applies a node's seq only above its
   * high-water mark, so a later seq must never overtake an earlier one). When
   * one fails, the node's calls queued behind it fail with the same error
   * without publishing: the caller ends that session and the sidecar replays.
   */
  publish(node: NodeIdentity, batch: Batch, receivedUnixMs?: number): Promise<PublishOutcome>;
}

export interface PublisherOptions {
  partitions: number;
  /** Wait for one PubAck (default 5 s). */
  ackTimeoutMs?: number;
  /** Keep retrying a partition's publish this long (default 30 s; a leader election takes ~6 s here). */
  retryForMs?: number;
}

export function createWindowLogPublisher(js: JetStreamClient, opts: PublisherOptions): WindowLogPublisher {
  const ackTimeoutMs = opts.ackTimeoutMs ?? 5_000;
  const retryForMs = opts.retryForMs ?? 30_000;
  const publishOne = async (p: number, bytes: Uint8Array, msgID: string): Promise<boolean> => {
    const deadline = Date.now() + retryForMs;
    let wait = 100;
    for (;;) {
      try {
        const ack = await js.publish(windowSubject(p), bytes, { msgID, timeout: ackTimeoutMs, expect: { streamName: windowStream(p) } });
        return ack.duplicate;
      } catch (err) {
        if (/MAX_PAYLOAD|payload/i.test(String((err as Error).message))) {
          throw new CentralError("CENTRAL_BATCH_TOO_LARGE", `partition ${p} share of the batch (${bytes.length} bytes) is over the NATS max_payload`, { cause: err });
        }
        if (Date.now() + wait > deadline) {
          throw new CentralError("CENTRAL_NATS_UNAVAILABLE", `no PubAck from ${windowStream(p)} for ${msgID} within ${retryForMs} ms: ${(err as Error).message}`, { cause: err });
        }
        await new Promise((r) => setTimeout(r, wait));
        wait = Math.min(wait * 2, 1_000);
      }
    }
  };
  const publishBatch = async (node: NodeIdentity, batch: Batch, receivedUnixMs: number): Promise<PublishOutcome> => {
    const shares = splitByPartition(batch, opts.partitions);
    const acks = await Promise.all(
      [...shares].map(([p, s]) => {
        const msg = create(PartitionBatchSchema, { node, seq: batch.seq, partition: p, windows: s.windows, exemplars: s.exemplars, receivedUnixMs: BigInt(receivedUnixMs) });
        return publishOne(p, toBinary(PartitionBatchSchema, msg), windowMsgId(node.nodeId, batch.seq, p));
      }),
    );
    return { messages: acks.length, duplicates: acks.filter(Boolean).length };
  };
  // One chain per node: a node's batches reach each partition in the order they were handed in, even when a
  // retry (leader election) delays one, because the owner drops a seq at or below its high-water mark.
  // After a failure the node's queued batches fail too (never published): a later seq stored while an earlier
  // one is missing would make the owner drop the earlier one when the sidecar replays it.
  const chains = new Map<string, Promise<unknown>>();
  return {
    publish(node, batch, receivedUnixMs = Date.now()) {
      const prev = chains.get(node.nodeId) ?? Promise.resolve();
      const mine = prev.then(() => publishBatch(node, batch, receivedUnixMs));
      chains.set(node.nodeId, mine);
      void mine
        .catch(() => undefined)
        .then(() => {
          if (chains.get(node.nodeId) === mine) chains.delete(node.nodeId);
        });
      return mine;
    },
  };
}

export interface PartitionReaderOptions {
  /** First stream sequence to deliver (1 or less: from the oldest message the stream still has). */
  fromSeq: number;
  /**
   * Called once per message, in stream order; the next message is not handed
   * over before the returned promise settles (back-pressure: at most
   * `maxBuffered` messages wait in the client). A throw stops the reader and
   * rejects `done`.
   */
  handler: (batch: PartitionBatch, streamSeq: number) => void | Promise<void>;
  /** A message that does not decode: skipped (never blocks the partition), reported here. */
  onUndecodable?: (streamSeq: number, err: Error) => void;
  /** Messages the client pulls ahead of the handler (default 256). */
  maxBuffered?: number;
  /**
   * Keep trying to create the consumer this long (default 30 s): right after a
   * server dies (when a new owner starts reading) JetStream may need a meta or
   * stream leader election first. Then CENTRAL_NATS_UNAVAILABLE.
   */
  startTimeoutMs?: number;
}

export interface PartitionReader {
  readonly partition: number;
  /** Stream sequence of the last message handed to the handler (fromSeq - 1 before the first). */
  lastSeq(): number;
  /** Stops reading; the handler is not called again after it resolves. Idempotent. */
  stop(): Promise<void>;
  /** Settles when the reader stops: resolves on stop(), rejects with the handler's error. */
  done: Promise<void>;
}

/**
 * Reads partition p from `fromSeq` on with an ordered pull consumer.
 *
 * Why ordered, not durable: the partition owner already keeps its position
 * (the stream sequence) in its snapshot, together with the state it built
 * from those messages; a durable consumer would keep a second position on the
 * server that can disagree with the snapshot, costs an ack per message, and
 * survives its owner (a lease change would have to hand it over). An ordered
 * consumer is ephemeral, server-side flow-controlled, needs no acks, and on a
 * gap or a stream leader change recreates itself from the last sequence it
 * delivered — exactly "replay from seq", which is what a new owner needs.
 */
export async function readPartition(js: JetStreamClient, p: number, opts: PartitionReaderOptions): Promise<PartitionReader> {
  const start = opts.fromSeq > 1 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: opts.fromSeq } : { deliver_policy: DeliverPolicy.All };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  let messages: Awaited<ReturnType<Consumer["consume"]>>;
  for (let wait = 100; ; wait = Math.min(wait * 2, 1_000)) {
    try {
      const consumer = await js.consumers.get(windowStream(p), start);
      messages = await consumer.consume({ max_messages: opts.maxBuffered ?? 256 });
      break;
    } catch (err) {
      if (Date.now() + wait > deadline) throw new CentralError("CENTRAL_NATS_UNAVAILABLE", `cannot read ${windowStream(p)}: ${(err as Error).message}`, { cause: err });
      await new Promise((r) => setTimeout(r, wait));
    }
  }
  let last = Math.max(0, opts.fromSeq - 1);
  let stopped = false;
  const done = (async () => {
    for await (const m of messages) {
      if (stopped) break;
      let batch: PartitionBatch | undefined;
      try {
        batch = fromBinary(PartitionBatchSchema, m.data);
      } catch (err) {
        opts.onUndecodable?.(m.seq, err as Error);
      }
      if (batch) await opts.handler(batch, m.seq);
      last = m.seq;
    }
  })();
  done.catch(() => messages.stop());
  return {
    partition: p,
    lastSeq: () => last,
    async stop() {
      if (stopped) return;
      stopped = true;
      messages.stop();
      await done.catch(() => undefined);
    },
    done,
  };
}
