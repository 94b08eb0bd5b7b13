/**
 * `npm run cluster` leaves nothing running: the script is started as a real
 * process, stopped with SIGINT once its cluster runs (or, on a build without
 * cluster mode in `originwatch central`, once it gave up), and every process
 * it reported (nats-servers, centrals, sidecars) must be gone and every port
 * it reported free again.
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

if (requireNats("npm run cluster")) {
  test("SIGINT stops every nats-server, central and sidecar the cluster started; their ports are free", async () => {
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
      await eventually(() => /cluster ready|no --nats flag|^cluster: /m.test(text) || child.exitCode !== null, 120_000, 200);
      const gaveUp = /no --nats flag/.test(text);
      const nums = (label: string) => (new RegExp(`^${label}: (.*)$`, "m").exec(text)?.[1] ?? "").split(" ").filter(Boolean).map(Number);
      const pids = [...nums("nats pids"), ...nums("cluster pids")];
      const ports = [...nums("nats ports"), ...nums("cluster ports")];
      assert.is(nums("nats pids").length, 3, text);
      if (!gaveUp) {
        assert.match(text, /cluster ready/, text);
        assert.ok(nums("cluster pids").length >= 6, "3 centrals and 3 sidecars reported");
        child.kill("SIGINT");
      }
      const code = await exited;
      assert.is(code, gaveUp ? 2 : 0, text);
      assert.match(text, /cluster stopped/);
      for (const pid of pids) await eventually(() => !alive(pid), 5_000);
      for (const port of ports) assert.ok(await portFree(port), `port ${port} still in use`);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
}

test.run();
