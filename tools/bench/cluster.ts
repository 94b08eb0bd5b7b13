/**
 * Window-log cost (issue 16): CPU µs per window summary to publish sidecar
 * batches into the partitioned log (the ingest replica's share), to read and
 * decode them back (a partition owner's share), and in the nats-servers, on a
 * real 3-server R3 cluster on loopback. Also the publish rate in summaries/s
 * and stored messages/s (the publisher coalesces the batches taken in one
 * event-loop turn: one message per partition for the nodes publishing at
 * that moment, as the ingest does within its linger). Baseline in the same run: protobuf-es encoding + decoding of
 * the same PartitionBatches without NATS (the part no transport can remove).
 *
 *   npm run bench:cluster [-- --batches 1000 --windows 100 --nodes 20 --partitions 16 --reps 3]
 *
 * Then the same cost on real processes per role, with 1, 2 and 3 replicas,
 * the shard balance, one replica's capacity pinned to one core and the fleet
 * it projects to (cluster-fleet.ts; its flags are --fleet-*; `--fleet-only 1`
 * skips the window-log part, `--fleet-w N` runs one W only, `--fleet-pinned 0`
 * skips the pinned replica, ORIGINWATCH_BENCH_CPU_PROF=<dir> profiles the centrals).
 *
 * The machine is shared and noisy: read the median and the spread, and the
 * ratios to the baseline.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { HistogramSchema, NodeIdentitySchema, type NodeIdentity } from "../../proto/gen/originwatch/v1/common_pb.js";
import { type Batch, BatchSchema, WindowSummarySchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { PartitionBatchSchema } from "../../proto/gen/originwatch/v1/cluster_pb.js";
import { NATS_DEFAULTS } from "../../central/cluster/nats-options.js";
import { createWindowLogPublisher, ensureWindowStreams, readPartition, splitByPartition } from "../../central/cluster/window-log.js";
import { startNatsCluster } from "../nats/nats-cluster.js";
import { numArg } from "./args.js";
import { benchClusterFleet, procCpuUs } from "./cluster-fleet.js";

const BATCHES = numArg("batches", 1000);
const WINDOWS = numArg("windows", 100);
const NODES = numArg("nodes", 20);
const P = numArg("partitions", 16);
const REPS = numArg("reps", 3);
const ORIGINS = 2000;

/** Zipf(1) origin picks, seeded: a realistic batch touches popular origins more. */
function makeBatches(rep: number): Array<{ node: NodeIdentity; batch: Batch }> {
  let seed = 12345 + rep;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const h = Array.from({ length: ORIGINS }, (_, i) => 1 / (i + 1)).reduce((a, b) => a + b, 0);
  const pick = () => {
    let u = rand() * h;
    for (let i = 0; i < ORIGINS; i++) if ((u -= 1 / (i + 1)) <= 0) return i;
    return ORIGINS - 1;
  };
  const nodes = Array.from({ length: NODES }, (_, i) => create(NodeIdentitySchema, { nodeId: `edge-${rep}-${i}`, isp: `isp-${i % 4}`, region: `r-${i % 3}` }));
  const out: Array<{ node: NodeIdentity; batch: Batch }> = [];
  for (let b = 0; b < BATCHES; b++) {
    const origins = new Set<number>();
    while (origins.size < WINDOWS) origins.add(pick());
    const windows = [...origins].map((o) =>
      create(WindowSummarySchema, {
        origin: `origin-${o}.cdn-customer.example`,
        startUnixMs: 1_700_000_000_000n + BigInt(b) * 1000n,
        lengthMs: 1000,
        packedCounts: [40 + (o % 7), 0, 0, o % 3],
        ttfb: create(HistogramSchema, { boundsSchema: 1, sparseIndex: [3, 5, 6, 8], counts: [3n, 10n, 20n, 7n], count: 40n, sumMs: 2400 }),
        bytesIn: 1000n,
        bytesOut: 50_000n,
      }),
    );
    out.push({ node: nodes[b % NODES], batch: create(BatchSchema, { seq: BigInt(Math.floor(b / NODES) + 1), windows }) });
  }
  return out;
}

const selfCpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs: number[]) => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;

/** Part one: the window log alone (publisher, nats-servers, reader) against the encode + decode baseline. */
async function benchWindowLog(): Promise<void> {
  const cluster = await startNatsCluster({ servers: 3 });
  try {
    await cluster.ready();
    const nc = await cluster.connect();
    const js = jetstream(nc);
    await ensureWindowStreams(await jetstreamManager(nc), { ...NATS_DEFAULTS, partitions: P });
    const pids = cluster.servers.map((s) => s.pid()!);
    const jsm = await jetstreamManager(nc);
    const lastSeqs = () => Promise.all(Array.from({ length: P }, async (_, p) => (await jsm.streams.info(`OW_WIN_${p}`)).state.last_seq));
    const rows: Record<string, number[]> = { baseline: [], publish: [], server: [], consume: [], rate: [], msgRate: [] };
    console.log(`window log: ${BATCHES} batches × ${WINDOWS} windows from ${NODES} nodes, ${P} partitions, R3 on 3 nats-servers, ${REPS} reps`);
    for (let rep = 0; rep < REPS; rep++) {
      const work = makeBatches(rep);
      const summaries = BATCHES * WINDOWS;

      // Baseline: split + encode + decode, no NATS.
      let c0 = selfCpuUs();
      for (const { node, batch } of work) {
        for (const [p, s] of splitByPartition(batch, P)) {
          const bytes = toBinary(PartitionBatchSchema, create(PartitionBatchSchema, { node, seq: batch.seq, partition: p, windows: s.windows, exemplars: s.exemplars }));
          fromBinary(PartitionBatchSchema, bytes);
        }
      }
      rows.baseline.push((selfCpuUs() - c0) / summaries);

      // Publish: every node serial (as one session is), nodes in parallel.
      const pub = createWindowLogPublisher(js, { partitions: P });
      const byNode = new Map<string, Batch[]>();
      for (const { node, batch } of work) byNode.set(node.nodeId, [...(byNode.get(node.nodeId) ?? []), batch]);
      const nodeOf = new Map(work.map((w) => [w.node.nodeId, w.node]));
      const before = await lastSeqs();
      const s0 = pids.map(procCpuUs);
      c0 = selfCpuUs();
      const t0 = performance.now();
      await Promise.all(
        [...byNode].map(async ([id, batches]) => {
          for (const b of batches) {
            await pub.publish(nodeOf.get(id)!, b);
          }
        }),
      );
      const wall = (performance.now() - t0) / 1000;
      rows.publish.push((selfCpuUs() - c0) / summaries);
      rows.server.push(pids.map(procCpuUs).reduce((a, x, i) => a + x - s0[i], 0) / summaries);
      rows.rate.push(summaries / wall);
      // Consume: every partition's messages of this rep, decoded, partitions in parallel.
      const after = await lastSeqs();
      rows.msgRate.push(after.reduce((a, x, p) => a + x - before[p], 0) / wall);
      c0 = selfCpuUs();
      let read = 0;
      await Promise.all(
        after.map(async (target, p) => {
          if (target <= before[p]) return;
          const r = await readPartition(js, p, { fromSeq: before[p] + 1, maxBuffered: 512, handler: (bs) => void (read += bs.reduce((a, b) => a + b.windows.length, 0)) });
          while (r.lastSeq() < target) await new Promise((x) => setTimeout(x, 5));
          await r.stop();
        }),
      );
      rows.consume.push((selfCpuUs() - c0) / Math.max(1, read));
      console.log(`  rep ${rep + 1}: publish ${rows.rate.at(-1)!.toFixed(0)} summaries/s (${rows.msgRate.at(-1)!.toFixed(0)} msgs/s); CPU µs/summary: encode+decode baseline ${rows.baseline.at(-1)!.toFixed(2)}, publisher ${rows.publish.at(-1)!.toFixed(2)}, nats-servers ${rows.server.at(-1)!.toFixed(2)}, reader ${rows.consume.at(-1)!.toFixed(2)} (${read} read)`);
    }
    console.log("median (min–max):");
    console.log(`  publish rate            ${median(rows.rate).toFixed(0)} summaries/s (${spread(rows.rate)}), ${median(rows.msgRate).toFixed(0)} msgs/s (${spread(rows.msgRate)})`);
    console.log(`  baseline encode+decode  ${median(rows.baseline).toFixed(2)} µs/summary (${spread(rows.baseline)})`);
    console.log(`  publisher (ingest)      ${median(rows.publish).toFixed(2)} µs/summary (${spread(rows.publish)})  ×${(median(rows.publish) / median(rows.baseline)).toFixed(1)} baseline`);
    console.log(`  nats-servers (all 3)    ${median(rows.server).toFixed(2)} µs/summary (${spread(rows.server)})`);
    console.log(`  reader (owner, decode)  ${median(rows.consume).toFixed(2)} µs/summary (${spread(rows.consume)})`);
    await nc.close();
  } finally {
    await cluster.stop();
  }
}

if (!numArg("fleet-only", 0)) await benchWindowLog();
await benchClusterFleet();
