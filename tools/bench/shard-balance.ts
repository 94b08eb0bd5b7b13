/**
 * Shard balance of the window log (issue 16): how evenly p = FNV-1a(origin)
 * mod P spreads the load when origin popularity is Zipf-distributed.
 *
 * Load model: N edge nodes each send R back-to-source requests per second,
 * each to origin i with Zipf probability q_i ∝ 1 / i^s. A node sends one
 * window summary per (origin, second) in which it had at least one request,
 * so origin i costs E[summaries/s] = N · (1 − (1 − q_i)^R): popular origins
 * saturate at N (one summary per node), which caps the skew a hash can see.
 * Partition load = Σ over its origins; worker load = Σ over the partitions its
 * leases give it: by count (ceil(P / W) at most each, without regard to load,
 * as the leases place while loads are unknown: random balanced assignments
 * are drawn), and by load (the leases' load-aware target, LPT).
 *
 * Prints max/mean per partition and per worker. Deterministic (no timing):
 *   npm run bench:shards [-- --nodes 2000 --origins 2000 --rps 200]
 */
import { partitionOf } from "../../central/cluster/partition.js";
import { maxOverMean, placeByLoad } from "../../central/cluster/partition-placement.js";
import { numArg } from "./args.js";
import { rng } from "./rng.js";

const NODES = numArg("nodes", 2000);
const ORIGINS = numArg("origins", 2000);
const RPS = numArg("rps", 200);


/** Origin names: numbered (`origin-17.cdn-customer.example`) or random host names (seeded). */
function originNames(style: "numbered" | "random"): string[] {
  const rand = rng(7);
  const word = (n: number) => Array.from({ length: n }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join("");
  return Array.from({ length: ORIGINS }, (_, i) => (style === "numbered" ? `origin-${i}.cdn-customer.example` : `${word(3 + Math.floor(rand() * 8))}.${word(4 + Math.floor(rand() * 6))}.${["com", "net", "io", "de"][i % 4]}`));
}

function originLoads(s: number, names: string[]): Array<{ name: string; load: number }> {
  const w = names.map((_, i) => 1 / (i + 1) ** s);
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((x, i) => ({ name: names[i], load: NODES * (1 - (1 - x / sum) ** RPS) }));
}

/** Worker loads for one random assignment of P partitions to W workers, ceil(P/W) at most each. */
function workerRatio(parts: number[], workers: number, rand: () => number): number {
  const order = parts.map((_, p) => p).sort(() => rand() - 0.5);
  const load = new Array(workers).fill(0);
  order.forEach((p, i) => (load[i % workers] += parts[p]));
  return maxOverMean(load);
}

/** The same with the leases' load-aware target (partition-placement.ts: LPT, heaviest partition to the least-loaded worker). */
function lptRatio(parts: number[], workers: number): number {
  const ids = Array.from({ length: workers }, (_, i) => `w${i}`);
  return maxOverMean([...placeByLoad(parts, ids, new Map()).loads.values()]);
}

const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

console.log(`shard balance: ${NODES} nodes × ${RPS} req/s over ${ORIGINS} Zipf origins (summaries/s per origin = N·(1−(1−q)^R))`);
console.log("names    | zipf s | P   | origins/partition max/mean | summaries/partition max/mean | workers W | summaries/worker max/mean: median (p95) of 500 load-blind assignments | load-aware (LPT)");
for (const style of ["numbered", "random"] as const) for (const s of [0.8, 1.0, 1.2]) {
  const origins = originLoads(s, originNames(style));
  for (const P of [64, 256]) {
    const parts = new Array(P).fill(0);
    const counts = new Array(P).fill(0);
    for (const o of origins) {
      const p = partitionOf(o.name, P);
      parts[p] += o.load;
      counts[p]++;
    }
    for (const W of [3, 8]) {
      const rand = rng(P * 100 + W);
      const ratios = Array.from({ length: 500 }, () => workerRatio(parts, W, rand));
      console.log(
        `${style.padEnd(8)} | ${s.toFixed(1).padStart(6)} | ${String(P).padEnd(3)} | ${maxOverMean(counts).toFixed(2).padStart(26)} | ${maxOverMean(parts).toFixed(2).padStart(28)} | ${String(W).padStart(9)} | ${pct(ratios, 0.5).toFixed(3)} (${pct(ratios, 0.95).toFixed(3)}) | ${lptRatio(parts, W).toFixed(3)}`,
      );
    }
  }
}
