/**
 * The ingest's caps, as the central's config names them (defaults live in
 * CENTRAL_DEFAULTS, config.ts: one source), what a sidecar is told of them in
 * Welcome.limits, and the command-line flags that set them. Every structure
 * keyed by something a peer chooses (node, origin, window time, batch size) is
 * bounded by one of these; see README.md in this folder for the memory bound.
 */
import type { Command } from "commander";
import { create } from "@bufbuild/protobuf";
import { type IngestLimits, IngestLimitsSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { CENTRAL_DEFAULTS, type CentralConfig } from "../config.js";

export type IngestLimitOptions = Pick<
  CentralConfig,
  | "maxMessageBytes"
  | "ingestRatePerSec"
  | "ingestBurst"
  | "maxWindowsPerBatch"
  | "maxExemplarsPerBatch"
  | "maxOriginsPerNode"
  | "maxOrigins"
  | "maxNodes"
  | "maxFutureSkewMs"
  | "maxRequestsPerSec"
>;

/**
 * Windows one batch may carry: the cap, and no more than the node's bucket
 * can ever hold (a batch over the burst could never be read, so it is refused).
 */
export function windowsPerBatchOf(l: IngestLimitOptions): number {
  return Math.min(l.maxWindowsPerBatch, l.ingestBurst);
}

/** Exemplars one batch may carry: the cap, and no more than the bucket can ever hold. */
export function exemplarsPerBatchOf(l: IngestLimitOptions): number {
  return Math.min(l.maxExemplarsPerBatch, l.ingestBurst);
}

/** What Welcome.limits tells a sidecar: it never sends more (it splits batches). */
export function advertisedLimits(l: IngestLimitOptions): IngestLimits {
  const u32 = (n: number) => Math.min(n, 0xffff_ffff);
  return create(IngestLimitsSchema, {
    maxMessageBytes: u32(l.maxMessageBytes),
    maxWindowsPerBatch: u32(windowsPerBatchOf(l)),
    maxExemplarsPerBatch: u32(exemplarsPerBatchOf(l)),
    maxOriginsPerNode: u32(l.maxOriginsPerNode),
    maxFutureSkewMs: u32(l.maxFutureSkewMs),
    maxWindowsPerSec: u32(l.ingestRatePerSec),
  });
}

/** The flags of the ingest caps: [flag, config field, help]. Defaults are CENTRAL_DEFAULTS'. */
const FLAGS: Array<[string, keyof IngestLimitOptions | "maxRecentWindows" | "maxExemplars", string]> = [
  ["--ingest-rate <n>", "ingestRatePerSec", "window summaries (+ exemplars) per second per node, across its streams; over it reading waits"],
  ["--ingest-burst <n>", "ingestBurst", "burst above --ingest-rate; a batch larger than this is refused"],
  ["--max-windows-per-batch <n>", "maxWindowsPerBatch", "window summaries per batch (BatchReject above)"],
  ["--max-exemplars-per-batch <n>", "maxExemplarsPerBatch", "exemplars per batch (BatchReject above)"],
  ["--max-origins-per-node <n>", "maxOriginsPerNode", "origins one node may declare in its hello (RESOURCE_EXHAUSTED above)"],
  ["--max-origins <n>", "maxOrigins", "distinct origins in total (a batch creating one more is refused)"],
  ["--max-nodes <n>", "maxNodes", "distinct node ids in total (a new node's hello is refused RESOURCE_EXHAUSTED)"],
  ["--max-future-skew <ms>", "maxFutureSkewMs", "how far ahead of the central's clock a window may start (BatchReject above)"],
  ["--max-requests-per-sec <n>", "maxRequestsPerSec", "plausible maximum requests per second of window length per node (BatchReject above)"],
  ["--max-recent-windows <n>", "maxRecentWindows", "no effect (accepted so existing command lines start): the verdict's lookback is the one in-memory copy of recent windows"],
  ["--max-exemplars <n>", "maxExemplars", "exemplars kept in memory in total (oldest leave first)"],
];

/** Adds the ingest cap flags to `originwatch central`. */
export function addIngestLimitFlags(cmd: Command): Command {
  for (const [flag, field, help] of FLAGS) cmd.option(flag, `${help} (default ${CENTRAL_DEFAULTS[field]})`, (v) => Number(v));
  return cmd;
}

/** The config fields set by those flags (unset flags stay undefined: validateCentralConfig fills the defaults). */
export function ingestLimitsFromFlags(opts: Record<string, unknown>): Partial<CentralConfig> {
  const out: Record<string, unknown> = {};
  for (const [flag, field] of FLAGS) {
    const key = flag
      .slice(2)
      .split(" ")[0]
      .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (opts[key] !== undefined) out[field] = opts[key];
  }
  return out as Partial<CentralConfig>;
}
