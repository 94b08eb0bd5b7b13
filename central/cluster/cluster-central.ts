/**
 * Cluster mode's parts of `originwatch central --nats ...` (issue 16), started
 * and closed as one: the NATS connection (cluster-context.ts), the window-log
 * streams, the ingest's batch sink (cluster-sink.ts), the partition owner
 * (partition-owner.ts: leases, snapshots, replay, OW_STATUS) and the status
 * reader that fills this replica's totals and records maps from OW_STATUS when
 * a query asks (origin-status.ts).
 *
 * Start-up fails with CENTRAL_NATS_UNAVAILABLE when NATS cannot be reached or
 * set up (the CLI exits non-zero with that code); once up, a NATS outage is
 * logged and retried (the client reconnects forever; publishes fail with
 * UNAVAILABLE so sidecars replay; partition owners stop and take over again).
 */
import type { Logger } from "pino";
import { CentralError } from "../errors.js";
import type { OriginTotals } from "../store/level-store.js";
import { type ClusterContext, connectCluster } from "./cluster-context.js";
import { ClusterSink } from "./cluster-sink.js";
import type { NatsOptions } from "./nats-options.js";
import { type OriginStatusRecord, type StatusReader, createStatusReader, openStatusBucket } from "./origin-status.js";
import { PartitionOwner } from "./partition-owner.js";
import { ClusterVerdict } from "./cluster-verdict.js";
import type { VerdictService } from "../verdict/service.js";
import type { EventRecord } from "../verdict/verdict-store.js";
import { type EventLog, startEventLog } from "./event-log.js";
import { ensureWindowStreams } from "./window-log.js";
import { type WebhookNotifier, startWebhookNotifier } from "./webhook-notifier.js";
import type { WebhookSender } from "../alerts/webhook.js";
import { type OriginBreakdown, startOriginBreakdown } from "./origin-breakdown.js";

/** What startCentral needs to run as one replica of a cluster. */
export interface ClusterStart {
  nats: NatsOptions;
  /** --replica-id; generated when absent. */
  replicaId?: string;
  /** How long a publish is retried before the stream ends with UNAVAILABLE (default 30 s; tests shorten it). */
  publishRetryMs?: number;
  /** How long a webhook event may stay unacked before another replica takes it (default 30 s; tests shorten it). */
  notifyAckWaitMs?: number;
}

export interface ClusterParts {
  ctx: ClusterContext;
  sink: ClusterSink;
  /** OW_STATUS as this replica last read it, per origin (what its queries answer from). */
  records: Map<string, OriginStatusRecord>;
  /** Brings `records` and the totals map up to date: call before a query answers (cluster-queries.ts). */
  status: StatusReader;
  /** The verdict worker's hooks: give the VerdictService `mute: (o) => verdict.muted(o)` and `observeIngest: false`. */
  verdict: ClusterVerdict;
  /** The VerdictService's `eventSink`: publish to OW_EVENTS (every replica receives it back). */
  publishEvent(e: Omit<EventRecord, "id">): void;
  /** With --webhook: the sender fed by the cluster's one notify consumer (webhook-notifier.ts), for /metrics. */
  webhook: WebhookSender | undefined;
  /** GetOrigin's breakdown from the partition's owner (origin-breakdown.ts), once startOwner ran. */
  readonly breakdown: OriginBreakdown | undefined;
  /** The partition owner, once startOwner ran. */
  readonly owner: PartitionOwner | undefined;
  /** Starts taking partitions, feeding `service` (call once the VerdictService exists). */
  startOwner(service: VerdictService): Promise<PartitionOwner>;
  close(): Promise<void>;
}

export async function startClusterParts(
  start: ClusterStart,
  state: { totals: Map<string, OriginTotals>; highWater: Map<string, bigint>; log: Logger; webhook?: { url: string; includeNetwork?: boolean } },
): Promise<ClusterParts> {
  const log = state.log.child({ part: "cluster" });
  const ctx = await connectCluster(start.nats, { replicaId: start.replicaId, log: (msg) => log.warn(msg) });
  let owner: PartitionOwner | undefined;
  let events: EventLog | undefined;
  let service: VerdictService | undefined;
  let notifier: WebhookNotifier | undefined;
  let breakdown: OriginBreakdown | undefined;
  try {
    await ensureWindowStreams(ctx.jsm, start.nats);
    const status = await openStatusBucket(ctx);
    const sink = await ClusterSink.open(ctx, state.highWater, { retryForMs: start.publishRetryMs });
    const records = new Map<string, OriginStatusRecord>();
    const reader = createStatusReader(ctx, status, { totals: state.totals, records }, (err) => log.warn({ err: err.message }, "OW_STATUS read"));
    const verdict = new ClusterVerdict(start.nats.partitions);
    const ev = (events = await startEventLog(ctx, { log, receive: (e, id) => service?.receiveEvent(e, id) }));
    // Webhooks: every replica with the same --webhook pulls from one durable consumer of OW_EVENTS.
    if (state.webhook) notifier = await startWebhookNotifier(ctx, { ...state.webhook, log, ackWaitMs: start.notifyAckWaitMs });
    const n = notifier;
    log.info({ replica: ctx.replicaId, partitions: start.nats.partitions, servers: start.nats.servers }, "cluster mode: connected to NATS");
    let closing: Promise<void> | undefined;
    return {
      ctx,
      sink,
      records,
      status: reader,
      verdict,
      publishEvent: (e) => ev.publish(e),
      webhook: n?.sender,
      get owner() {
        return owner;
      },
      get breakdown() {
        return breakdown;
      },
      async startOwner(s) {
        service = s;
        verdict.attach(s);
        owner = await PartitionOwner.start(ctx, status, { log, hooks: verdict });
        breakdown = await startOriginBreakdown(ctx, { verdict: s, owns: (origin) => !verdict.muted(origin), log });
        const o = owner;
        verdict.saveSoon = (p) => o.saveSoon(p);
        verdict.flushSoon = (p) => o.flushSoon(p);
        return o;
      },
      close: () =>
        (closing ??= (async () => {
          await owner?.stop().catch((err: unknown) => log.warn({ err: (err as Error).message }, "releasing partitions failed"));
          breakdown?.close();
          await n?.stop().catch((err: unknown) => log.warn({ err: (err as Error).message }, "stopping the webhook notifier failed"));
          await ev.stop();
          await ctx.close();
        })()),
    };
  } catch (err) {
    await notifier?.stop();
    await events?.stop();
    await owner?.stop().catch(() => undefined);
    await ctx.close();
    if (err instanceof CentralError) throw err;
    throw new CentralError("CENTRAL_NATS_UNAVAILABLE", `cannot set up JetStream (streams, buckets): ${(err as Error).message}`, { cause: err });
  }
}
