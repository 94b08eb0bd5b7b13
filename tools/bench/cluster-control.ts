/**
 * The control plane across replicas (issue 16): how long a SetConfig made on
 * replica A takes to be applied by sidecars on A, B and C, and until every
 * ACK shows in ListNodes on A; and what relaying a probe costs — ProbeOrigin
 * on A over one local and two remote sidecars against one local sidecar only
 * (the embedded path, measured in the same run). 3 nats-servers, 3 in-process
 * centrals in cluster mode, real sidecars and origin, all on loopback.
 *
 *   npm run bench:cluster-control [-- --rounds 15]
 *
 * Latencies on a shared machine: read the median and the spread, and the
 * ratio of relayed to local probes.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startInProcessReplicas } from "../nats/in-process-replicas.js";
import { startNatsCluster } from "../nats/nats-cluster.js";
import { startOrigin } from "../origin.js";
import { eventually } from "../test/proc.js";
import { type Harness, startHarness } from "../test/sidecar-harness.js";
import { numArg } from "./args.js";

const ROUNDS = numArg("rounds", 15);
const ORIGIN = "www.example";

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const summary = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return `median ${median(s).toFixed(1)} ms (min ${s[0].toFixed(1)}, max ${s[s.length - 1].toFixed(1)}, n=${s.length})`;
};
const timed = async (fn: () => Promise<unknown>) => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

const cluster = await startNatsCluster({ servers: 3 });
const dir = await mkdtemp(join(tmpdir(), "ow-bench-control-"));
const sidecars: Harness[] = [];
try {
  await cluster.ready();
  const reps = await startInProcessReplicas(cluster, 3);
  const origin = await startOrigin();
  try {
    // edge-a on A, edge-b on B, edge-c on C.
    for (const [i, n] of [[0, "a"], [1, "b"], [2, "c"]] as const) {
      sidecars.push(await startHarness({ nodeId: `edge-${n}`, central: `http://${reps.centrals[i].address}`, stateDir: join(dir, n), origins: [`${ORIGIN}=${origin.url}`] }));
    }
    await eventually(() => sidecars.every((h) => h.sc.stream.state === "connected"), 15_000);
    const applied: number[] = [];
    const acked: number[] = [];
    for (let v = 1; v <= ROUNDS; v++) {
      const t0 = performance.now();
      await reps.api(0).config.setConfig({ config: { sampling: { successRate: 0.001 * v, errorRate: 0.5 } }, expectedVersion: BigInt(v - 1) });
      await eventually(() => sidecars.every((h) => h.sc.directives.current.version === BigInt(v)), 10_000, 2);
      applied.push(performance.now() - t0);
      await eventually(async () => (await reps.api(0).query.listNodes({})).nodes.filter((n) => n.appliedConfigVersion === BigInt(v)).length === 3, 10_000, 5);
      acked.push(performance.now() - t0);
    }
    const probe = async () => {
      const r = await reps.api(0).query.probeOrigin({ origin: ORIGIN, count: 1 });
      const bad = r.results.filter((x) => x.error || x.attempts.length !== 1);
      if (bad.length) throw new Error(`probe failed: ${bad.map((x) => `${x.nodeId}: ${x.error}`).join("; ")}`);
      return r.results.length;
    };
    const relayed: number[] = [];
    if ((await probe()) !== 3) throw new Error("expected 3 sidecars in the round");
    for (let k = 0; k < ROUNDS; k++) relayed.push(await timed(probe));
    for (const h of sidecars.splice(1, 2)) await h.close();
    await eventually(async () => (await probe()) === 1, 10_000);
    const local: number[] = [];
    for (let k = 0; k < ROUNDS; k++) local.push(await timed(probe));
    console.log(`SetConfig on A -> applied by the sidecars on A, B and C: ${summary(applied)}`);
    console.log(`SetConfig on A -> their 3 ACKs visible in ListNodes on A: ${summary(acked)}`);
    console.log(`ProbeOrigin on A, 1 local + 2 relayed sidecars: ${summary(relayed)}`);
    console.log(`ProbeOrigin on A, 1 local sidecar (baseline): ${summary(local)}`);
    console.log(`relayed / local round (median): ${(median(relayed) / median(local)).toFixed(2)}`);
  } finally {
    for (const h of sidecars) await h.close().catch(() => {});
    await origin.close();
    await reps.close();
  }
} finally {
  await cluster.stop();
  await rm(dir, { recursive: true, force: true });
}
process.exit(0);
