/**
 * Forgetting an origin or a node (issue 10 item 3): the operator's
 * ForgetOrigin / ForgetNode, and the idle age-out (age-out.ts), take the same
 * path. Each part forgets what it owns — the ingest its totals, windows, node
 * records and high-water marks; the exemplar ring; the verdict its state,
 * lookback and tracks — then the LevelDB records go, after the counted-batch
 * writes already under way, so none of them writes a forgotten origin back.
 *
 * What stays: per-minute history and closed incidents, until their own
 * retention (--history-retention). An origin that is still reported comes back
 * with the next batch, counting from zero; a forgotten node reconnects as new
 * (high-water mark 0: its sidecar replays what it had not had acknowledged).
 */
import type { ExemplarStore } from "../ingest/exemplar-store.js";
import type { Ingest } from "../ingest/ingest-service.js";
import type { LevelStore } from "../store/level-store.js";
import { CentralError } from "../errors.js";
import type { NodePresence } from "./node-presence.js";

/** The verdict side of forgetting (VerdictService). */
export interface VerdictForget {
  knows(origin: string): boolean;
  forgetOrigin(origin: string, why: string): Promise<number>;
  forgetNode(nodeId: string): void;
}

export interface ForgetDeps {
  ingest: Ingest;
  store: LevelStore;
  verdict?: VerdictForget;
  exemplars?: ExemplarStore;
  /**
   * Cluster mode (central/cluster/cluster-nodes.ts): a node connected to any
   * replica is refused, and a forget done here is announced to every replica
   * (each then forgets the node `here`).
   */
  cluster?: { presence: NodePresence; forgetEverywhere(nodeId: string): Promise<void> };
}

export interface ForgottenOrigin {
  /** Open incidents closed by forgetting the origin. */
  closedIncidents: number;
}

export class Forgetter {
  constructor(private deps: ForgetDeps) {}

  /** Forget an origin everywhere; undefined when nothing knew it. */
  async origin(origin: string, why: string): Promise<ForgottenOrigin | undefined> {
    const d = this.deps;
    const known = d.ingest.forgetOrigin(origin) || (d.verdict?.knows(origin) ?? false);
    d.exemplars?.forget(origin);
    const closedIncidents = d.verdict ? await d.verdict.forgetOrigin(origin, why) : 0;
    await d.ingest.settled();
    await d.store.deleteOrigin(origin);
    return known ? { closedIncidents } : undefined;
  }

  /**
   * Forget a node; false when unknown. Throws CENTRAL_NODE_CONNECTED
   * (FAILED_PRECONDITION) while it has a live session (in cluster mode: on any
   * replica). `here`: only this central's records (cluster mode: what another
   * replica's forget asks of this one).
   */
  async node(nodeId: string, scope: "everywhere" | "here" = "everywhere"): Promise<boolean> {
    const d = this.deps;
    const everywhere = scope === "everywhere" ? d.cluster : undefined;
    if (everywhere?.presence.isConnected(nodeId) && !d.ingest.isConnected(nodeId)) {
      throw new CentralError("CENTRAL_NODE_CONNECTED", `node ${nodeId} has a live session on replica ${everywhere.presence.replicaOf(nodeId)}: stop its sidecar (or wait until it disconnects) before forgetting it`);
    }
    const known = d.ingest.forgetNode(nodeId);
    d.verdict?.forgetNode(nodeId);
    await d.ingest.settled();
    await d.store.deleteNode(nodeId);
    await everywhere?.forgetEverywhere(nodeId);
    return known;
  }
}
