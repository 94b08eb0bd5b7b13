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
import { CentralError } from "./errors.js";
import { ConfigStore } from "./config-push/config-store.js";
import { configService } from "./config-push/config-service.js";
import { createConfigPush } from "./config-push/config-push.js";
import { Committer } from "./ingest/committer.js";
import { ExemplarStore } from "./ingest/exemplar-store.js";
import { Ingest } from "./ingest/ingest-service.js";
import { WindowStore } from "./ingest/window-store.js";
import { addIngestLimitFlags, ingestLimitsFromFlags } from "./ingest/limits.js";
import { type QueryDeps, queryService } from "./query/query-service.js";
import { HealthState, healthService } from "./server/health.js";
import { ReflectionIndex, reflectionV1, reflectionV1alpha } from "./server/reflection.js";
import { startServer } from "./server/server.js";
import { ingestCertInterceptor, loadTokens, peerContext, tokenInterceptor } from "./server/auth.js";
import { readFileSync } from "node:fs";
import type { Interceptor } from "@connectrpc/connect";
import { dashboardFallback } from "./dashboard/serve.js";
import { LevelStore } from "./store/level-store.js";
import { VerdictService } from "./verdict/service.js";

export interface Central {
  address: string;
  config: CentralConfig;
  store: LevelStore;
  ingest: Ingest;
  query: QueryDeps;
  /** The fleet config in force: fleetConfig.current() (the verdict engine's settingsFor reads it). */
  fleetConfig: ConfigStore;
  verdict: VerdictService;
  log: Logger;
  close(): Promise<void>;
}

/** Services announced by reflection and health. */
export const SERVED_SERVICES = [IngestService, QueryService, ConfigService, Health, reflV1.ServerReflection, reflV1alpha.ServerReflection];

export async function startCentral(partial: Partial<CentralConfig>, log: Logger = pino({ base: { component: "central" } })): Promise<Central> {
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
  if (config.tokensFile) interceptors.push(tokenInterceptor(loadTokens(config.tokensFile)));
  const store = await LevelStore.open(config.data);
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  let verdict: VerdictService | undefined;
  try {
    const [totals, highWater, nodeList] = await Promise.all([store.loadTotals(), store.loadHighWater(), store.loadNodes()]);
    const nodes = new Map(nodeList.map((n) => [n.nodeId, n]));
    const windows = new WindowStore(config.windowRetentionMs, config.maxRecentWindows);
    const exemplars = new ExemplarStore(config.exemplarsPerOrigin, config.maxExemplars);
    const committer = new Committer(store, totals, highWater);
    const ingest = new Ingest({ totals, highWater, nodes, windows, exemplars, committer, log, requireNodeCert: Boolean(tls), limits: config });
    const fleetConfig = await ConfigStore.open(store);
    const push = createConfigPush({ ingest, configs: fleetConfig, store, log });
    const lookbackMs = () => config.lookbackMs;
    verdict = new VerdictService({
      ingest,
      store,
      log: log.child({ part: "verdict" }),
      tickMs: config.evalIntervalMs,
      lookbackMs: config.lookbackMs,
      historyRetentionMs: config.historyRetentionMs,
      webhook: config.webhook ? { url: config.webhook, includeNetwork: config.webhookNetwork } : undefined,
    });
    verdict.setConfig(fleetConfig.current());
    fleetConfig.on("changed", (c) => verdict?.setConfig(c));
    await verdict.start();
    const v = verdict;
    const query: QueryDeps = { totals, nodes, windows, ingest, lookbackMs, status: { verdictOf: (o, now) => ({ ...v.verdictOf(o, now), figures: v.figuresOf(o) }) }, exemplars };
    const index = new ReflectionIndex(SERVED_SERVICES);
    const health = new HealthState(index.serviceNames());
    const routes = (router: ConnectRouter) => {
      router.service(IngestService, ingest.impl());
      router.service(QueryService, { ...queryService(query), ...v.queryHandlers() });
      router.service(ConfigService, configService(fleetConfig));
      router.service(Health, healthService(health));
      router.service(reflV1.ServerReflection, reflectionV1(index));
      router.service(reflV1alpha.ServerReflection, reflectionV1alpha(index));
    };
    const httpFallback = dashboardFallback({ onError: (err) => log.error({ err }, "dashboard bundle failed") });
    server = await startServer({ host, port, routes, maxMessageBytes: config.maxMessageBytes, tls, interceptors, contextValues: peerContext, httpFallback });
    const pruner = setInterval(() => windows.prune(Date.now()), 5_000);
    pruner.unref();
    const address = server.address;
    log.info({ address, data: config.data, tls: Boolean(tls), tokens: Boolean(config.tokensFile) }, "listening");
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
      close() {
        closing ??= (async () => {
          clearInterval(pruner);
          push.close();
          health.setServing(false);
          ingest.closeAll();
          await srv.close();
          await v.close();
          await store.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    await server?.close();
    await verdict?.close();
    await store.close();
    throw err;
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
    .option("--exemplars-per-origin <n>", "latest exemplars kept per origin (ListExemplars)", (v) => Number(v), 1000);
  addIngestLimitFlags(cmd)
    .action(async (opts: { exemplarsPerOrigin: number; listen: string; data: string; maxMessageBytes: number; tlsCert?: string; tlsKey?: string; tlsCa?: string; tokens?: string; webhook?: string; webhookNetwork: boolean; historyRetention: number }) => {
      const log = pino({ base: { component: "central" } });
      let central: Central;
      try {
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
            ...ingestLimitsFromFlags(opts),
          },
          log,
        );
      } catch (err) {
        const msg = err instanceof CentralError ? `${err.message} [${err.code}]` : String(err);
        if (err instanceof CentralError) log.fatal({ code: err.code }, msg);
        else log.fatal({ err }, msg);
        process.stderr.write(`originwatch central: ${msg}\n`);
        process.exit(1);
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
}
