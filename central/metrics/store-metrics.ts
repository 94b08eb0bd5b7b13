/**
 * LevelDB write latency (issue 15 item 1): each group commit of counted
 * batches (synced, so this is mostly fsync time) is one observation.
 *
 *   originwatch_central_store_write_seconds  histogram
 */
import client from "prom-client";
import type { LevelStore } from "../store/level-store.js";

export const WRITE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export function registerStoreMetrics(registry: client.Registry, store: Pick<LevelStore, "onWrite">): () => void {
  const h = new client.Histogram({ name: "originwatch_central_store_write_seconds", help: "Latency of the synced LevelDB write of counted batches", buckets: WRITE_BUCKETS, registers: [registry] });
  store.onWrite = (s) => h.observe(s);
  return () => {
    store.onWrite = undefined;
  };
}
