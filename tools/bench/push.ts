/**
 * `npm run bench:push`: time from SetConfig to the ACK of every one of N
 * connected sessions (default 1,000, in two child processes of grpc-js
 * clients, one connection each). The central runs in this process; SetConfig
 * goes over the network like an operator's call. Prints, over R rounds, the
 * median and p99 of the per-session ACK latency and of the time until all
 * sessions ACKed. Target (issue 5): p99 under 1 s.
 *
 *   npm run bench:push -- --sessions 1000 --rounds 20 --procs 2   (BENCH_VERBOSE=1: every round)
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pino from "pino";
import { startCentral } from "../../central/main.js";
import { ConfigService } from "../../proto/gen/originwatch/v1/config_pb.js";
import { ROOT } from "../test/proc.js";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const SESSIONS = arg("sessions", 1000);
const ROUNDS = arg("rounds", 20);
const PROCS = arg("procs", 2);

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

const dir = await mkdtemp(join(tmpdir(), "ow-bench-push-"));
const central = await startCentral({ listen: "127.0.0.1:0", data: dir }, pino({ level: "warn" }));
const children: ChildProcess[] = [];
const client = createClient(ConfigService, createGrpcTransport({ baseUrl: `http://${central.address}` }));

/** Start `procs` fleet processes holding `sessions` sessions in all, numbered from `first`. */
async function startFleet(sessions: number, procs: number, first: number): Promise<ChildProcess[]> {
  const per = Math.ceil(sessions / procs);
  const mine: ChildProcess[] = [];
  await Promise.all(
    Array.from({ length: procs }, (_, p) => {
      const n = Math.min(per, sessions - p * per);
      const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "tools", "bench", "push-fleet.ts"), central.address, String(n), String(first + p * per)], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "inherit"],
      });
      children.push(child);
      mine.push(child);
      return new Promise<void>((resolve, reject) => {
        child.stdout!.on("data", (b: Buffer) => {
          if (b.toString().includes('"ready"')) resolve();
        });
        child.once("exit", (code) => reject(new Error(`fleet process exited with ${code}`)));
      });
    }),
  );
  while (central.ingest.sessions.size < sessions) await new Promise((r) => setTimeout(r, 50));
  return mine;
}

/** Rounds of SetConfig → ACK from `sessions` sessions; round 0 warms up (JIT, first writes) and is kept apart. */
async function measure(sessions: number, rounds: number) {
  const perAck: number[] = [];
  const allAcked: number[] = [];
  let warmup = 0;
  for (let r = -1; r < rounds; r++) {
    const expected = central.fleetConfig.current().version + 1n;
    let acked = 0;
    let t0 = 0;
    const done = new Promise<number>((resolve) => {
      const onAck = (_s: unknown, ack: { version: bigint; accepted: boolean }) => {
        if (ack.version !== expected || !ack.accepted) return;
        if (r >= 0) perAck.push(performance.now() - t0);
        if (++acked === sessions) {
          central.ingest.off("config-ack", onAck);
          resolve(performance.now() - t0);
        }
      };
      central.ingest.on("config-ack", onAck);
    });
    t0 = performance.now();
    await client.setConfig({ config: { sampling: { successRate: 0.001 * ((r % 50) + 2), errorRate: 0.5 }, updatedBy: "bench" }, expectedVersion: expected - 1n });
    const all = await done;
    if (r < 0) warmup = all;
    else allAcked.push(all);
    if (process.env.BENCH_VERBOSE) process.stdout.write(`${sessions} sessions, round ${r + 1}: ${fmt(all)}\n`);
    await new Promise((res) => setTimeout(res, 200));
  }
  return { perAck, allAcked, warmup };
}

try {
  // Baseline in the same run: one session, same path (SetConfig over the network, push, ACK).
  const base = await startFleet(1, 1, 1_000_000);
  const baseline = await measure(1, ROUNDS);
  for (const c of base) c.kill("SIGTERM");
  while (central.ingest.sessions.size > 0) await new Promise((r) => setTimeout(r, 50));

  await startFleet(SESSIONS, PROCS, 0);
  process.stdout.write(`${SESSIONS} sessions connected (${PROCS} client processes, one connection each); ${ROUNDS} rounds\n`);
  const { perAck, allAcked, warmup } = await measure(SESSIONS, ROUNDS);
  const baseMedian = quantile(baseline.allAcked, 0.5);
  process.stdout.write(
    [
      `baseline, 1 session:     median ${fmt(baseMedian)}, p99 ${fmt(quantile(baseline.allAcked, 0.99))}`,
      `per-session ACK latency: median ${fmt(quantile(perAck, 0.5))}, p99 ${fmt(quantile(perAck, 0.99))}, max ${fmt(Math.max(...perAck))} (${perAck.length} ACKs)`,
      `all ${SESSIONS} ACKed:        median ${fmt(quantile(allAcked, 0.5))}, p99 ${fmt(quantile(allAcked, 0.99))}, max ${fmt(Math.max(...allAcked))} (${ROUNDS} rounds)`,
      `ratio to baseline (median, all ACKed): ${(quantile(allAcked, 0.5) / baseMedian).toFixed(1)}x`,
      `warm-up round (excluded): ${fmt(warmup)}`,
      `target p99 < 1000 ms: ${quantile(allAcked, 0.99) < 1000 ? "met" : "NOT met"}`,
    ].join("\n") + "\n",
  );
} finally {
  for (const c of children) c.kill("SIGTERM");
  await central.close();
  await rm(dir, { recursive: true, force: true });
}
