/**
 * The central plane: wires ingest, store, query and the one-port server.
 * startCentral() is used by the CLI, the demo and tests; it returns a handle
 * whose close() is idempotent.
 */
import type { Command } from "commander";
import type { ConnectRouter } from "@connectrpc/connect";
import pino, { type Logger } from "pino";
import { Health } from "../proto/gen/grpc/health/v1/health_pb.js";
import * as reflV1 from "../proto/gen/grpc/reflection/v1/reflection_pb.js";
import * as reflV1alpha from "../proto/gen/grpc/reflection/v1alpha/reflection_pb.js";
import { ConfigService } from "../proto/gen/originwatch/v1/config_pb.js";
import { IngestService } from "../proto/gen/originwatch/v1/ingest_pb.js";
import { QueryService } from "../proto/gen/originwatch/v1/query_pb.js";
import { type CentralConfig, parseHostPort, validateCentralConfig } from "./config.js";
import { CentralError, START_EXIT_CODES } from "./errors.js";
import { ConfigStore, type FleetConfigSource } from "./config-push/config-store.js";
import { startControlPlane } from "./cluster/control-plane.js";
import type { ReplicaLink } from "./cluster/replica-link.js";
import { configService } from "./config-push/config-service.js";
import { createConfigPush } from "./config-push/config-push.js";
import { Committer } from "./ingest/committer.js";
import { ExemplarStore } from "./ingest/exemplar-store.js";
import { Ingest } from "./ingest/ingest-service.js";
import { ingestStreamMethod } from "./ingest/sidecar-message-view.js";
import { addIngestLimitFlags, ingestLimitsFromFlags } from "./ingest/limits.js";
import { type QueryDeps, queryService } from "./query/query-service.js";
import { AGE_OUT_SWEEP_MS, type AgedOut, ageOut } from "./query/age-out.js";
import { Forgetter } from "./query/forget.js";
import { HealthState, healthService } from "./server/health.js";
import { ReflectionIndex, reflectionV1, reflectionV1alpha } from "./server/reflection.js";
import { type RunningServer, startServer } from "./server/server.js";
import { checkExposure, hostGuard } from "./server/exposure.js";
import { StreamLimit } from "./server/stream-limit.js";
import { registerServerFlags, serverFlagsToConfig } from "./server/server-flags.js";
import { repairCommand, repairStore } from "./store/repair.js";
import { ingestCertInterceptor, loadTokens, peerContext, tokenInterceptor } from "./server/auth.js";
import { readFileSync } from "node:fs";
import type { Interceptor } from "@connectrpc/connect";
import { dashboardFallback } from "./dashboard/serve.js";
import { LevelStore, type OriginTotals } from "./store/level-store.js";
import { VerdictService } from "./verdict/service.js";
import type { EventRecord } from "./verdict/verdict-store.js";
import { loadNodeLabels } from "./verdict/node-labels.js";
import { type CentralMetrics, createCentralMetrics } from "./metrics/central-metrics.js";
import { metricsRoute } from "./metrics/metrics-route.js";
import { registerStackFlags, stackFlagsToConfig } from "./metrics/stack-flags.js";
import { type ClusterParts, type ClusterStart, startClusterParts } from "./cluster/cluster-central.js";
import { clusterQueryHandlers, clusterVerdictView } from "./cluster/cluster-queries.js";
import { withOwnerBreakdown } from "./cluster/origin-breakdown.js";
import { clusterMode, natsFlagsToOptions, registerNatsFlags, validateNatsOptions } from "./cluster/nats-options.js";

export interface Central {
  address: string;
  config: CentralConfig;
  store: LevelStore;
  ingest: Ingest;
  query: QueryDeps;
  /** The fleet config in force: fleetConfig.current() (the verdict engine's settingsFor reads it). */
  fleetConfig: FleetConfigSource;
  verdict: VerdictService;
  log: Logger;
  /** The one-port server: its limit counters and open connections. */
  server: RunningServer;
  /** The registry served on GET /metrics. */
  metrics: CentralMetrics;
  /** One age-out sweep now (the central also sweeps every AGE_OUT_SWEEP_MS); tests pass a later nowMs. */
  ageOut(nowMs?: number): Promise<AgedOut>;
  /** Cluster mode (--nats): the NATS context, batch sink and partition owner; undefined when embedded. */
  cluster?: ClusterParts;
  close(): Promise<void>;
}

/**
 * Streams that stay open as long as the peer lives: exempt from the request
 * timeout, bounded by HTTP/2 keepalive and the stream caps instead.
 */
export const LONG_LIVED_PATHS = [
  `/${IngestService.typeName}/${IngestService.method.stream.name}`,
  `/${QueryService.typeName}/${QueryService.method.watchEvents.name}`,
  `/${Health.typeName}/${Health.method.watch.name}`,
];

/** Services announced by reflection and health. */
export const SERVED_SERVICES = [IngestService, QueryService, ConfigService, Health, reflV1.ServerReflection, reflV1alpha.ServerReflection];

export async function startCentral(partial: Partial<CentralConfig>, log: Logger = pino({ base: { component: "central" } }), clusterStart?: ClusterStart): Promise<Central> {
  const config = validateCentralConfig(partial);
  const { host, port } = parseHostPort("listen", config.listen);
  const readPem = (field: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new CentralError("CENTRAL_BAD_CONFIG", `${field} ${file}: ${(err as Error).message}`);
    }
  };
  const tls = config.tlsCert
    ? { cert: readPem("tlsCert", config.tlsCert), key: readPem("tlsKey", config.tlsKey!), ca: readPem("tlsCa", config.tlsCa!) }
    : undefined;
  const interceptors: Interceptor[] = [];
  if (tls) interceptors.push(ingestCertInterceptor());
  const tokens = config.tokensFile ? loadTokens(config.tokensFile) : undefined;
  if (tokens) interceptors.push(tokenInterceptor(tokens));
  // Secure unless told otherwise: refuse (CENTRAL_INSECURE) or, under --insecure, warn at every start.
  for (const warning of checkExposure({ listenHost: host, tls: Boolean(tls), tokens: Boolean(config.tokensFile), insecure: config.insecure })) {
    log.warn({ code: "CENTRAL_INSECURE" }, warning);
  }
  const nodeLabels = config.nodeLabelsFile ? loadNodeLabels(config.nodeLabelsFile) : undefined;
  const store = await LevelStore.open(config.data);
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  let verdict: VerdictService | undefined;
  let control: Awaited<ReturnType<typeof startControlPlane>> | undefined;
  let cluster: ClusterParts | undefined;
  try {
    const [storedTotals, storedHighWater, nodeList] = await Promise.all([store.loadTotals(), store.loadHighWater(), store.loadNodes()]);
    // Cluster mode: totals come from the partition owners (OW_STATUS), marks from OW_NODES, not from LevelDB.
    const inCluster = clusterStart !== undefined && clusterMode(clusterStart.nats);
    const totals = inCluster ? new Map<string, OriginTotals>() : storedTotals;
    const highWater = inCluster ? new Map<string, bigint>() : storedHighWater;
    const webhook = config.webhook ? { url: config.webhook, includeNetwork: config.webhookNetwork } : undefined;
    // Cluster mode: webhooks come from the cluster's one notify consumer (cluster/webhook-notifier.ts), not the owner.
    if (inCluster) cluster = await startClusterParts(clusterStart, { totals, highWater, log, webhook });
    const nodes = new Map(nodeList.map((n) => [n.nodeId, n]));
    const exemplars = new ExemplarStore(config.exemplarsPerOrigin, config.maxExemplars);
    const committer = cluster ? cluster.sink : new Committer(store, totals, highWater);
    const ingest = new Ingest({ totals, highWater, nodes, exemplars, committer, log, requireNodeCert: Boolean(tls), limits: config, nodeLabels });
    // Cluster mode: config in KV and probes to sidecars on any replica (cluster/control-plane.ts).
    if (cluster) control = await startControlPlane({ link: cluster.ctx, ingest, nodes, log });
    const fleetConfig: FleetConfigSource = control?.configs ?? (await ConfigStore.open(store));
    const push = createConfigPush({ ingest, configs: fleetConfig, store, log, records: control?.configs });
    verdict = new VerdictService({
      ingest,
      store,
      log: log.child({ part: "verdict" }),
      tickMs: config.evalIntervalMs,
      lookbackMs: config.lookbackMs,
      historyRetentionMs: config.historyRetentionMs,
      webhook: cluster ? undefined : webhook,
      remoteProbeTargets: control?.remoteProbeTargets,
      remoteFlush: control?.remoteFlush,
      alertmanager: config.alertmanagers.length
        ? { urls: config.alertmanagers, resendMs: config.alertmanagerResendMs, externalUrl: config.externalUrl || `${tls ? "https" : "http"}://${config.listen}`, outbox: !cluster }
        : undefined,
      // Cluster mode: fed by the partitions this replica owns; silent about the others.
      ...(cluster ? { observeIngest: false, mute: (origin: string) => cluster!.verdict.muted(origin), eventSink: (e: Omit<EventRecord, "id">) => cluster!.publishEvent(e) } : {}),
    });
    verdict.setConfig(fleetConfig.current());
    fleetConfig.on("changed", (c) => verdict?.setConfig(c));
    await verdict.start();
    await cluster?.startOwner(verdict);
    const v = verdict;
    const forget = new Forgetter({ ingest, store, verdict: v, exemplars, cluster: control?.nodes });
    // Cluster mode: a node another replica forgot is forgotten here too (cluster/cluster-nodes.ts).
    if (control) control.onNodeForgotten = (id) => void forget.node(id, "here").catch((err: unknown) => log.warn({ err, node: id }, "forgetting a node forgotten elsewhere failed"));
    const query: QueryDeps = {
      totals,
      nodes,
      ingest,
      verdict: cluster ? clusterVerdictView(cluster.records) : v,
      exemplars,
      forget,
      presence: control?.nodes.presence,
      maxPageBytes: config.maxMessageBytes,
    };
    const sweep = async (nowMs = Date.now()) => {
      await cluster?.status.all(); // cluster mode: the totals map is read on demand (OW_STATUS)
      const r = await ageOut({ totals, nodes, verdict: v, ingest, forget, presence: control?.nodes.presence }, config, nowMs);
      if (r.origins.length || r.nodes.length) log.info({ origins: r.origins.length, nodes: r.nodes.length, sample: [...r.origins.slice(0, 5), ...r.nodes.slice(0, 5)] }, "aged out idle origins and nodes");
      return r;
    };
    const index = new ReflectionIndex(SERVED_SERVICES);
    const health = new HealthState(index.serviceNames());
    const healthWatches = new StreamLimit("Health.Watch", config.maxHealthWatches, "--max-health-watches");
    const reflectionStreams = new StreamLimit("reflection", config.maxReflectionStreams, "--max-reflection-streams");
    const routes = (router: ConnectRouter) => {
      router.rpc(ingestStreamMethod, ingest.impl().stream as never);
      const base = queryService(query);
      const queries = { ...base, ...v.queryHandlers(), ...(cluster ? clusterQueryHandlers(cluster.status, cluster.records, base) : {}) };
      // Cluster mode: GetOrigin's breakdown comes from the partition's owner (cluster/origin-breakdown.ts).
      const breakdown = cluster?.breakdown;
      if (breakdown && queries.getOrigin) queries.getOrigin = withOwnerBreakdown(queries.getOrigin, breakdown);
      router.service(QueryService, queries);
      router.service(ConfigService, configService(fleetConfig));
      router.service(Health, healthService(health, healthWatches));
      router.service(reflV1.ServerReflection, reflectionV1(index, reflectionStreams));
      router.service(reflV1alpha.ServerReflection, reflectionV1alpha(index, reflectionStreams));
    };
    const metrics = createCentralMetrics({ ingest, store, verdict: v, webhook: cluster?.webhook, totals, maxOrigins: config.metricsMaxOrigins, maxOriginIsps: config.metricsMaxOriginIsps });
    const serveMetrics = metricsRoute(metrics.registry, tokens, (err) => log.error({ err }, "metrics collection failed"), cluster?.status.all);
    const dashboard = dashboardFallback({ onError: (err) => log.error({ err }, "dashboard bundle failed") });
    const httpFallback: typeof dashboard = (req, res) => serveMetrics(req, res) || dashboard(req, res);
    server = await startServer({
      host,
      port,
      routes,
      maxMessageBytes: config.maxMessageBytes,
      limits: config,
      longLivedPaths: LONG_LIVED_PATHS,
      // Without tokens, only loopback Host names (and --allowed-hosts) are answered: DNS rebinding.
      guard: config.tokensFile ? undefined : hostGuard(config.allowedHosts),
      tls,
      interceptors,
      contextValues: peerContext,
      httpFallback,
      onLimit: (kind, counters) => log.warn({ kind, counters }, "connection limit enforced"),
    });
    const ageOutErr = (err: unknown) => log.error({ err }, "age-out sweep failed");
    const ager = setInterval(() => void sweep().catch(ageOutErr), AGE_OUT_SWEEP_MS);
    ager.unref();
    void sweep().catch(ageOutErr);
    const address = server.address;
    if (v.alertmanager && !config.externalUrl) v.alertmanager.externalUrl = `${tls ? "https" : "http"}://${address}`;
    log.info({ address, data: config.data, tls: Boolean(tls), tokens: Boolean(config.tokensFile), ...(cluster ? { replica: cluster.ctx.replicaId } : {}) }, "listening");
    let closing: Promise<void> | undefined;
    const srv = server;
    return {
      address,
      config,
      store,
      ingest,
      query,
      fleetConfig,
      verdict: v,
      log,
      server: srv,
      metrics,
      ageOut: sweep,
      cluster,
      close() {
        closing ??= (async () => {
          clearInterval(ager);
          push.close();
          await control?.close();
          health.setServing(false);
          ingest.closeAll();
          await srv.close();
          metrics.close();
          await v.close();
          await cluster?.close();
          await store.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    await server?.close();
    await verdict?.close();
    await control?.close();
    await cluster?.close();
    await store.close();
    throw store.storeError(err);
  }
}

/** Registers `originwatch central`. */
export function registerCentral(program: Command): void {
  const cmd = program
    .command("central")
    .description("run the central plane: ingest from sidecars, verdicts, query API")
    .option("--listen <host:port>", "one port for gRPC, gRPC-Web and Connect", "127.0.0.1:7400")
    .option("--data <dir>", "LevelDB directory", "./data/central")
    .option("--max-message-bytes <n>", "largest inbound message", (v) => Number(v), 1 << 20)
    .option("--webhook <url>", "POST incident alerts (JSON, retried, with a dedupe key) to this URL")
    .option("--webhook-network", "also alert on ISP, region and node incidents", false)
    .option("--history-retention <hours>", "keep per-minute origin history this long", (v) => Number(v), 168)
    .option("--tls-cert <file>", "server certificate (PEM); with --tls-key and --tls-ca turns on TLS and mTLS for sidecars")
    .option("--tls-key <file>", "server private key (PEM)")
    .option("--tls-ca <file>", "CA (PEM) that signs sidecar client certificates")
    .option("--tokens <file>", "operator bearer tokens, one per line: TOKEN read|admin [NAME]")
    .option("--exemplars-per-origin <n>", "latest exemplars kept per origin (ListExemplars)", (v) => Number(v), 1000)
    .option("--node-labels <file>", "pin node labels: NODE_ID ISP REGION per line; they win over what sidecars claim (disagreements logged and shown by ctl nodes)")
    .option("--origin-idle <hours>", "forget an origin with no batch for this long (0 = never)", (v) => Number(v), 168)
    .option("--node-idle <hours>", "forget a disconnected node with no batch for this long (0 = never)", (v) => Number(v), 168);
  registerServerFlags(cmd);
  registerStackFlags(cmd);
  registerNatsFlags(cmd).option("--replica-id <id>", "cluster mode: this replica's id (lease owner, snapshot writer); default: host name plus a random suffix");
  addIngestLimitFlags(cmd)
    .action(async (opts: { nodeLabels?: string; originIdle: number; nodeIdle: number; exemplarsPerOrigin: number; listen: string; data: string; maxMessageBytes: number; tlsCert?: string; tlsKey?: string; tlsCa?: string; tokens?: string; webhook?: string; webhookNetwork: boolean; historyRetention: number }) => {
      const log = pino({ base: { component: "central" } });
      let central: Central;
      try {
        const nats = validateNatsOptions(natsFlagsToOptions(opts));
        const replicaId = (opts as { replicaId?: string }).replicaId;
        central = await startCentral(
          {
            listen: opts.listen,
            data: opts.data,
            maxMessageBytes: opts.maxMessageBytes,
            webhook: opts.webhook ?? "",
            webhookNetwork: opts.webhookNetwork,
            historyRetentionMs: Math.round(opts.historyRetention * 3600_000),
            tlsCert: opts.tlsCert,
            tlsKey: opts.tlsKey,
            tlsCa: opts.tlsCa,
            tokensFile: opts.tokens,
            exemplarsPerOrigin: opts.exemplarsPerOrigin,
            ...serverFlagsToConfig(opts),
            ...stackFlagsToConfig(opts),
            nodeLabelsFile: opts.nodeLabels,
            originIdleMs: Math.round(opts.originIdle * 3600_000),
            nodeIdleMs: Math.round(opts.nodeIdle * 3600_000),
            ...ingestLimitsFromFlags(opts),
          },
          log,
          clusterMode(nats) ? { nats, replicaId } : undefined,
        );
      } catch (err) {
        const msg = err instanceof CentralError ? `${err.message} [${err.code}]` : String(err);
        if (err instanceof CentralError) log.fatal({ code: err.code }, msg);
        else log.fatal({ err }, msg);
        process.stderr.write(`originwatch central: ${msg}\n`);
        process.exit((err instanceof CentralError && START_EXIT_CODES[err.code]) || 1);
      }
      const stop = (signal: string) => {
        log.info({ signal }, "shutting down");
        central.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
  registerRepair(cmd);
}

/** `originwatch central repair --data DIR`: LevelDB's own repair of a corrupt store (see store/repair.ts). */
function registerRepair(central: Command): void {
  central
    .command("repair")
    .description("repair a corrupt LevelDB data directory in place (stop the central and copy the directory aside first)")
    .option("--data <dir>", "the central's LevelDB directory (required)")
    .action(async (own: { data?: string }) => {
      // Commander hands `--data` after the subcommand to `central` itself; take it from there when given.
      const data = own.data ?? (central.getOptionValueSource("data") === "cli" ? (central.opts() as { data: string }).data : undefined);
      if (!data) {
        process.stderr.write("originwatch central repair: --data DIR is required (the central's LevelDB directory)\n");
        process.exit(2);
      }
      const opts = { data };
      try {
        const r = await repairStore(opts.data);
        process.stdout.write(
          `${r.wasCorrupt ? `repaired ${opts.data} (${r.detail || "no CURRENT file"})` : `${opts.data} was readable; repair rewrote it`}: ${r.entries} entries readable. Start the central again.\n`,
        );
      } catch (err) {
        const msg = err instanceof CentralError ? `${err.message} [${err.code}]` : String(err);
        process.stderr.write(`${repairCommand(opts.data)}: ${msg}\n`);
        process.exit(1);
      }
    });
}
