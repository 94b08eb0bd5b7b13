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
 * - Publishing: the batches an ingest takes within the linger (--nats-linger-ms)
 *   go out as one message per partition, a PartitionBatches (header
 *   Ow-Entries), msgID `<publisher>:<n>:<p>` so a message retried after a
 *   lost PubAck is stored once. A batch replayed through another replica is a
 *   new message: the owner's high-water mark per (node, partition) drops it.
 *   `publish` resolves only when every message carrying a share of the batch
 *   was acknowledged: the ingest acks the sidecar after it, never before
 *   (durable before acknowledged). Per message, not per batch: at 1 batch/s
 *   from each of N nodes the servers store P messages per linger instead of
 *   N × P per second.
 * - Reading: an ordered pull consumer per partition from a given stream
 *   sequence (see readPartition for why ordered and not durable).
 */
import type { NodeIdentity } from "../../proto/gen/originwatch/v1/common_pb.js";
import type { Exemplar } from "../../proto/gen/originwatch/v1/common_pb.js";
import type { Batch, WindowSummary } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { type PartitionBatch, PartitionBatchSchema, PartitionBatchesSchema } from "../../proto/gen/originwatch/v1/cluster_pb.js";
import { randomBytes } from "node:crypto";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { headers, nanos } from "@nats-io/transport-node";
import { type Consumer, type JetStreamClient, type JetStreamManager, DeliverPolicy, DiscardPolicy, JetStreamApiError, RetentionPolicy, StorageType, type StreamConfig } from "@nats-io/jetstream";
import { CentralError } from "../errors.js";
import type { NatsOptions } from "./nats-options.js";
import { partitionOf } from "./partition.js";

/** Stream of partition p. */
export const windowStream = (p: number) => `OW_WIN_${p}`;
/** Subject of partition p. */
export const windowSubject = (p: number) => `ow.win.${p}`;

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
  /** Window-log messages that carry a share of the batch (one per partition it touches; shared with other batches). */
  messages: number;
  /** Of those, how many the stream already had (a retried message whose first PubAck was lost). */
  duplicates: number;
}

export interface WindowLogPublisher {
  /**
   * Hands `batch` from `node` to the log: its share of each partition joins
   * the message that partition sends next (every batch taken within
   * `lingerMs` goes out together, one message per partition), and the promise
   * resolves when every message carrying a share was acknowledged. A PubAck
   * that does not come (a leader election, no quorum) is retried with the
   * same msgID until `retryForMs`; then it rejects with
   * CENTRAL_NATS_UNAVAILABLE and the caller must not ack the batch (the
   * sidecar replays it; the owners' high-water marks drop what was stored).
   *
   * Order: a node's batches reach each partition in call order. A batch joins
   * the open message only when the node's previous batch is in that same
   * message or was acknowledged; otherwise it waits for it, and when that one
   * fails, it fails too without being published (a later seq stored while an
   * earlier one is missing would make the owner drop the earlier one when the
   * sidecar replays it). A message is stored whole or not at all.
   */
  publish(node: NodeIdentity, batch: Batch, receivedUnixMs?: number): Promise<PublishOutcome>;
}

export interface PublisherOptions {
  partitions: number;
  /** Wait for one PubAck (default 5 s). */
  ackTimeoutMs?: number;
  /** Keep retrying a partition's publish this long (default 30 s; a leader election takes ~6 s here). */
  retryForMs?: number;
  /**
   * Batches taken within this many ms of the first one waiting go out as one message per partition (default 0:
   * those taken in the same event-loop turn). Fewer, larger messages: less CPU in the servers, the publisher
   * and the owners, at the price of this much latency.
   */
  lingerMs?: number;
  /** A message is sent before the linger ends once it would grow past this many bytes (default 512 KiB; keep it under the servers' max_payload, 1 MiB by default). */
  maxMessageBytes?: number;
  /** Names the publisher in its msgIDs (`<name>.<random>:<n>:<p>`; the random part keeps a restarted replica's from repeating). */
  name?: string;
}

/** NATS header of a coalesced window-log message: how many PartitionBatch entries it carries. */
export const ENTRIES_HEADER = "Ow-Entries";

/** One batch's share of one partition, waiting for its message. */
interface Entry {
  nodeId: string;
  bytes: Uint8Array;
  settle: (err: Error | undefined, duplicate: boolean) => void;
}

/** The batches taken since the last send: one future message per partition. */
interface Round {
  parts: Map<number, Entry[]>;
  bytes: number;
  sent: boolean;
}

const isPayloadError = (err: unknown) => /MAX_PAYLOAD|payload/i.test(String((err as Error)?.message));

/** A PartitionBatches of already encoded PartitionBatch entries (field 1, length-delimited each). */
function frame(entries: readonly Entry[]): Uint8Array {
  const w = new BinaryWriter();
  for (const e of entries) w.tag(1, WireType.LengthDelimited).bytes(e.bytes);
  return w.finish();
}

export function createWindowLogPublisher(js: JetStreamClient, opts: PublisherOptions): WindowLogPublisher {
  const ackTimeoutMs = opts.ackTimeoutMs ?? 5_000;
  const retryForMs = opts.retryForMs ?? 30_000;
  const lingerMs = opts.lingerMs ?? 0;
  const maxBytes = opts.maxMessageBytes ?? 512 * 1024;
  const id = `${opts.name ?? "ingest"}.${randomBytes(6).toString("base64url")}`;
  let sentMessages = 0;

  const publishOne = async (p: number, bytes: Uint8Array, entries: number, msgID: string): Promise<boolean> => {
    const deadline = Date.now() + retryForMs;
    const hdrs = headers();
    hdrs.set(ENTRIES_HEADER, String(entries));
    let wait = 100;
    for (;;) {
      try {
        const ack = await js.publish(windowSubject(p), bytes, { msgID, headers: hdrs, timeout: ackTimeoutMs, expect: { streamName: windowStream(p) } });
        return ack.duplicate;
      } catch (err) {
        if (isPayloadError(err)) throw err;
        if (Date.now() + wait > deadline) {
          throw new CentralError("CENTRAL_NATS_UNAVAILABLE", `no PubAck from ${windowStream(p)} for ${msgID} within ${retryForMs} ms: ${(err as Error).message}`, { cause: err });
        }
        await new Promise((r) => setTimeout(r, wait));
        wait = Math.min(wait * 2, 1_000);
      }
    }
  };

  /**
   * Sends one partition's entries as one message. Over the servers' max_payload (smaller than maxBytes): each
   * entry alone, in order; an entry too large alone fails its batch with CENTRAL_BATCH_TOO_LARGE and the node's
   * later entries here are not sent (they fail: never a later seq over a missing one).
   */
  const sendPart = async (p: number, entries: Entry[]): Promise<void> => {
    const bytes = frame(entries);
    try {
      const dup = await publishOne(p, bytes, entries.length, `${id}:${++sentMessages}:${p}`);
      for (const e of entries) e.settle(undefined, dup);
      return;
    } catch (err) {
      if (!isPayloadError(err) || entries.length === 1) {
        const out = isPayloadError(err) ? new CentralError("CENTRAL_BATCH_TOO_LARGE", `partition ${p} share of the batch (${bytes.length} bytes) is over the NATS max_payload`, { cause: err }) : (err as Error);
        for (const e of entries) e.settle(out, false);
        return;
      }
    }
    const failed = new Map<string, Error>();
    for (const e of entries) {
      const earlier = failed.get(e.nodeId);
      if (earlier) {
        e.settle(earlier, false);
        continue;
      }
      await sendPart(p, [{ ...e, settle: (err, dup) => (err && failed.set(e.nodeId, err), e.settle(err, dup)) }]);
    }
  };

  let open: Round = { parts: new Map(), bytes: 0, sent: false };
  let timer: ReturnType<typeof setTimeout> | undefined;
  let immediate: ReturnType<typeof setImmediate> | undefined;
  const send = () => {
    if (timer) clearTimeout(timer);
    if (immediate) clearImmediate(immediate);
    timer = immediate = undefined;
    const round = open;
    open = { parts: new Map(), bytes: 0, sent: false };
    round.sent = true;
    for (const [p, entries] of round.parts) void sendPart(p, entries);
  };

  /** Adds a batch's shares to the open round (the caller checked the order rules); settles with their PubAcks. */
  const join = (node: NodeIdentity, shares: Array<[number, Uint8Array]>, size: number): Promise<PublishOutcome> => {
    const round = open;
    const acks = shares.map(([p, bytes]) => {
      let entries = round.parts.get(p);
      if (!entries) round.parts.set(p, (entries = []));
      const list = entries;
      return new Promise<boolean>((resolve, reject) => list.push({ nodeId: node.nodeId, bytes, settle: (err, dup) => (err ? reject(err) : resolve(dup)) }));
    });
    round.bytes += size;
    if (round.bytes >= maxBytes) send();
    else if (!timer && !immediate) {
      if (lingerMs > 0) timer = setTimeout(send, lingerMs);
      else immediate = setImmediate(send);
    }
    return Promise.all(acks).then((dups) => ({ messages: dups.length, duplicates: dups.filter(Boolean).length }));
  };

  /**
   * A node's last batch handed in: the round it joined (undefined while it waits), what it waits for, its outcome.
   * Batches waiting for the same in-flight message join the next round together, in call order (callbacks on one
   * promise run in the order they were added), so a replay burst goes out a round at a time, not a batch at a time.
   */
  interface Pending {
    round?: Round;
    gate?: Promise<unknown>;
    outcome: Promise<PublishOutcome>;
    settled: boolean;
    failed?: Error;
  }
  const last = new Map<string, Pending>();
  /** In flight = in a round already sent, not yet acknowledged. */
  const inFlight = (x: Pending) => !x.settled && x.round !== undefined && (x.round !== open || open.sent);

  return {
    publish(node, batch, receivedUnixMs = Date.now()) {
      const shares: Array<[number, Uint8Array]> = [];
      let size = 0;
      for (const [p, s] of splitByPartition(batch, opts.partitions)) {
        const bytes = toBinary(PartitionBatchSchema, create(PartitionBatchSchema, { node, seq: batch.seq, partition: p, windows: s.windows, exemplars: s.exemplars, receivedUnixMs: BigInt(receivedUnixMs) }));
        shares.push([p, bytes]);
        size += bytes.length + 8;
      }
      const prev = last.get(node.nodeId);
      const live = prev && !prev.settled ? prev : undefined;
      const mine: Pending = { outcome: undefined as unknown as Promise<PublishOutcome>, settled: false };
      const doJoin = (): Promise<PublishOutcome> => {
        // A round that would grow past maxBytes goes now; this batch starts the next one.
        if (open.bytes > 0 && open.bytes + size > maxBytes) send();
        if (live) {
          // Never published after a failed predecessor.
          if (live.failed) return Promise.reject(live.failed);
          // The previous batch waits (its round filled up before it could join): wait for the same, join right after it.
          if (!live.settled && live.round === undefined) {
            mine.gate = live.gate;
            return live.gate!.then(doJoin);
          }
          // The previous batch's round was sent before this one could join: after its PubAcks.
          if (inFlight(live)) {
            mine.gate = live.outcome;
            return live.outcome.then(doJoin);
          }
        }
        mine.round = open;
        return join(node, shares, size);
      };
      const own = doJoin();
      // A failure of the previous batch fails this one too (even when its own shares were stored: the sidecar replays, the marks drop them).
      mine.outcome = live ? Promise.all([live.outcome, own]).then(([, o]) => o) : own;
      last.set(node.nodeId, mine);
      const done = (err?: Error) => {
        mine.settled = true;
        mine.failed = err;
        if (last.get(node.nodeId) === mine) last.delete(node.nodeId);
      };
      mine.outcome.then(() => done(), done);
      return mine.outcome;
    },
  };
}

export interface PartitionReaderOptions {
  /** First stream sequence to deliver (1 or less: from the oldest message the stream still has). */
  fromSeq: number;
  /**
   * Called once per message with the batches it carries (one, or the
   * several the ingest coalesced), in stream order; the next message is not
   * handed over before the returned promise settles (back-pressure: at most
   * `maxBuffered` messages wait in the client). A message's batches are one
   * unit: the stream sequence names all of them. A throw stops the reader and
   * rejects `done`.
   */
  handler: (batches: readonly PartitionBatch[], streamSeq: number) => void | Promise<void>;
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
 * The batches of one window-log message: a PartitionBatches when the message has the ENTRIES_HEADER, else one
 * PartitionBatch (the first format). Undefined (and `onError`) when it does not decode.
 */
export function decodeWindowMessage(data: Uint8Array, coalesced: boolean, onError: (err: Error) => void): PartitionBatch[] | undefined {
  try {
    return coalesced ? fromBinary(PartitionBatchesSchema, data).batches : [fromBinary(PartitionBatchSchema, data)];
  } catch (err) {
    onError(err as Error);
    return undefined;
  }
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
      const batches = decodeWindowMessage(m.data, m.headers?.has(ENTRIES_HEADER) ?? false, (err) => opts.onUndecodable?.(m.seq, err));
      if (batches) await opts.handler(batches, m.seq);
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
