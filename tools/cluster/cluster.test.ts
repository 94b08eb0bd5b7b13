/**
 * `npm run cluster` leaves nothing running: the script is started as a real
 * process and stopped with SIGINT once its cluster runs (on a build without
 * cluster mode in `originwatch central` it gives up by itself) or during
 * start-up; every process it reported (nats-servers, centrals, sidecars) must
 * be gone and every port it reported free again.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import net from "node:net";
import { requireNats } from "../nats/require-nats.js";
import { ROOT, eventually } from "../test/proc.js";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });

/** Starts `npm run cluster`'s script; `at` says when to send SIGINT (a regex over its output). */
async function runAndInterrupt(at: RegExp): Promise<{ text: string; code: number | null; interrupted: boolean }> {
  const child = spawn(process.execPath, ["--import", "tsx", "tools/cluster/cluster.ts", "--no-view", "--nodes", "3"], {
    cwd: ROOT,
    env: { ...process.env, ORIGINWATCH_FROM_SOURCE: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  child.stdout.on("data", (c: Buffer) => (text += c.toString()));
  child.stderr.on("data", (c: Buffer) => (text += c.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  try {
    await eventually(() => at.test(text) || child.exitCode !== null, 120_000, 50);
    const interrupted = child.exitCode === null;
    if (interrupted) child.kill("SIGINT");
    const code = await exited;
    const nums = (label: string) => (new RegExp(`^${label}: (.*)$`, "m").exec(text)?.[1] ?? "").split(" ").filter(Boolean).map(Number);
    const pids = [...nums("nats pids"), ...nums("cluster pids")];
    const ports = [...nums("nats ports"), ...nums("cluster ports")];
    assert.is(nums("nats pids").length, 3, text);
    assert.match(text, /cluster stopped/, text);
    for (const pid of pids) await eventually(() => !alive(pid), 5_000);
    for (const port of ports) assert.ok(await portFree(port), `port ${port} still in use`);
    return { text, code, interrupted };
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}

if (requireNats("npm run cluster")) {
  test("SIGINT once the cluster runs stops every nats-server, central and sidecar it started; their ports are free", async () => {
    const r = await runAndInterrupt(/cluster ready|no --nats flag/);
    if (/no --nats flag/.test(r.text)) {
      // A build without cluster mode in `originwatch central`: it stops NATS again by itself.
      assert.is(r.code, 2, r.text);
      return;
    }
    assert.ok(r.interrupted);
    assert.is(r.code, 0, r.text);
    assert.ok(/^cluster pids: (\d+ ?){6,}$/m.test(r.text), "3 centrals and 3 sidecars reported");
  });

  test("SIGINT during start-up (NATS up, centrals not yet) stops what was started and starts nothing more", async () => {
    const r = await runAndInterrupt(/^nats pids: /m);
    assert.ok(r.interrupted);
    assert.is(r.code, 0, r.text);
    assert.not.match(r.text, /cluster ready/);
    assert.not.match(r.text, /^central-1: /m, "stopped before starting the rest");
  });
}

test.run();
