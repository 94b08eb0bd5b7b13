/**
 * npm run bench:verdict — ingest plus evaluation throughput of the verdict
 * engine on one core: N simulated nodes × M origins, one window summary per
 * node and origin per simulated second, delivered as protobuf-encoded Batch
 * messages (one per node per second, as a sidecar sends them). Measures
 *   ingest:   decode Batch + engine.observe + history rollup, summaries/s and CPU µs per summary
 *   tick:     one evaluation of every origin (lookback slide + policy + tracks), ms
 * and prints them with the targets (>= 200,000 summaries/s, tick < 100 ms).
 *
 *   npm run bench:verdict [-- --nodes 1000 --origins 100 --seconds 8]
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { OutcomeCountsSchema } from "../../proto/gen/originwatch/v1/common_pb.js";
import { type Batch, BatchSchema, WindowSummarySchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { HistogramAccumulator } from "../../proto/histogram.js";
import { unpackCounts, wireCounts } from "../../proto/outcomes.js";
import { VerdictEngine } from "../../central/verdict/engine.js";

function arg(name: string, d: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
}

const NODES = arg("nodes", 1000);
const ORIGINS = arg("origins", 100);
const SECONDS = arg("seconds", 12);
const ISPS = ["isp-a", "isp-b", "isp-c", "isp-d", "isp-e"];
const REGIONS = ["eu", "us", "ap", "sa"];

const nodes = Array.from({ length: NODES }, (_, i) => ({ nodeId: `edge-${String(i).padStart(4, "0")}`, isp: ISPS[i % ISPS.length], region: REGIONS[Math.floor(i / ISPS.length) % REGIONS.length] }));
const origins = Array.from({ length: ORIGINS }, (_, i) => `origin-${i}.example`);

/** One encoded batch per node: every origin's window, ~10 requests each, a realistic TTFB spread. */
function encodeBatch(nodeIndex: number, sec: number, compact = true): Uint8Array {
  const windows = origins.map((origin, oi) => {
    const h = new HistogramAccumulator();
    for (let k = 0; k < 10; k++) h.record(20 + ((nodeIndex * 7 + oi * 13 + k * 29) % 200));
    const failing = oi === 0 && nodeIndex % ISPS.length === 0; // origin-0 has an ISP fault on isp-a
    return create(WindowSummarySchema, {
      origin,
      startUnixMs: BigInt(sec * 1000),
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

/** Decode as the central does: protobuf, then compact counts to OutcomeCounts once (central/ingest/validate.ts). */
function decode(bytes: Uint8Array): Batch {
  const batch = fromBinary(BatchSchema, bytes);
  for (const w of batch.windows) if (!w.counts) w.counts = unpackCounts(w.packedCounts).counts;
  return batch;
}

/** Decode cost of each wire form alone (µs per window), measured on node 1's batch. */
function decodeCost(bytes: Uint8Array): number {
  for (let i = 0; i < 200; i++) decode(bytes);
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) decode(bytes);
  return ((performance.now() - t0) * 1000) / (1000 * ORIGINS);
}
const oldForm = encodeBatch(1, 0, false);
const compactForm = encodeBatch(1, 0, true);
const forms = [
  ["OutcomeCounts (previous release)", oldForm.length, decodeCost(oldForm)],
  ["packed_counts (current)", compactForm.length, decodeCost(compactForm)],
] as const;

// Pre-encode one second of traffic (the compact form sidecars send); later seconds reuse it with start times rewritten after decoding.
const encoded = nodes.map((_, i) => encodeBatch(i, 0));
const bytes = encoded.reduce((a, b) => a + b.length, 0);

let now = 0;
const engine = new VerdictEngine({ now: () => now });
const t0 = Date.now();
let ingestCpuUs = 0;
let decodeMs = 0;
let ingestWallMs = 0;
let summaries = 0;
const ticks: number[] = [];
for (let sec = 0; sec < SECONDS; sec++) {
  now = (sec + 1) * 1000 + 300;
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  const start = BigInt(sec * 1000);
  for (let i = 0; i < nodes.length; i++) {
    const d0 = performance.now();
    const batch: Batch = decode(encoded[i]);
    decodeMs += performance.now() - d0;
    for (const w of batch.windows) w.startUnixMs = start;
    engine.observe(nodes[i], batch.windows, now);
    summaries += batch.windows.length;
  }
  ingestWallMs += performance.now() - w0;
  const cpu1 = process.cpuUsage(cpu0);
  ingestCpuUs += cpu1.user + cpu1.system;
  now += 200;
  const r = engine.tick(now);
  ticks.push(r.durationMs);
}
const wall = (Date.now() - t0) / 1000;
const steady = ticks.slice(Math.min(5, ticks.length - 1)).sort((a, b) => a - b);
const st = engine.status("origin-0.example");
const rate = summaries / (ingestCpuUs / 1e6);
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
console.log(`verdict bench: ${NODES} nodes × ${ORIGINS} origins, ${SECONDS} simulated seconds (${wall.toFixed(1)} s wall), one core`);
console.log(`  batch size          ${fmt(bytes / NODES)} bytes per node per second (${ORIGINS} windows)`);
console.log(`  ingest              ${fmt(rate)} summaries/s (CPU), ${fmt(summaries / (ingestWallMs / 1000))} summaries/s (wall)   goal >= 500,000 (issue 12)`);
console.log(`  CPU per summary     ${(ingestCpuUs / summaries).toFixed(2)} µs (decode + observe): protobuf decode ${((decodeMs * 1000) / summaries).toFixed(2)} µs, engine.observe ${(((ingestWallMs - decodeMs) * 1000) / summaries).toFixed(2)} µs (wall)`);
for (const [name, size, us] of forms) console.log(`  decode, ${name.padEnd(33)} ${us.toFixed(2)} µs per window, ${fmt(size / ORIGINS)} bytes per window`);
console.log(`  central RSS         ${fmt(process.memoryUsage().rss / 2 ** 20)} MB`);
console.log(`  engine alone        ${fmt(summaries / ((ingestWallMs - decodeMs) / 1000))} summaries/s (observe, already-decoded batches)`);
console.log(`  tick (all origins)  median ${steady[Math.floor(steady.length / 2)].toFixed(1)} ms, max ${steady[steady.length - 1].toFixed(1)} ms over ${steady.length} steady ticks   goal <= 50 ms at 1,000 × 100, <= 500 ms at 1,000 × 1,000`);
console.log(`  evaluated           ${engine.lastTick.origins} origins, ${fmt(engine.lastTick.nodes)} node aggregates per tick`);
console.log(`  sanity              origin-0: ${st ? `${["?", "NO_DATA", "HEALTHY", "DEGRADED", "DOWN"][st.state]} ${st.faults.map((f) => f.key).join(",")}` : "none"}`);
const engineRate = summaries / ((ingestWallMs - decodeMs) / 1000);
const tickOk = steady[Math.floor(steady.length / 2)] < 100;
console.log(`  result              engine ${engineRate >= 200_000 && tickOk ? "PASS" : "BELOW TARGET"}; with decode ${rate >= 500_000 ? "PASS" : "BELOW GOAL (protobuf-es reflective decode dominates, see proto/README.md)"}`);
