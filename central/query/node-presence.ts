/**
 * Where a node's sidecar is connected, as ListNodes, ForgetNode and the
 * age-out ask it. On one central that is this central's own sessions
 * (`localPresence`); in cluster mode it is any replica's
 * (central/cluster/cluster-nodes.ts: the session directory), so every
 * replica answers alike.
 */
import type { Ingest } from "../ingest/ingest-service.js";

export interface NodePresence {
  /** True while the node has a live session (on this central, or in cluster mode on any replica). */
  isConnected(nodeId: string): boolean;
  /** The replica holding the node's session; "" when not connected, or on one central. */
  replicaOf(nodeId: string): string;
  /**
   * Cluster mode: the session record of a node connected to another replica (its labels and since when), which
   * ListNodes uses where this replica's record does not have them yet (it can learn of the node from its config
   * ACK before the session directory's record arrives).
   */
  sessionElsewhere?(nodeId: string): { isp: string; region: string; connectedSinceMs?: number } | undefined;
}

/** One central: its own sessions. */
export function localPresence(ingest: Ingest): NodePresence {
  return { isConnected: (id) => ingest.isConnected(id), replicaOf: () => "" };
}
