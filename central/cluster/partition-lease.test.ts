/**
 * Partition leases against a real 3-server JetStream cluster: every partition
 * owned by exactly one worker, never by two at once (an ownership log on one
 * clock, checked interval by interval), taken over within 15 s when a worker
 * dies or is cut off from NATS, rebalanced when a worker joins or leaves.
 */
import { spawn } from "node:child_process";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { type NatsCluster, startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { type FaultRelay, startFaultRelay } from "../../tools/fault-relay.js";
import { eventually, ROOT } from "../../tools/test/proc.js";
import { type BalanceOptions, type PartitionLeases, type ReleaseReason, leaseKey, openLeaseBucket, parseHeartbeat, startPartitionLeases } from "./partition-lease.js";
import { maxOverMean } from "./partition-placement.js";

const P = 4;

interface Event {
  t: number;
  worker: string;
  p: number;
  kind: "acquire" | "release";
  why?: ReleaseReason;
}

/** The ownership log: every acquire/release of every in-process worker, on one clock. */
const log: Event[] = [];

/** Fails when a partition's log shows an acquire while another worker still owns it. */
function assertNeverTwoOwners(): void {
  const byP = new Map<number, Event[]>();
  for (const e of [...log].sort((a, b) => a.t - b.t)) byP.set(e.p, [...(byP.get(e.p) ?? []), e]);
  for (const [p, events] of byP) {
    let owner: string | undefined;
    for (const e of events) {
      if (e.kind === "acquire") {
        assert.is(owner, undefined, `partition ${p} acquired by ${e.worker} at ${e.t} while ${owner} owned it`);
        owner = e.worker;
      } else if (e.worker === owner) owner = undefined;
    }
  }
}

test("a heartbeat names its partitions and their loads; an older worker's bare timestamp or garbage names none", () => {
  assert.equal(parseHeartbeat(JSON.stringify({ t: 5, p: { "3": 12.5, "7": null } })), { t: 5, p: { "3": 12.5, "7": null } });
  assert.equal(parseHeartbeat("1700000000000"), { t: 1700000000000, p: {} });
  for (const bad of ["", "null", "{", '{"t":1,"p":3}', "[]"]) assert.equal(parseHeartbeat(bad).p, {}, bad);
});

if (requireNats("partition leases")) {
  let cluster: NatsCluster;
  const conns: NatsConnection[] = [];
  const workers: Array<{ id: string; leases: PartitionLeases }> = [];
  let bucket = 0;

  test.before(async () => {
    cluster = await startNatsCluster({ servers: 3 });
    await cluster.ready();
  });
  test.after.each(async () => {
    await Promise.all(workers.splice(0).map((w) => w.leases.stop()));
    await Promise.all(conns.splice(0).map((c) => c.close().catch(() => undefined)));
    log.length = 0;
  });
  test.after(async () => cluster?.stop());

  /** A fresh bucket per test (tests stay independent). */
  async function newBucket(ttlMs: number): Promise<{ name: string; kv: KV }> {
    const nc = await cluster.connect();
    conns.push(nc);
    const name = `OW_LEASES_T${++bucket}`;
    return { name, kv: (await openLeaseBucket(jetstream(nc), { ttlMs, replicas: 3, bucket: name })).kv };
  }

  /** Load-aware runs: partition p does rates[p] windows/s while owned (a steady count the owner reports). */
  interface Loaded {
    rates: number[];
    balance: Partial<BalanceOptions>;
  }

  async function startWorker(id: string, bucketName: string, ttlMs: number, servers?: string[], loaded?: Loaded): Promise<PartitionLeases> {
    const { connect } = await import("@nats-io/transport-node");
    const nc = servers ? await connect({ servers, user: cluster.user.user, pass: cluster.user.password, timeout: 2_000 }) : await cluster.connect();
    conns.push(nc);
    const js = jetstream(nc, { timeout: 2_000 });
    const kv = await openLeaseBucket(js, { ttlMs, replicas: 3, bucket: bucketName });
    const since = new Map<number, number>();
    const leases = startPartitionLeases(kv, {
      workerId: id,
      partitions: loaded?.rates.length ?? P,
      ttlMs,
      onAcquire: (p) => {
        since.set(p, Date.now());
        log.push({ t: Date.now(), worker: id, p, kind: "acquire" });
      },
      onRelease: (p, why) => void log.push({ t: Date.now(), worker: id, p, kind: "release", why }),
      ...(loaded && {
        load: (p: number) => (since.has(p) ? (loaded.rates[p] * (Date.now() - since.get(p)!)) / 1000 : undefined),
        balance: loaded.balance,
      }),
    });
    workers.push({ id, leases });
    return leases;
  }

  const ownersOf = (ws: Array<{ id: string; leases: PartitionLeases }>) => {
    const owners = new Map<number, string[]>();
    for (const w of ws) for (const p of w.leases.owned()) owners.set(p, [...(owners.get(p) ?? []), w.id]);
    return owners;
  };
  const allOwnedOnce = (ws: Array<{ id: string; leases: PartitionLeases }>, partitions = P) => {
    const o = ownersOf(ws);
    return o.size === partitions && [...o.values()].every((v) => v.length === 1);
  };

  test("3 workers × 4 partitions: each partition owned by exactly one worker, at most ceil(4/3) = 2 each, as the bucket says", async () => {
    const { name, kv } = await newBucket(10_000);
    for (const id of ["a", "b", "c"]) await startWorker(id, name, 10_000);
    // The first worker may take every partition before the others' heartbeats exist; the rule is that the
    // workers converge to their quota (the first releases its extras at its next tick), never two owners meanwhile.
    await eventually(async () => {
      await Promise.all(workers.map((w) => w.leases.tick()));
      return allOwnedOnce(workers) && workers.every((w) => w.leases.owned().length <= 2);
    }, 15_000, 200);
    for (const w of workers) assert.ok(w.leases.owned().length <= 2, `${w.id} owns ${w.leases.owned()}`);
    for (const [p, [id]] of ownersOf(workers)) {
      const e = await kv.get(leaseKey(p));
      assert.is(e?.string(), id, `the bucket names ${id} for partition ${p}`);
      // A renewal may land between the read and the comparison (timer ticks run too): read until both agree.
      const owner = workers.find((w) => w.id === id)!.leases;
      await eventually(async () => (await kv.get(leaseKey(p)))?.revision === owner.revision(p), 5_000, 50);
    }
    assertNeverTwoOwners();
  });

  test("a released lease is taken by exactly one of six concurrent takers (100 rounds, clients on all three servers)", async () => {
    const name = `OW_LEASES_T${++bucket}`;
    const buckets = [];
    for (const i of [0, 1, 2, 0, 1, 2]) {
      const { connect } = await import("@nats-io/transport-node");
      const nc = await connect({ servers: cluster.urls[i], user: cluster.user.user, pass: cluster.user.password });
      conns.push(nc);
      buckets.push(await openLeaseBucket(jetstream(nc), { ttlMs: 10_000, replicas: 3, bucket: name }));
    }
    let rev = await buckets[0].kv.create(leaseKey(0), "first");
    for (let round = 0; round < 100; round++) {
      await buckets[round % 6].remove(rev);
      const r = await Promise.allSettled(buckets.map((b, i) => b.kv.create(leaseKey(0), `taker-${i}`)));
      const won = r.filter((x): x is PromiseFulfilledResult<number> => x.status === "fulfilled");
      assert.is(won.length, 1, `round ${round}: ${won.length} winners`);
      rev = won[0].value;
    }
  });

  test("a worker that dies (stops renewing, releases nothing): its partitions are owned again within 15 s", async () => {
    const { name } = await newBucket(10_000);
    for (const id of ["d", "e", "f"]) await startWorker(id, name, 10_000);
    await eventually(() => allOwnedOnce(workers), 15_000, 100);
    const victim = workers.reduce((a, b) => (b.leases.owned().length > a.leases.owned().length ? b : a));
    const lost = victim.leases.owned();
    const t0 = Date.now();
    victim.leases.abandon();
    for (const p of lost) log.push({ t: t0, worker: victim.id, p, kind: "release", why: "lost" });
    const rest = workers.filter((w) => w !== victim);
    await eventually(() => allOwnedOnce(rest), 20_000, 50);
    const took = Date.now() - t0;
    process.stderr.write(`leases: ${lost.length} partitions of a dead worker owned again after ${took} ms (ttl 10 s)\n`);
    assert.ok(took <= 15_000, `takeover took ${took} ms`);
    assertNeverTwoOwners();
    workers.splice(workers.indexOf(victim), 1);
  });

  test("a worker cut off from NATS gives its partitions up before anyone else takes them", async () => {
    const ttl = 4_000;
    const { name } = await newBucket(ttl);
    const s0 = cluster.servers[0];
    const relay: FaultRelay = await startFaultRelay({ target: { host: "127.0.0.1", port: s0.clientPort } });
    try {
      const cut = await startWorker("cut", name, ttl, [`nats://${relay.address}`]);
      await eventually(() => cut.owned().length === P, 10_000, 50);
      await startWorker("g", name, ttl);
      await eventually(() => allOwnedOnce(workers) && cut.owned().length === 2, 15_000, 50);
      const held = cut.owned();
      const t0 = Date.now();
      await relay.setMode({ kind: "blackhole" });
      await eventually(() => cut.owned().length === 0, ttl + 1_000, 20);
      const gaveUp = Date.now() - t0;
      await eventually(() => workers.find((w) => w.id === "g")!.leases.owned().length === P, 15_000, 50);
      const taken = Date.now() - t0;
      process.stderr.write(`leases: blackholed owner gave up after ${gaveUp} ms; partitions owned again after ${taken} ms (ttl ${ttl} ms)\n`);
      for (const p of held) {
        const lostAt = log.find((e) => e.worker === "cut" && e.p === p && e.kind === "release")!;
        assert.is(lostAt.why, "lost");
        const takenAt = log.filter((e) => e.worker === "g" && e.p === p && e.kind === "acquire").at(-1)!;
        assert.ok(lostAt.t < takenAt.t, `partition ${p}: lost at ${lostAt.t}, taken at ${takenAt.t}`);
      }
      assertNeverTwoOwners();
      const i = workers.findIndex((w) => w.id === "cut");
      workers.splice(i, 1)[0].leases.abandon();
    } finally {
      await relay.close();
    }
  });

  test("rebalance: a joining worker gets its share from the others; a leaving worker's share is taken at once", async () => {
    const { name } = await newBucket(10_000);
    const h = await startWorker("h", name, 10_000);
    await eventually(() => h.owned().length === P, 10_000, 50);
    await startWorker("i", name, 10_000);
    await eventually(async () => {
      await Promise.all(workers.map((w) => w.leases.tick()));
      return allOwnedOnce(workers) && workers.every((w) => w.leases.owned().length === 2);
    }, 15_000, 100);
    assert.ok(log.some((e) => e.worker === "h" && e.kind === "release" && e.why === "rebalance"));
    const t0 = Date.now();
    const leaving = workers.splice(workers.findIndex((w) => w.id === "i"), 1)[0];
    await leaving.leases.stop();
    await eventually(async () => {
      await h.tick();
      return h.owned().length === P;
    }, 5_000, 50);
    process.stderr.write(`leases: a stopped worker's partitions owned again after ${Date.now() - t0} ms\n`);
    assertNeverTwoOwners();
  });

  test("skewed loads: the workers move partitions until max/mean ≤ 1.2, then stop moving; never two owners", async () => {
    const ttl = 5_000; // tick 1 s
    const rates = [100, 60, 40, 30, 20, 15, 10, 5]; // Zipf-like: a count placement can be 2× the mean
    const loaded: Loaded = { rates, balance: { warmMs: 3_000, minHoldMs: 3_000, moveEveryTicks: 2 } };
    const { name, kv } = await newBucket(ttl);
    // "k" alone first, until its loads are published: the others join a cluster in load-aware mode (no count quota).
    const k = await startWorker("k", name, ttl, undefined, loaded);
    await eventually(async () => {
      const beat = JSON.parse((await kv.get("w.k"))?.string() ?? "{}");
      return k.owned().length === rates.length && Object.values(beat.p ?? {}).every((x) => typeof x === "number");
    }, 20_000, 100);
    await startWorker("l", name, ttl, undefined, loaded);
    await startWorker("m", name, ttl, undefined, loaded);
    const balance = () => maxOverMean(workers.map((w) => w.leases.owned().reduce((a, p) => a + rates[p], 0)));
    const t0 = Date.now();
    // Settled: balanced, and no acquire or release for 8 ticks: longer than a pending move can wait (minHold 3 ticks + moveEveryTicks 2 + a tick).
    await eventually(() => allOwnedOnce(workers, rates.length) && balance() <= 1.2 && Date.now() - log.at(-1)!.t > 8 * (ttl / 5), 90_000, 100);
    const settled = balance();
    const moves = log.filter((e) => e.kind === "release" && e.why === "rebalance").length;
    process.stderr.write(`leases: skewed loads balanced to max/mean ${settled.toFixed(3)} after ${Date.now() - t0} ms and ${moves} moves\n`);
    assert.ok(moves >= 2, `partitions moved by load (${moves} moves)`);
    assert.ok(workers.every((w) => w.leases.owned().length > 0), "every worker carries load");
    // Then nothing moves for 10 ticks (hysteresis: within 1.1 of the mean, or at the target).
    const before = log.length;
    const beats = new Map<string, Set<number>>(workers.map((w) => [w.id, new Set()]));
    await eventually(async () => {
      for (const [id, seen] of beats) seen.add(JSON.parse((await kv.get(`w.${id}`))?.string() ?? "{}").t);
      return [...beats.values()].every((seen) => seen.size > 10); // 10 ticks of every worker
    }, 60_000, 200);
    assert.equal(log.slice(before), [], "no move after the placement settled");
    assert.ok(balance() <= 1.2, `still balanced: ${balance()}`);
    assertNeverTwoOwners();
  });

  test("skewed loads from a fresh cluster (count quota until loads are known), then a worker dies: its partitions are owned again within ttl + 5 ticks", async () => {
    const ttl = 5_000;
    const rates = [5, 10, 15, 20, 30, 40, 60, 100];
    const loaded: Loaded = { rates, balance: { warmMs: 3_000, minHoldMs: 3_000, moveEveryTicks: 2 } };
    const { name } = await newBucket(ttl);
    for (const id of ["n", "o", "q"]) await startWorker(id, name, ttl, undefined, loaded);
    const balance = (ws: typeof workers) => maxOverMean(ws.map((w) => w.leases.owned().reduce((a, p) => a + rates[p], 0)));
    await eventually(() => allOwnedOnce(workers, rates.length) && balance(workers) <= 1.2 && Date.now() - log.at(-1)!.t > 8 * (ttl / 5), 90_000, 100);
    const victim = workers.find((w) => w.leases.owned().length > 0 && w.leases.owned().every((p) => w.leases.load(p) !== undefined))!;
    const lost = victim.leases.owned();
    const t0 = Date.now();
    victim.leases.abandon();
    for (const p of lost) log.push({ t: t0, worker: victim.id, p, kind: "release", why: "lost" });
    const rest = workers.filter((w) => w !== victim);
    await eventually(() => allOwnedOnce(rest, rates.length), 30_000, 50);
    const took = Date.now() - t0;
    process.stderr.write(`leases: load-aware, ${lost.length} partitions of a dead worker owned again after ${took} ms (ttl ${ttl} ms), max/mean of the two left ${balance(rest).toFixed(3)}\n`);
    assert.ok(took <= ttl + 5 * (ttl / 5), `takeover took ${took} ms`);
    assertNeverTwoOwners();
    workers.splice(workers.indexOf(victim), 1);
  });

  test("a worker process killed with kill -9: its partitions are owned again within 15 s", async () => {
    const { name } = await newBucket(10_000);
    const script = `import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { openLeaseBucket, startPartitionLeases } from "./central/cluster/partition-lease.ts";
const nc = await connect({ servers: ${JSON.stringify(cluster.urls)}, user: ${JSON.stringify(cluster.user.user)}, pass: ${JSON.stringify(cluster.user.password)} });
const kv = await openLeaseBucket(jetstream(nc), { ttlMs: 10000, replicas: 3, bucket: ${JSON.stringify(name)} });
const l = startPartitionLeases(kv, { workerId: "proc", partitions: ${P}, ttlMs: 10000, onAcquire: (p) => process.stdout.write("acquire " + p + "\\n"), onRelease: (p) => process.stdout.write("release " + p + "\\n") });
setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    try {
      const owned = new Set<number>();
      child.stdout!.on("data", (c: Buffer) => {
        for (const line of c.toString().split("\n")) {
          const m = /^(acquire|release) (\d+)$/.exec(line);
          if (m) (m[1] === "acquire" ? owned.add(Number(m[2])) : owned.delete(Number(m[2])));
        }
      });
      await eventually(() => owned.size === P, 15_000, 50);
      const j = await startWorker("j", name, 10_000);
      await eventually(() => owned.size === 2 && j.owned().length === 2, 15_000, 50);
      const t0 = Date.now();
      child.kill("SIGKILL");
      await eventually(() => j.owned().length === P, 20_000, 50);
      const took = Date.now() - t0;
      process.stderr.write(`leases: partitions of a kill -9'd worker process owned again after ${took} ms (ttl 10 s)\n`);
      assert.ok(took <= 15_000, `takeover took ${took} ms`);
    } finally {
      child.kill("SIGKILL");
    }
  });
}

test.run();
