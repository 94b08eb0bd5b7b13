/**
 * npm run bench:verdict — ingest plus evaluation throughput of the verdict
 * engine on one core: N simulated nodes × M origins, one window summary per
 * node and origin per simulated second, delivered as protobuf-encoded Batch
 * messages (one per node per second, as a sidecar sends them). Measures, with
 * the central's own functions (the ones ingest-service.ts runs per batch):
 *   ingest:   decode (batch-decoder.ts) + validation + engine.observeColumns, summaries/s and CPU µs per summary
 *   tick:     one evaluation of every origin (lookback slide + policy + tracks), ms
 * at 1,000 × 100 and then at 1,000 × 1,000 (with the RSS there), against the goals of issue 12.
 *
 *   npm run bench:verdict [-- --nodes 1000 --origins 100 --seconds 12 --large-origins 1000 --large-seconds 8]
 *   (--large-origins 0 skips the large size)
 */
import { spawnSync } from "node:child_process";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { OutcomeCountsSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { BatchSchema, WindowSummarySchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { HistogramAccumulator } from "../../proto/histogram.js";
import { wireCounts } from "../../proto/outcomes.js";
import { decodeBatch } from "../../central/ingest/batch-decoder.js";
import { batchProblem } from "../../central/ingest/validate.js";
import { columnsOfBatch } from "../../central/ingest/window-columns.js";
import { CENTRAL_DEFAULTS } from "../../central/config.js";
import { VerdictEngine } from "../../central/verdict/engine.js";
import { HistoryRollups } from "../../central/verdict/history.js";
import type { VerdictStore } from "../../central/verdict/verdict-store.js";

function arg(name: string, d: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
}

const NODES = arg("nodes", 1000);
const ORIGINS = arg("origins", 100);
const SECONDS = arg("seconds", 12);
const LARGE_ORIGINS = arg("large-origins", 1000);
const LARGE_SECONDS = arg("large-seconds", 8);
const ISPS = ["isp-a", "isp-b", "isp-c", "isp-d", "isp-e"];
const REGIONS = ["eu", "us", "ap", "sa"];
/** Simulated clock: second 0 of the run. */
const BASE_MS = 1_800_000_000_000;

interface Figures {
  nodes: number;
  origins: number;
  seconds: number;
  wallS: number;
  bytesPerBatch: number;
  summaries: number;
  ingestCpuUs: number;
  /** CPU time of each ingest step, ms. */
  decodeMs: number;
  validateMs: number;
  observeMs: number;
  ingestWallMs: number;
  ticks: number[];
  /** CPU time of each tick (user + system), ms: what the tick costs on a shared machine. */
  tickCpu: number[];
  rssMb: number;
  heapMb: number;
  evaluatedOrigins: number;
  evaluatedNodes: number;
  sanity: string;
  forms: Array<[string, number, number]>;
}

/** One encoded batch per node: every origin's window, ~10 requests each, a realistic TTFB spread. */
function encodeBatch(origins: string[], nodeIndex: number, sec: number, compact = true): Uint8Array {
  const windows = origins.map((origin, oi) => {
    const h = new HistogramAccumulator();
    for (let k = 0; k < 10; k++) h.record(20 + ((nodeIndex * 7 + oi * 13 + k * 29) % 200));
    const failing = oi === 0 && nodeIndex % ISPS.length === 0; // origin-0 has an ISP fault on isp-a
    return create(WindowSummarySchema, {
      origin,
      startUnixMs: BigInt(BASE_MS + sec * 1000),
      lengthMs: 1000,
      ...(compact
        ? wireCounts(failing ? { connectRefused: 10 } : { ok: 9, clientError: 1 })
        : { counts: create(OutcomeCountsSchema, failing ? { connectRefused: 10n } : { ok: 9n, clientError: 1n }) }),
      ttfb: failing ? undefined : h.toHistogram(),
      bytesIn: 12_000n,
      bytesOut: 800n,
    });
  });
  return toBinary(BatchSchema, create(BatchSchema, { seq: BigInt(sec + 1), windows }));
}

/** CPU µs per window of one decode function on one batch. */
function cost(fn: () => unknown, windows: number): number {
  const runs = Math.max(20, Math.round(100_000 / windows));
  for (let i = 0; i < runs / 5; i++) fn();
  const c0 = process.cpuUsage();
  for (let i = 0; i < runs; i++) fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / (runs * windows);
}

/** One size, in this process: ingest every node's batch each simulated second, then tick. */
function runSize(nodeCount: number, originCount: number, seconds: number): Figures {
  const nodes = Array.from({ length: nodeCount }, (_, i) => ({ nodeId: `edge-${String(i).padStart(4, "0")}`, isp: ISPS[i % ISPS.length], region: REGIONS[Math.floor(i / ISPS.length) % REGIONS.length] }));
  const origins = Array.from({ length: originCount }, (_, i) => `origin-${i}.example`);
  const oldForm = encodeBatch(origins, 1, 0, false);
  const compactForm = encodeBatch(origins, 1, 0, true);
  const forms: Array<[string, number, number]> = [
    ["OutcomeCounts, protobuf-es fromBinary", oldForm.length, cost(() => columnsOfBatch(fromBinary(BatchSchema, oldForm)), originCount)],
    ["packed_counts, protobuf-es fromBinary", compactForm.length, cost(() => columnsOfBatch(fromBinary(BatchSchema, compactForm)), originCount)],
    ["OutcomeCounts, batch-decoder.ts", oldForm.length, cost(() => decodeBatch(oldForm), originCount)],
    ["packed_counts, batch-decoder.ts (central)", compactForm.length, cost(() => decodeBatch(compactForm), originCount)],
  ];

  // Pre-encode one second of traffic (the compact form sidecars send); later seconds reuse it with start times rewritten after decoding.
  const encoded = nodes.map((_, i) => encodeBatch(origins, i, 0));
  const bytes = encoded.reduce((a, b) => a + b.length, 0);
  const declared = new Set(origins);
  const limits = { ...CENTRAL_DEFAULTS, maxWindowsPerBatch: Math.max(CENTRAL_DEFAULTS.maxWindowsPerBatch, originCount) };

  let now = BASE_MS;
  const engine = new VerdictEngine({ now: () => now });
  // Rollups are only written by flush(), which the bench never calls.
  const history = new HistoryRollups({} as VerdictStore, 7 * 24 * 3600_000);
  const t0 = Date.now();
  const f: Figures = {
    nodes: nodeCount, origins: originCount, seconds, wallS: 0, bytesPerBatch: bytes / nodeCount, summaries: 0, ingestCpuUs: 0, decodeMs: 0, validateMs: 0, observeMs: 0,
    ingestWallMs: 0, ticks: [], tickCpu: [], rssMb: 0, heapMb: 0, evaluatedOrigins: 0, evaluatedNodes: 0, sanity: "", forms,
  };
  for (let sec = 0; sec < seconds; sec++) {
    now = BASE_MS + (sec + 1) * 1000 + 300;
    const cpu0 = process.cpuUsage();
    const w0 = performance.now();
    const start = BASE_MS + sec * 1000;
    // CPU time per step (process.cpuUsage: immune to other jobs on the machine, unlike wall time).
    const cpuNow = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    for (let i = 0; i < nodes.length; i++) {
      const a = cpuNow();
      const batch = decodeBatch(encoded[i]);
      batch.windows.startMs.fill(start);
      const b = cpuNow();
      const problem = batchProblem(batch, { nowMs: now, declared, limits });
      if (problem) throw new Error(`bench batch refused: ${problem.code} ${problem.reason}`);
      const c = cpuNow();
      engine.observeColumns(nodes[i], batch.windows, now);
      history.addColumns(batch.windows, now);
      const d = cpuNow();
      f.decodeMs += b - a;
      f.validateMs += c - b;
      f.observeMs += d - c;
      f.summaries += batch.windows.length;
    }
    f.ingestWallMs += performance.now() - w0;
    const cpu1 = process.cpuUsage(cpu0);
    f.ingestCpuUs += cpu1.user + cpu1.system;
    now += 200;
    const tc = process.cpuUsage();
    f.ticks.push(engine.tick(now).durationMs);
    const tcu = process.cpuUsage(tc);
    f.tickCpu.push((tcu.user + tcu.system) / 1000);
  }
  f.wallS = (Date.now() - t0) / 1000;
  const mem = process.memoryUsage();
  f.rssMb = mem.rss / 2 ** 20;
  f.heapMb = mem.heapUsed / 2 ** 20;
  f.evaluatedOrigins = engine.lastTick.origins;
  f.evaluatedNodes = engine.lastTick.nodes;
  const st = engine.status("origin-0.example");
  f.sanity = st ? `${["?", "NO_DATA", "HEALTHY", "DEGRADED", "DOWN"][st.state]} ${st.faults.map((x) => x.key).join(",")}` : "none";
  return f;
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

function report(f: Figures, goalTickMs: number): string[] {
  const steadyOf = (l: number[]) => l.slice(Math.min(3, l.length - 1)).sort((a, b) => a - b);
  const steady = steadyOf(f.ticks);
  const median = steady[Math.floor(steady.length / 2)];
  const max = steady[steady.length - 1];
  const cpu = steadyOf(f.tickCpu);
  const rate = f.summaries / (f.ingestCpuUs / 1e6);
  const perSummary = f.ingestCpuUs / f.summaries;
  const split = (ms: number) => ((ms * 1000) / f.summaries).toFixed(2);
  const engineRate = f.summaries / (f.observeMs / 1000);
  const out = [
    `${f.nodes} nodes × ${f.origins} origins, ${f.seconds} simulated seconds (${f.wallS.toFixed(1)} s wall), one core`,
    `  batch size          ${fmt(f.bytesPerBatch)} bytes per node per second (${f.origins} windows)`,
    `  ingest              ${fmt(rate)} summaries/s (CPU: decode + validate + observe)   goal >= 500,000 ${rate >= 500_000 ? "MET" : "NOT MET"}`,
    `  CPU per summary     ${perSummary.toFixed(2)} µs: decode ${split(f.decodeMs)}, validate ${split(f.validateMs)}, observe (lookback + history) ${split(f.observeMs)} (CPU time of each step)`,
    `  engine alone        ${fmt(engineRate)} summaries/s (observe: lookback + history, already-decoded batches)   goal >= 1,000,000 ${engineRate >= 1_000_000 ? "MET" : "NOT MET"}`,
    `  tick (all origins)  median ${median.toFixed(1)} ms, max ${max.toFixed(1)} ms over ${steady.length} steady ticks (wall)   goal <= ${goalTickMs} ms ${max <= goalTickMs ? "MET" : median <= goalTickMs ? "MET (median; max above)" : "NOT MET"}`,
    `  tick CPU            median ${cpu[Math.floor(cpu.length / 2)].toFixed(1)} ms, max ${cpu[cpu.length - 1].toFixed(1)} ms (user + system; incl. GC on other threads)`,
    `  central RSS         ${fmt(f.rssMb)} MB (heap used ${fmt(f.heapMb)} MB, incl. the bench's ${fmt((f.bytesPerBatch * f.nodes) / 2 ** 20)} MB of encoded batches)`,
    `  evaluated           ${f.evaluatedOrigins} origins, ${fmt(f.evaluatedNodes)} node aggregates per tick; sanity origin-0: ${f.sanity}`,
  ];
  return out;
}

if (process.argv.includes("--child")) {
  process.stdout.write(JSON.stringify(runSize(NODES, ORIGINS, SECONDS)));
} else {
  // Each size in its own process, so the larger one's RSS is its own.
  const child = (origins: number, seconds: number): Figures => {
    const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1], "--child", "--nodes", String(NODES), "--origins", String(origins), "--seconds", String(seconds)], {
      encoding: "utf8",
      maxBuffer: 1 << 24,
      stdio: ["ignore", "pipe", "inherit"],
    });
    if (r.status !== 0) throw new Error(`bench child (${NODES} × ${origins}) failed: exit ${r.status} ${r.signal ?? ""}`);
    return JSON.parse(r.stdout) as Figures;
  };
  const small = child(ORIGINS, SECONDS);
  console.log(`verdict bench (issue 12)`);
  for (const l of report(small, 50)) console.log(l);
  console.log(`  decode of one window, per wire form and decoder (µs per window, bytes per window):`);
  for (const [name, size, us] of small.forms) console.log(`    ${name.padEnd(42)} ${us.toFixed(2)} µs, ${fmt(size / ORIGINS)} bytes`);
  if (LARGE_ORIGINS > 0) {
    const large = child(LARGE_ORIGINS, LARGE_SECONDS);
    for (const l of report(large, 500)) console.log(l);
    console.log(`  RSS goal            <= 1,536 MB ${large.rssMb <= 1536 ? "MET" : "NOT MET"}`);
  }
}
