/**
 * A replica's operator-facing control plane in cluster mode (issue 16): the
 * fleet config in KV (config-replica.ts) and probes to sidecars on any
 * replica (session-directory.ts + probe-relay.ts) and FlushWindows to
 * sidecars on any replica (flush-relay.ts), started together from the
 * replica's NATS handle so `startCentral` wires them in a few lines:
 * `configs` replaces the embedded ConfigStore (and records node ACK/NACKs for
 * ConfigPush), `remoteProbeTargets` and `remoteFlush` go to the VerdictService, `nodes` to
 * the queries, the Forgetter and the age-out (cluster-nodes.ts).
 *
 * close() stops the relay, the config watches and the directory; idempotent.
 */
import type { Logger } from "pino";
import type { Ingest } from "../ingest/ingest-service.js";
import type { NodeRecord } from "../store/level-store.js";
import type { ProbeBroker, ProbeTarget } from "../verdict/probe-broker.js";
import type { ConfigKv } from "./config-kv.js";
import { openConfigReplica } from "./config-replica.js";
import { startFlushRelay } from "./flush-relay.js";
import { startProbeRelay } from "./probe-relay.js";
import type { ReplicaLink } from "./replica-link.js";
import { feedSessionDirectory, openSessionDirectory } from "./session-directory.js";
import { type ClusterNodes, startClusterNodes } from "./cluster-nodes.js";

export interface ControlPlaneOptions {
  link: ReplicaLink;
  ingest: Ingest;
  /** The replica's node records (ListNodes): node config state from every replica is mirrored here. */
  nodes: Map<string, NodeRecord>;
  log: Logger;
}

export interface ControlPlane {
  /** FleetConfigSource for ConfigService, ConfigPush and the verdict; ConfigPush's `records`. */
  configs: ConfigKv;
  /** Where nodes are connected, cluster-wide, and forgetting them everywhere (cluster-nodes.ts): give to the Forgetter, queries and age-out. */
  nodes: ClusterNodes;
  /** Set by the wiring: forget a node on this replica (another replica forgot it). */
  onNodeForgotten: (nodeId: string) => void;
  /** Probe targets on other replicas (VerdictServiceOptions.remoteProbeTargets). */
  remoteProbeTargets(origin: string, broker: ProbeBroker): ProbeTarget[];
  /** FlushWindows to the origin's sidecars on the other replicas (VerdictServiceOptions.remoteFlush). */
  remoteFlush(origin: string): void;
  close(): Promise<void>;
}

export async function startControlPlane(o: ControlPlaneOptions): Promise<ControlPlane> {
  const closers: Array<() => unknown> = [];
  const close = async () => {
    for (const c of closers.splice(0).reverse()) await c();
  };
  try {
    const directory = await openSessionDirectory(o.link);
    closers.push(() => directory.close(), feedSessionDirectory(directory, o.ingest, o.log));
    let forgotten: (nodeId: string) => void = () => {};
    const config = await openConfigReplica({ link: o.link, nodes: o.nodes, labelsOf: (id) => directory.get(id), log: o.log, onForget: (id) => forgotten(id) });
    closers.push(() => config.close());
    const nodes = startClusterNodes({ directory, ingest: o.ingest, nodes: o.nodes, configs: config.configs, replicaId: o.link.replicaId });
    closers.push(() => nodes.close());
    const relay = startProbeRelay({ link: o.link, ingest: o.ingest, directory, log: o.log });
    closers.push(() => relay.close());
    const flush = startFlushRelay({ link: o.link, ingest: o.ingest, log: o.log });
    closers.push(() => flush.close());
    return {
      configs: config.configs,
      nodes,
      set onNodeForgotten(fn: (nodeId: string) => void) {
        forgotten = fn;
      },
      get onNodeForgotten() {
        return forgotten;
      },
      remoteProbeTargets: relay.remoteTargets,
      remoteFlush: flush.requestFlush,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
