/**
 * The fleet config on one replica in cluster mode (issue 16): ConfigKv is the
 * FleetConfigSource (SetConfig on any replica is a compare-and-set in KV, a
 * stale version refused with CENTRAL_CONFIG_CONFLICT / FAILED_PRECONDITION as
 * on the embedded central; GetConfig and ListConfigHistory read KV), the
 * replica's own ConfigPush pushes each new version to its own sessions and
 * records every ACK/NACK and applied version in KV (`records`), and this
 * module mirrors every node's record from KV into the replica's node map, so
 * ListNodes on any replica shows each node's applied version and last NACK.
 *
 * A node not known to this replica (its sidecar never connected here) is
 * added to the map with what KV and the session directory know of it; the
 * ingest fills the rest if it ever connects here.
 */
import type { Logger } from "pino";
import type { NodeRecord } from "../store/level-store.js";
import { ConfigKv, type NodeConfigRecord } from "./config-kv.js";
import type { ReplicaLink } from "./replica-link.js";

export interface ConfigReplicaOptions {
  link: ReplicaLink;
  /** The replica's node records (what ListNodes reads). */
  nodes: Map<string, NodeRecord>;
  /** Labels and origins of a node this replica has no record of (the session directory). */
  labelsOf?: (nodeId: string) => { isp: string; region: string; origins: string[] } | undefined;
  log: Logger;
  bucket?: string;
  /** A node was forgotten on some replica (its KV record deleted): forget it here too. */
  onForget?: (nodeId: string) => void;
}

export interface ConfigReplica {
  /** FleetConfigSource for ConfigService, ConfigPush and the verdict; also the NodeConfigRecorder of ConfigPush. */
  configs: ConfigKv;
  close(): void;
}

/** The NACK text ListNodes shows, as the embedded ConfigPush writes it ("" after an ACK). */
export function nackReasonOf(rec: NodeConfigRecord): string {
  const a = rec.lastAck;
  return a && !a.accepted ? `version ${a.version}: ${a.reason || "rejected without a reason"}` : "";
}

export async function openConfigReplica(o: ConfigReplicaOptions): Promise<ConfigReplica> {
  const configs = await ConfigKv.open(o.link.js, { replicas: o.link.options.replicas, replica: o.link.replicaId, bucket: o.bucket });
  const apply = (rec: NodeConfigRecord) => {
    const n = o.nodes.get(rec.nodeId);
    if (n) {
      n.appliedConfigVersion = rec.appliedVersion;
      n.lastNackReason = nackReasonOf(rec);
      return;
    }
    const l = o.labelsOf?.(rec.nodeId);
    o.nodes.set(rec.nodeId, {
      nodeId: rec.nodeId,
      isp: l?.isp ?? "",
      region: l?.region ?? "",
      version: "",
      origins: l?.origins ?? [],
      lastSeenMs: rec.atMs,
      connectedSinceMs: 0,
      appliedConfigVersion: rec.appliedVersion,
      lastNackReason: nackReasonOf(rec),
      bufferedBatches: "0",
      droppedBatches: "0",
    });
  };
  let stopNodes: () => void;
  try {
    stopNodes = await configs.watchNodes(apply, (id) => o.onForget?.(id));
  } catch (err) {
    configs.close();
    throw err;
  }
  o.log.info({ version: configs.current().version.toString(), replica: o.link.replicaId }, "cluster config opened");
  return {
    configs,
    close() {
      stopNodes();
      configs.close();
    },
  };
}
