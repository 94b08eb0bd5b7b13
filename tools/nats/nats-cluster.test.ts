/**
 * The nats-server cluster harness: three real servers on free loopback ports,
 * users enforced, stream leaders found, kill -9 and restart, nothing left
 * running afterwards (also when the owning process is killed).
 */
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { eventually, ROOT } from "../test/proc.js";
import { type NatsCluster, startNatsCluster } from "./nats-cluster.js";
import { requireNats } from "./require-nats.js";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

if (requireNats("nats cluster harness")) {
  let cluster: NatsCluster;
  test.before(async () => {
    cluster = await startNatsCluster({ servers: 3 });
    await cluster.ready();
  });
  test.after(async () => cluster?.stop());

  test("three servers agree on a JetStream meta leader and take an R3 stream", async () => {
    assert.is(cluster.servers.length, 3);
    assert.is(new Set(cluster.servers.flatMap((s) => [s.clientPort, s.httpPort, s.routePort])).size, 9, "nine distinct ports");
    const nc = await cluster.connect();
    const jsm = await jetstreamManager(nc);
    const si = await jsm.streams.add({ name: "HARNESS", subjects: ["harness.>"], num_replicas: 3 });
    assert.is(si.config.num_replicas, 3);
    assert.is(si.cluster?.replicas?.length, 2, "a leader and two replicas");
    await nc.close();
  });

  test("refuses a client without credentials or with a wrong password", async () => {
    for (const creds of [{}, { user: cluster.user.user, pass: "wrong" }, { user: "nobody", pass: "x" }]) {
      let err: unknown;
      try {
        const nc = await connect({ servers: cluster.urls, reconnect: false, ...creds });
        await nc.close();
      } catch (e) {
        err = e;
      }
      assert.ok(err, `connect with ${JSON.stringify(creds)} must fail`);
      assert.match(String(err), /Authorization/i);
    }
  });

  test("kill -9 of a stream's leader: another server leads it; the restarted server rejoins with its store", async () => {
    const before = await cluster.streamLeader("HARNESS");
    const leader = cluster.servers[before];
    await cluster.kill(before);
    assert.not.ok(leader.running());
    const after = await eventually(async () => {
      const i = await cluster.streamLeader("HARNESS");
      return i !== before ? i + 1 : 0;
    }, 20_000, 200);
    assert.is.not(after - 1, before);
    await cluster.restart(before);
    assert.ok(cluster.servers[before].running());
    await cluster.ready();
    await eventually(async () => {
      const r = (await (await fetch(`http://127.0.0.1:${cluster.servers[before].httpPort}/jsz`)).json()) as { streams: number };
      return r.streams === 1;
    }, 20_000, 200);
  });

  test("stop() kills every server and removes the store dirs; a second stop() is a no-op", async () => {
    const c = await startNatsCluster({ servers: 2 });
    await c.ready();
    const dirs = c.servers.map((s) => s.storeDir);
    await c.stop();
    await c.stop();
    assert.ok(c.servers.every((s) => !s.running()));
    assert.ok(dirs.every((d) => !existsSync(d)));
  });

  test("servers die with the process that started them, even on kill -9", async () => {
    const script = `import { startNatsCluster } from "./tools/nats/nats-cluster.ts";
const c = await startNatsCluster({ servers: 2 });
process.stdout.write(JSON.stringify({ pids: c.servers.map((s) => s.pid()), dir: c.servers[0].storeDir.replace(/\\/n1$/, "") }) + "\\n");
setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    const { pids, dir }: { pids: number[]; dir: string } = await new Promise((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (c) => {
        out += c;
        if (out.includes("\n")) resolve(JSON.parse(out));
      });
      child.once("exit", (code) => reject(new Error(`child exited ${code}`)));
    });
    assert.ok(pids.every((p) => p > 0 && alive(p)));
    child.kill("SIGKILL");
    await eventually(() => pids.every((p) => !alive(p)), 10_000);
    assert.match(dir, /ow-nats-/);
    rmSync(dir, { recursive: true, force: true }); // a kill -9 runs no handler: the temp dir is ours to remove
  });

}

test.run();
