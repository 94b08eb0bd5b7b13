/**
 * Where the ingest hands a validated, counted batch (the seam between the
 * ingest and the storage mode). The embedded central's sink is the Committer
 * (LevelDB group commit); cluster mode's is central/cluster/cluster-sink.ts
 * (publish to the window log). Contract, for either:
 * - `commitBatch` resolves only when the batch is durable (written, or every
 *   PubAck in); the ingest acks the sidecar after it, never before. It moves
 *   the node's entry in the shared high-water map once durable.
 * - On a failure it calls `onFailure` with the nodes that lost batches
 *   (before their promises reject); later batches of those nodes fail too.
 * - `barrier` resolves once everything queued before it is durable.
 * - `highWaterOf` (cluster only) is the node's cluster-wide mark, read before
 *   the Welcome so a sidecar moving between replicas is counted once.
 */
import type { DecodedBatch } from "./batch-decoder.js";
import type { NodeRecord } from "../store/level-store.js";
import type { TotalsDelta } from "./committer.js";

export interface BatchSink {
  commitBatch(nodeId: string, seq: bigint, deltas: Map<string, TotalsDelta>, node: NodeRecord | undefined, batch: DecodedBatch): Promise<void>;
  saveNode(node: NodeRecord): Promise<void>;
  barrier(): Promise<void>;
  settled(): Promise<void>;
  onFailure?: (nodeIds: ReadonlySet<string>, err: unknown) => void;
  readonly waiting: number;
  highWaterOf?(nodeId: string): Promise<bigint | undefined>;
}
