/**
 * ListNodes, ForgetNode and the node age-out alike on every replica, in
 * cluster mode (issue 16):
 * - presence: a node is connected when it has a live session on ANY replica
 *   (this replica's ingest, or the session directory, KV `OW_SESSIONS`), and
 *   ListNodes names that replica (`Node.replica`);
 * - while the directory lists a node, this replica keeps its node record's
 *   `lastSeenMs` (and `connectedSinceMs`) current, so a node that leaves ages
 *   out after the same idle time on every replica, not at once on a replica
 *   it never connected to;
 * - a forget (ForgetNode, age-out) is refused while the node is connected
 *   anywhere (Forgetter), then announced by deleting the node's record in
 *   `OW_CONFIG` (`forgetEverywhere`); every replica's watch sees the delete
 *   (config-replica.ts `onForget`) and forgets the node there too.
 */
import type { Ingest } from "../ingest/ingest-service.js";
import type { NodePresence } from "../query/node-presence.js";
import type { NodeRecord } from "../store/level-store.js";
import type { ConfigKv } from "./config-kv.js";
import type { SessionDirectory } from "./session-directory.js";

export interface ClusterNodesOptions {
  directory: SessionDirectory;
  ingest: Ingest;
  /** The replica's node records (what ListNodes reads). */
  nodes: Map<string, NodeRecord>;
  configs: ConfigKv;
  replicaId: string;
  /** How often records of nodes connected elsewhere are freshened (default 5 s). */
  refreshMs?: number;
}

export interface ClusterNodes {
  presence: NodePresence;
  /** Tells every replica the node was forgotten (deletes its OW_CONFIG record). */
  forgetEverywhere(nodeId: string): Promise<void>;
  close(): void;
}

export function startClusterNodes(o: ClusterNodesOptions): ClusterNodes {
  const local = (id: string) => o.ingest.isConnected(id);
  const presence: NodePresence = {
    isConnected: (id) => local(id) || o.directory.get(id) !== undefined,
    replicaOf: (id) => (local(id) ? o.replicaId : (o.directory.get(id)?.replica ?? "")),
    sessionElsewhere: (id) => (local(id) ? undefined : o.directory.get(id)),
  };
  const refresh = () => {
    const now = Date.now();
    for (const rec of o.directory.list()) {
      const n = o.nodes.get(rec.nodeId);
      if (!n || local(rec.nodeId)) continue; // this replica's own sessions keep their records current
      n.lastSeenMs = Math.max(n.lastSeenMs, now);
      if (rec.connectedSinceMs) n.connectedSinceMs = rec.connectedSinceMs;
      // A record made from the node's config ACK before its session record arrived has no labels yet.
      if (!n.isp) n.isp = rec.isp;
      if (!n.region) n.region = rec.region;
      if (!n.origins.length) n.origins = rec.origins;
    }
  };
  const timer = setInterval(refresh, o.refreshMs ?? 5_000);
  timer.unref();
  return {
    presence,
    forgetEverywhere: (id) => o.configs.forgetNode(id),
    close: () => clearInterval(timer),
  };
}
