/**
 * ConfigPush distributes the fleet config, xDS-style: a new version goes to
 * every connected session at once, and a session that connects later gets it
 * when the version it reports in Hello differs. ACKs and NACKs update the
 * node record (applied version, last NACK reason), which ListNodes shows.
 * It never decides what the config is (ConfigService/ConfigStore do). In
 * cluster mode each replica runs one for its own sessions, fed by ConfigKv's
 * watch, and `records` writes the node state to KV for the other replicas.
 */
import type { Logger } from "pino";
import type { Config } from "../../proto/gen/originwatch/v1/config_pb.js";
import type { ConfigAck } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import type { Ingest, Session } from "../ingest/ingest-service.js";
import type { LevelStore } from "../store/level-store.js";
import type { FleetConfigSource } from "./config-store.js";

export interface ConfigPushOptions {
  ingest: Ingest;
  configs: FleetConfigSource;
  store: LevelStore;
  log: Logger;
  /**
   * Cluster mode: where each node's applied version and ACK/NACK also go so
   * every replica sees them (ConfigKv). Failures are logged, never fatal.
   */
  records?: NodeConfigRecorder;
}

/** Records node config state beyond this central (cluster mode: ConfigKv). */
export interface NodeConfigRecorder {
  recordAck(nodeId: string, ack: { version: bigint; accepted: boolean; reason: string }): Promise<unknown>;
  recordApplied(nodeId: string, appliedVersion: bigint): Promise<unknown>;
}

export interface ConfigPush {
  /** Sessions a push was sent to, per version (tests, bench). */
  pushed(version: bigint): number;
  close(): void;
}

const MAX_REASON = 1024;

export function createConfigPush(opts: ConfigPushOptions): ConfigPush {
  const { ingest, configs, store, log, records } = opts;
  const recordErr = (node: string) => (err: unknown) => log.error({ err, node }, "cannot record node config state in the cluster");
  const counts = new Map<bigint, number>();
  const push = (s: Session, config: Config) => {
    if (s.send({ case: "configPush", value: { config } })) counts.set(config.version, (counts.get(config.version) ?? 0) + 1);
  };
  const onChanged = (config: Config) => {
    for (const s of ingest.sessions.values()) push(s, config);
    log.info({ version: config.version.toString(), sessions: ingest.sessions.size }, "config pushed");
  };
  const onConnected = (s: Session) => {
    const cur = configs.current();
    if (records && s.node) records.recordApplied(s.node.nodeId, s.hello?.appliedConfigVersion ?? 0n).catch(recordErr(s.node.nodeId));
    if (cur.version > 0n && s.hello?.appliedConfigVersion !== cur.version) push(s, cur);
  };
  const onAck = (s: Session, ack: ConfigAck) => {
    const node = s.node;
    if (!node) return;
    const reason = ack.reason.slice(0, MAX_REASON);
    if (ack.accepted) {
      node.appliedConfigVersion = ack.version.toString();
      node.lastNackReason = "";
    } else {
      node.lastNackReason = `version ${ack.version}: ${reason || "rejected without a reason"}`;
      log.warn({ node: node.nodeId, version: ack.version.toString(), reason }, "config NACKed");
    }
    node.lastSeenMs = Date.now();
    records?.recordAck(node.nodeId, { version: ack.version, accepted: ack.accepted, reason }).catch(recordErr(node.nodeId));
    store.putNode(node).catch((err: unknown) => log.error({ err, node: node.nodeId }, "cannot persist node record"));
  };
  configs.on("changed", onChanged);
  ingest.on("node-connected", onConnected);
  ingest.on("config-ack", onAck);
  return {
    pushed: (v) => counts.get(v) ?? 0,
    close() {
      configs.off("changed", onChanged);
      ingest.off("node-connected", onConnected);
      ingest.off("config-ack", onAck);
    },
  };
}
