/**
 * The sidecar wired together: the cache-facing hop, the recorder, the stream
 * to the central, the pushed config and the admin listener. startSidecar() is
 * what `originwatch sidecar` runs (cli.ts) and what tests, the demo and the
 * benchmarks start in-process.
 */
import http from "node:http";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { create } from "@bufbuild/protobuf";
import { SidecarMessageSchema } from "../proto/gen/originwatch/v1/ingest_pb.js";
import type { SidecarConfig } from "./config.js";
import { SidecarError } from "./errors.js";
import { createHop, type Hop, type HopObserver } from "./proxy/hop.js";
import { Recorder } from "./recorder/recorder.js";
import { ONSET_POLL_MS } from "./recorder/onset.js";
import { type StreamLogLevel, StreamClient } from "./stream/client.js";
import { ClockSkew } from "./stream/clock-skew.js";
import type { Exemplar } from "../proto/gen/originwatch/v1/common_pb.js";
import { createAdmin, type Admin } from "./admin/admin.js";
import { Directives, SIDECAR_CAPABILITIES } from "./directives/directives.js";
import { ExemplarSampler } from "./directives/sampler.js";
import { applyStallOverride, localStallMs } from "./directives/stall-override.js";
import type { Config } from "../proto/gen/originwatch/v1/config_pb.js";
import { CONFIG_DEFAULTS } from "../proto/config-validate.js";
import { createSidecarMetrics } from "./admin/metrics.js";
import { runProbe } from "./probe/probe.js";

export const SIDECAR_VERSION = "0.1.0";

export interface Sidecar {
  config: SidecarConfig;
  /** HOST:PORT of the cache-facing listener. */
  address: string;
  port: number;
  /** HOST:PORT of the admin listener, when configured. */
  adminAddress?: string;
  hop: Hop;
  recorder: Recorder;
  stream: StreamClient;
  /** The pushed config in force (ACK/NACK, persisted under --state-dir). */
  directives: Directives;
  /** Close listeners, flush the last windows, drain the stream briefly. Idempotent. */
  shutdown(): Promise<void>;
}

export interface StartSidecarOptions {
  logger?: pino.Logger;
  /** Do not start the stream (benchmarks of the bare recorder). */
  noStream?: boolean;
  /** Extra hop observer (tests). */
  observer?: HopObserver;
  /** Capabilities announced to the central (tests: a sidecar without a feature). */
  capabilities?: readonly string[];
  /** The local clock, ms since the epoch (tests: a skewed clock; never the system's). */
  clock?: () => number;
}

function readTls(config: SidecarConfig): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  const read = (field: string, file?: string) => {
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new SidecarError("CONFIG_UNREADABLE", `${field} ${file}: ${(err as Error).message}`, { cause: err });
    }
  };
  return { ca: read("tlsCa", config.tlsCa), cert: read("tlsCert", config.tlsCert), key: read("tlsKey", config.tlsKey) };
}

/** HOST:PORT of a listening socket, IPv6 in brackets. */
export function formatAddress(a: AddressInfo): string {
  return a.family === "IPv6" || a.address.includes(":") ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

export async function startSidecar(config: SidecarConfig, opts: StartSidecarOptions = {}): Promise<Sidecar> {
  const log = opts.logger ?? pino({ level: "silent" });
  // Window and exemplar times are on the central's clock as far as it is known (stream/clock-skew.ts).
  const skew = new ClockSkew({ clock: opts.clock });
  const recorder = new Recorder({ windowMs: config.windowMs, now: () => skew.now() });
  const metrics = createSidecarMetrics();
  const streamLog = (level: StreamLogLevel, msg: string, fields?: Record<string, unknown>) => log[level]({ component: "sidecar", ...fields }, msg);
  const capabilities = opts.capabilities ?? SIDECAR_CAPABILITIES;
  // Pushed config over local flags: a zero in the pushed config leaves the local value in force.
  const localStall = localStallMs(config.origins);
  let directives: Directives | undefined;
  /** Last FlushWindows answered per origin (recorder.closeNow ignores origins it has no window of). */
  const flushedAt = new Map<string, number>();
  const stream = new StreamClient({
    central: config.central,
    resolver: config.resolver,
    rebalanceMs: config.centralRebalanceMs,
    node: { nodeId: config.nodeId, isp: config.isp, region: config.region, version: SIDECAR_VERSION },
    origins: config.origins.map((o) => o.name),
    bufferBytes: config.bufferBytes,
    maxBufferedBatches: config.maxBufferedBatches,
    ...readTls(config),
    capabilities: [...capabilities],
    appliedConfigVersion: () => directives?.version ?? 0n,
    skew,
    onState: (s) => metrics.streamState(s),
    onRejected: (code, n) => metrics.streamRejected(code, n),
    onConfigPush: (push) => {
      const version = push.config?.version ?? 0n;
      const answer = push.config ? directives!.offer(push.config) : Promise.resolve({ accepted: false, reason: "config_push.config is missing" });
      void answer.then((v) => {
        metrics.configVersion(Number(directives!.version));
        stream.sendMessage(create(SidecarMessageSchema, { kind: { case: "configAck", value: { version, accepted: v.accepted, reason: v.reason } } }));
      });
    },
    // Confirmation probes from the central: answered off the request path, never recorded as traffic.
    onProbeRequest: (req) => {
      void runProbe(req, config.origins.find((o) => o.name === req.origin)).then(
        (result) => stream.sendMessage(create(SidecarMessageSchema, { kind: { case: "probeResult", value: result } })),
        (err) => log.warn({ component: "sidecar", err }, "probe failed"),
      );
    },
    // FlushWindows: the open window of the origin now, at most once a second per origin (recorder.closeNow).
    onFlushWindows: (origin) => {
      const now = Date.now();
      if (now - (flushedAt.get(origin) ?? 0) < 1000) return;
      flushedAt.set(origin, now);
      const w = recorder.closeNow(origin);
      if (w.length > 0) stream.send(w);
    },
    log: streamLog,
  });
  // The onset cut waits for as many failures as the central needs from a node (pushed min_requests).
  let onsetFailures: number = CONFIG_DEFAULTS.minRequests;
  const applyConfig = (c: Config) => {
    onsetFailures = c.thresholds?.minRequests || CONFIG_DEFAULTS.minRequests;
    // The one change to the running config; the hop reads origin.stallMs per request (stall-override.ts).
    applyStallOverride(config.origins, c, localStall);
    const closedEarly = recorder.setWindowMs(c.windowMs || config.windowMs);
    if (closedEarly.length > 0) stream.send(closedEarly);
  };
  directives = new Directives({
    stateDir: config.stateDir,
    capabilities,
    firstByteTimeoutMs: (name) => config.origins.find((o) => o.name === name)?.firstByteTimeoutMs,
    originNames: () => config.origins.map((o) => o.name),
    apply: applyConfig,
    log: streamLog,
  });
  await directives.loadPersisted();
  metrics.configVersion(Number(directives.version));
  const sampler = new ExemplarSampler({ rates: (origin) => directives!.rates(origin), now: () => skew.now() });
  // Exemplars sampled under an older clock correction, re-dated, wait here for the next tick.
  let redated: Exemplar[] = [];
  const takeExemplars = () => {
    const out = redated.length > 0 ? [...redated, ...sampler.take()] : sampler.take();
    redated = [];
    return out;
  };
  skew.onChange((appliedMs, deltaMs) => {
    recorder.rebase(deltaMs);
    for (const e of sampler.take()) {
      e.timeUnixMs -= BigInt(deltaMs);
      redated.push(e);
    }
    log.warn({ component: "sidecar", clockSkewMs: skew.estimateMs, correctionMs: appliedMs }, "local clock differs from the central's; window times are corrected");
  });
  const hop = createHop({
    config,
    recorder,
    observer: {
      completed: (r) => {
        metrics.completed(r);
        sampler.offer(r);
        opts.observer?.completed?.(r);
      },
      stalled: (o) => {
        metrics.stalled(o);
        opts.observer?.stalled?.(o);
      },
      rejected: (s, reason) => {
        metrics.rejected(s);
        opts.observer?.rejected?.(s, reason);
      },
    },
  });

  const server = http.createServer({ maxHeaderSize: config.maxHeaderSize }, hop.handle);
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  server.headersTimeout = Math.max(60_000, config.keepAliveTimeoutMs + 1000);
  server.on("upgrade", hop.upgrade);
  server.on("connect", hop.connect);
  await listen(server, config.listen.host, config.listen.port, "listen");
  const addr = server.address() as AddressInfo;

  let admin: Admin | undefined;
  let ready = true;
  if (config.admin) {
    admin = createAdmin({
      metrics,
      ready: () => ready,
      collect: () => {
        metrics.streamBuffered(stream.bufferedBatches, stream.droppedBatches, stream.bufferedBytes);
        metrics.streamFigures({
          clockSkewMs: skew.estimateMs,
          maxMessageBytes: stream.limits.maxMessageBytes,
          splitBatches: stream.splitBatches,
          configError: stream.configError !== undefined,
          moves: stream.moves,
        });
        metrics.upstreamSockets(hop.upstreamSockets());
        metrics.inFlight(hop.inFlight());
      },
      status: () => ({ nodeId: config.nodeId, isp: config.isp, region: config.region, origins: config.origins.length, stream: stream.status() }),
    });
    try {
      await listen(admin.server, config.admin.host, config.admin.port, "admin");
    } catch (err) {
      server.close();
      hop.close();
      throw err;
    }
  }

  // Window ticker: aligned to window boundaries, flushes closed windows into one batch each.
  let tick: NodeJS.Timeout | undefined;
  const schedule = () => {
    const now = skew.now();
    const windowMs = recorder.windowMs;
    const next = Math.floor(now / windowMs) * windowMs + windowMs;
    tick = setTimeout(() => {
      try {
        stream.send(recorder.flush(), takeExemplars());
      } catch (err) {
        log.warn({ component: "sidecar", err }, "window flush failed");
      }
      schedule();
    }, next - now + 5);
    tick.unref();
  };
  schedule();
  // Onset poll: a window whose failures jumped is sent now, not at its boundary (recorder.ts, onset.ts).
  const onsetPoll = setInterval(() => {
    try {
      const cut = recorder.cutOnsets(onsetFailures);
      if (cut.length > 0) stream.send(cut);
    } catch (err) {
      log.warn({ component: "sidecar", err }, "onset cut failed");
    }
  }, ONSET_POLL_MS);
  onsetPoll.unref();
  if (!opts.noStream) stream.start();

  let closing: Promise<void> | undefined;
  const sidecar: Sidecar = {
    config,
    address: formatAddress(addr),
    port: addr.port,
    adminAddress: admin ? formatAddress(admin.server.address() as AddressInfo) : undefined,
    hop,
    recorder,
    stream,
    directives,
    shutdown() {
      closing ??= (async () => {
        ready = false;
        if (tick) clearTimeout(tick);
        clearInterval(onsetPoll);
        await new Promise<void>((r) => {
          server.close(() => r());
          server.closeIdleConnections();
          setTimeout(() => {
            server.closeAllConnections();
            r();
          }, 2000).unref();
        });
        try {
          stream.send(recorder.flush(true), takeExemplars());
        } catch {
          /* closed */
        }
        await stream.shutdown(opts.noStream ? 0 : 1000);
        hop.close();
        if (admin) await new Promise<void>((r) => admin!.server.close(() => r()));
      })();
      return closing;
    },
  };
  return sidecar;
}

function listen(server: http.Server, host: string, port: number, field: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onErr = (err: Error) => reject(new SidecarError("LISTEN_FAILED", `${field} ${host}:${port}: ${err.message}`, { cause: err }));
    server.once("error", onErr);
    server.listen(port, host, () => {
      server.off("error", onErr);
      resolve();
    });
  });
}
