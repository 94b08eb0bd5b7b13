/**
 * Ingest families (issue 15 item 1), fed by the Ingest's own events and
 * counters (the ingest path does nothing extra for metrics beyond one counter
 * increment per batch). Labels are bounded: none is peer-chosen.
 *
 *   originwatch_central_sidecar_sessions           gauge    sidecar streams connected now
 *   originwatch_central_ingest_batches_total       counter  batches counted (first delivery)
 *   originwatch_central_ingest_summaries_total     counter  per-origin 1 s summaries (windows) in them
 *   originwatch_central_ingest_duplicates_total    counter  replayed batches acknowledged and not counted again
 *   originwatch_central_ingest_rejected_batches_total{code}  counter  batches refused for good (BatchReject), by
 *                                                  CentralErrorCode (a closed vocabulary: bounded)
 *   originwatch_central_ingest_refused_hellos_total          counter  hellos refused (over the node/origin caps, bad labels, ...)
 *   originwatch_central_ingest_refused_probe_results_total   counter  probe results not asked for, or malformed
 *   originwatch_central_ingest_failed_writes_total           counter  failed durable writes (their streams ended UNAVAILABLE)
 * The last four are read from Ingest.counters at scrape time.
 */
import client from "prom-client";
import type { Ingest } from "../ingest/ingest-service.js";

export function registerIngestMetrics(registry: client.Registry, ingest: Ingest): () => void {
  const registers = [registry];
  new client.Gauge({
    name: "originwatch_central_sidecar_sessions",
    help: "Sidecar ingest streams connected now",
    registers,
    collect() {
      this.set(ingest.sessions.size);
    },
  });
  const batches = new client.Counter({ name: "originwatch_central_ingest_batches_total", help: "Batches counted (first delivery)", registers });
  const summaries = new client.Counter({ name: "originwatch_central_ingest_summaries_total", help: "Per-origin 1 s summaries (windows) in the counted batches", registers });
  const duplicates = new client.Counter({ name: "originwatch_central_ingest_duplicates_total", help: "Replayed batches acknowledged and not counted again", registers });
  const c = ingest.counters;
  new client.Counter({
    name: "originwatch_central_ingest_rejected_batches_total",
    help: "Batches refused for good (BatchReject), by code",
    labelNames: ["code"],
    registers,
    collect() {
      this.reset();
      for (const [code, n] of Object.entries(c.rejectedByCode)) this.inc({ code }, n);
    },
  });
  const pulled: Array<[string, string, () => number]> = [
    ["originwatch_central_ingest_refused_hellos_total", "Hellos refused (over a node or origin cap, bad labels or identity)", () => c.refusedHellos],
    ["originwatch_central_ingest_refused_probe_results_total", "Probe results refused (not a probe sent to that node, or malformed)", () => c.refusedProbeResults],
    ["originwatch_central_ingest_failed_writes_total", "Durable writes of counted batches that failed (the affected streams ended UNAVAILABLE and replay)", () => c.failedWrites],
  ];
  for (const [name, help, read] of pulled) {
    new client.Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }
  const onBatch = (_s: unknown, b: { windows: { length: number } }) => {
    batches.inc();
    summaries.inc(b.windows.length);
  };
  const onDuplicate = () => duplicates.inc();
  ingest.on("batch", onBatch);
  ingest.on("duplicate", onDuplicate);
  return () => {
    ingest.off("batch", onBatch);
    ingest.off("duplicate", onDuplicate);
  };
}
