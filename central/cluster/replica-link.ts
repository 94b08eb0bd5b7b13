/**
 * What the cluster modules of this folder need of a replica's NATS handle:
 * the connection, its JetStream client, this replica's id and the stream
 * replica count. The replica's ClusterContext (cluster-context.ts: one
 * connection per replica, opened at start-up) has all of it, so it is passed
 * as is; tests pass a connection of their own.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

export interface ReplicaLink {
  nc: NatsConnection;
  js: JetStreamClient;
  /** This replica's id (letters, digits, -_=): its probe subject and the writer of its records. */
  replicaId: string;
  /** Replicas of every stream and bucket (`--nats-replicas`). */
  options: { replicas: number };
}
