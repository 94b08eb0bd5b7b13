/**
 * `npm run bench:hop`: what the sidecar hop costs, measured in one run on this
 * machine against a baseline measured in the same run.
 *
 *   (a) origin direct
 *   (b) bare http-proxy hop, same agent settings (the baseline)
 *   (c) `originwatch sidecar`, monitoring on, streaming to a live central
 *       (`originwatch central` when it runs; otherwise an ingest stand-in, noted)
 *
 * Prints req/s and p50/p99 per target, (c)/(b) throughput and the p99
 * difference. `--rss` instead drives ~5,000 req/s of mixed traffic through the
 * sidecar for a minute and reports its RSS. Loopback only, bounded in time.
 *
 * The sidecar and the bare hop both run with the V8 flags the deploy guide
 * gives the sidecar's unit (SIDECAR_NODE_OPTIONS, README "A sidecar beside
 * Nginx"): measured as deployed, and the baseline on the same runtime.
 *
 * Flags: --duration-ms N (per measurement, default 2000) --rounds N (default 5)
 *        --connections N (default 16) --rss [--rate N (5000)] [--rss-seconds N (60)]
 *        --node-options "…" (instead of SIDECAR_NODE_OPTIONS; "" for none)
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startOriginwatch, type Proc } from "../test/proc.js";
import { percentile, runLoad, type LoadResult } from "./hop-load.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const HOST = "www.example.com";

function flag(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const has = (name: string) => process.argv.includes(`--${name}`);

/**
 * The deploy guide's NODE_OPTIONS for a sidecar (README "A sidecar beside
 * Nginx"), measured with `--rss`: V8 lets the young generation grow to 16 MB
 * per semi-space under load, ~25 MB more RSS at 5k req/s (peak 109 MB after
 * 60 s without it). The flag can only be given at start; the sidecar sets its
 * other heap flag itself (sidecar/cli.ts SIDECAR_V8_FLAGS).
 */
export const SIDECAR_NODE_OPTIONS = "--max-semi-space-size=4";
const nodeOptions = (() => {
  const i = process.argv.indexOf("--node-options");
  return i > 0 ? (process.argv[i + 1] ?? "") : SIDECAR_NODE_OPTIONS;
})();

interface Child {
  child: ChildProcess;
  address: string;
  stop(): Promise<void>;
}

function spawnTs(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Child> {
  const child = spawn(process.execPath, ["--import", "tsx", join(HERE, file), ...args], { stdio: ["ignore", "pipe", "inherit"], env });
  return new Promise((resolve, reject) => {
    let buf = "";
    const t = setTimeout(() => reject(new Error(`${file} did not start`)), 20_000);
    child.stdout!.on("data", (c: Buffer) => {
      buf += c.toString();
      const line = buf.split("\n").find((l) => l.includes('"listening"'));
      if (!line) return;
      clearTimeout(t);
      const address = (JSON.parse(line) as { address: string }).address;
      resolve({
        child,
        address,
        stop: async () => {
          if (child.exitCode !== null) return;
          const exited = new Promise<void>((r) => child.once("exit", () => r()));
          child.kill("SIGTERM");
          await exited;
        },
      });
    });
    child.once("exit", (code) => reject(new Error(`${file} exited with ${code}`)));
  });
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

async function startCentral(): Promise<{ url: string; label: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "ow-bench-central-"));
  try {
    const c: Proc = await startOriginwatch(["central", "--listen", "127.0.0.1:0", "--data", dir], { timeoutMs: 20_000 });
    return {
      url: `http://${c.address}`,
      label: "originwatch central",
      stop: async () => {
        await c.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch {
    rmSync(dir, { recursive: true, force: true });
    const stub = await spawnTs("hop-central-stub.ts", []);
    return { url: `http://${stub.address}`, label: "ingest stand-in (originwatch central not runnable on this tree)", stop: stub.stop };
  }
}

function summarize(rs: LoadResult[]) {
  const requests = rs.reduce((s, r) => s + r.requests, 0);
  const seconds = rs.reduce((s, r) => s + r.elapsedMs, 0) / 1000;
  const all = new Float64Array(requests);
  let o = 0;
  for (const r of rs) {
    all.set(r.latenciesMs, o);
    o += r.requests;
  }
  all.sort();
  return { rps: requests / seconds, p50: percentile(all, 0.5), p99: percentile(all, 0.99), errors: rs.reduce((s, r) => s + r.errors, 0), requests };
}

async function main() {
  const origin = await spawnTs("hop-origin.ts", []);
  const central = await startCentral().catch(async (err) => {
    await origin.stop();
    throw err;
  });
  const sidecar = await startOriginwatch([
    "sidecar",
    "--central", central.url,
    "--listen", "127.0.0.1:0",
    "--admin", "127.0.0.1:0",
    "--node-id", "bench-edge",
    "--isp", "bench-isp",
    "--region", "bench-region",
    "--origin", `${HOST}=http://${origin.address}`,
  ], { env: { NODE_OPTIONS: nodeOptions } }).catch(async (err) => {
    await central.stop();
    await origin.stop();
    throw err;
  });
  const cleanup = async () => {
    await sidecar.stop();
    await central.stop();
    await origin.stop();
  };
  try {
    if (has("rss")) await rssMode(sidecar);
    else await throughputMode(origin, sidecar, central.label);
  } finally {
    await cleanup();
  }
}

function cpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // clock ticks (100 Hz) → ms
  } catch {
    return Number.NaN;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length ? (s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : Number.NaN;
};

async function throughputMode(origin: Child, sidecar: Proc, centralLabel: string) {
  const durationMs = flag("duration-ms", 2000);
  const rounds = flag("rounds", 5);
  const connections = flag("connections", 16);
  const bare = await spawnTs("hop-bare.ts", [`http://${origin.address}`], { ...process.env, NODE_OPTIONS: nodeOptions });
  const A = "(a) origin direct";
  const B = "(b) bare http-proxy";
  const C = "(c) originwatch sidecar";
  const targets: Record<string, { address: string; pid?: number }> = {
    [A]: { address: origin.address },
    [B]: { address: bare.address, pid: bare.child.pid },
    [C]: { address: sidecar.address, pid: sidecar.child.pid },
  };
  const results = new Map<string, LoadResult[]>(Object.keys(targets).map((n) => [n, []]));
  const cpu = new Map<string, { ms: number; reqs: number }>([[B, { ms: 0, reqs: 0 }], [C, { ms: 0, reqs: 0 }]]);
  const pairs: Array<{ ratio: number; dp99: number }> = [];
  try {
    for (const n of Object.keys(targets)) await runLoad({ address: targets[n].address, host: HOST, paths: ["/s"], connections, durationMs: 1000 });
    for (let r = 0; r < rounds; r++) {
      // alternate the order so drift on a shared machine does not favour one target
      const order = r % 2 === 0 ? [A, B, C] : [C, B, A];
      const round = new Map<string, LoadResult>();
      for (const n of order) {
        const pid = targets[n].pid;
        const c0 = pid ? cpuMs(pid) : 0;
        const res = await runLoad({ address: targets[n].address, host: HOST, paths: ["/s"], connections, durationMs });
        if (pid) {
          const e = cpu.get(n)!;
          e.ms += cpuMs(pid) - c0;
          e.reqs += res.requests;
        }
        results.get(n)!.push(res);
        round.set(n, res);
      }
      const rb = round.get(B)!;
      const rc = round.get(C)!;
      pairs.push({
        ratio: rc.requests / rc.elapsedMs / (rb.requests / rb.elapsedMs),
        dp99: percentile(rc.latenciesMs, 0.99) - percentile(rb.latenciesMs, 0.99),
      });
    }
  } finally {
    await bare.stop();
  }
  const admin = String(sidecar.ready.admin);
  const metrics = await fetchText(`http://${admin}/metrics`);
  const streamConnected = /originwatch_sidecar_stream_state\{state="connected"\} 1/.test(metrics);
  const buffered = /originwatch_sidecar_stream_buffered_batches (\d+)/.exec(metrics)?.[1];
  const counted = /originwatch_sidecar_requests_total\{origin="www\.example\.com",outcome="ok"\} (\d+)/.exec(metrics)?.[1];

  console.log(`bench:hop — ${connections} keep-alive connections, ${rounds} rounds × ${durationMs} ms per target (order alternating), small 200 responses, loopback`);
  console.log(`central: ${centralLabel}; sidecar stream connected=${streamConnected}, buffered batches=${buffered}, requests counted=${counted}`);
  console.log(`(b) and (c) run with NODE_OPTIONS=${JSON.stringify(nodeOptions)}`);
  console.log("target                        req/s      p50 ms   p99 ms   errors   hop CPU µs/req");
  const s = new Map<string, ReturnType<typeof summarize>>();
  for (const n of Object.keys(targets)) {
    const x = summarize(results.get(n)!);
    s.set(n, x);
    const c = cpu.get(n);
    const us = c ? ((c.ms * 1000) / c.reqs).toFixed(1) : "-";
    console.log(`${n.padEnd(28)} ${x.rps.toFixed(0).padStart(7)}   ${x.p50.toFixed(3).padStart(7)}  ${x.p99.toFixed(3).padStart(7)}   ${String(x.errors).padStart(6)}   ${us.padStart(8)}`);
  }
  const b = s.get(B)!;
  const c = s.get(C)!;
  const dp99 = c.p99 - b.p99;
  const cb = cpu.get(B)!;
  const cc = cpu.get(C)!;
  console.log(`(c)/(b) throughput: ${(c.rps / b.rps).toFixed(3)} overall, median of paired rounds ${median(pairs.map((p) => p.ratio)).toFixed(3)} (target >= 0.97)`);
  console.log(`p99 (c)-(b): ${dp99 >= 0 ? "+" : ""}${dp99.toFixed(3)} ms overall, median of paired rounds ${median(pairs.map((p) => p.dp99)).toFixed(3)} ms (target <= +0.3 ms)`);
  console.log(`hop CPU per request (c)/(b): ${((cc.ms / cc.reqs) / (cb.ms / cb.reqs)).toFixed(3)} (target <= 1.00) — the noise-free view on a shared machine`);
  console.log(`paired rounds (c)/(b): ${pairs.map((p) => p.ratio.toFixed(2)).join(" ")}`);
}

async function rssMode(sidecar: Proc) {
  const rate = flag("rate", 5000);
  const seconds = flag("rss-seconds", 60);
  const pid = sidecar.child.pid!;
  const paths = ["/s", "/s", "/s", "/s", "/s", "/s", "/m/x", "/404/x", "/l/x", "/503/x"];
  const samples: number[] = [];
  const sampler = setInterval(() => samples.push(rssMb(pid)), 1000);
  const start = rssMb(pid);
  const r = await runLoad({ address: sidecar.address, host: HOST, paths, connections: 64, durationMs: seconds * 1000, rate });
  clearInterval(sampler);
  const x = summarize([r]);
  console.log(`bench:hop:rss — ${seconds} s of mixed traffic (60% small, 10% 10 KiB, 10% 100 KiB, 10% 404, 10% 503) at a target of ${rate} req/s`);
  console.log(`achieved ${x.rps.toFixed(0)} req/s, p50 ${x.p50.toFixed(2)} ms, p99 ${x.p99.toFixed(2)} ms, errors ${x.errors}, statuses ${JSON.stringify(r.statuses)}`);
  console.log(`sidecar RSS (NODE_OPTIONS=${JSON.stringify(nodeOptions)}): start ${start.toFixed(1)} MB, max ${Math.max(...samples).toFixed(1)} MB, end ${samples.at(-1)?.toFixed(1)} MB (target <= 90 MB, 0 errors)`);
}

function fetchText(url: string): Promise<string> {
  return import("node:http").then(
    (http) =>
      new Promise((resolve, reject) => {
        http.get(url, (res) => {
          let t = "";
          res.on("data", (c: Buffer) => (t += c));
          res.on("end", () => resolve(t));
        }).on("error", reject);
      }),
  );
}

await main();
