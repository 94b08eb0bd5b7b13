/**
 * `npm run bench:startup`: what an idle originwatch process costs, compiled
 * (dist/, what the package ships) against the sources run by tsx, in one run.
 * For each of central and sidecar it measures, over interleaved rounds:
 *   - start-up: wall time from spawn (exec) to the "listening" log line;
 *   - idle RSS: VmRSS of the process after it has been listening and idle for
 *     a few seconds (the sidecar streaming to a live central, one origin).
 * It prints medians and the compiled/tsx ratio. Loopback only, port 0.
 * Usage: npm run bench:startup -- --rounds N (default 5) --idle-s N (default 3)
 * Needs a build (`npm run build`; `npm run bench` builds first).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { ROOT, startOriginwatch, type Proc } from "../test/proc.js";

const args = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ROUNDS = flag("rounds", 5);
const IDLE_S = flag("idle-s", 3);

type Variant = "compiled" | "tsx";
const VARIANTS: Variant[] = ["compiled", "tsx"];
/** ORIGINWATCH_FROM_SOURCE selects the variant in bin/originwatch.js; nothing else differs. */
const envOf = (v: Variant): NodeJS.ProcessEnv => ({ ORIGINWATCH_FROM_SOURCE: v === "tsx" ? "1" : "0" });

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

interface Sample {
  startMs: number;
  rssMb: number;
}

/** Starts one process, times spawn → "listening", idles, reads its RSS, stops it. */
async function measure(argv: string[], variant: Variant): Promise<Sample> {
  const t0 = performance.now();
  const p: Proc = await startOriginwatch(argv, { env: envOf(variant), timeoutMs: 60_000 });
  const startMs = performance.now() - t0;
  try {
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    return { startMs, rssMb: rssMb(p.child.pid!) };
  } finally {
    await p.stop();
  }
}

async function main() {
  if (!existsSync(join(ROOT, "dist", "cli.js"))) {
    process.stderr.write("dist/ is missing: run `npm run build` first\n");
    process.exit(1);
  }
  const dir = mkdtempSync(join(tmpdir(), "ow-bench-startup-"));
  // The sidecars' central: compiled, started once, outside the figures.
  const central = await startOriginwatch(["central", "--listen", "127.0.0.1:0", "--data", join(dir, "hub")], { env: envOf("compiled") });
  const samples: Record<string, Sample[]> = {};
  const add = (key: string, s: Sample) => (samples[key] ??= []).push(s);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which variant goes first, so neither always runs on a warmer machine.
      const order = round % 2 ? [...VARIANTS].reverse() : VARIANTS;
      for (const v of order) {
        add(`central ${v}`, await measure(["central", "--listen", "127.0.0.1:0", "--data", join(dir, `c-${v}-${round}`)], v));
        add(
          `sidecar ${v}`,
          await measure(
            [
              "sidecar",
              "--central", `http://${central.address}`,
              "--listen", "127.0.0.1:0",
              "--admin", "127.0.0.1:0",
              "--node-id", `bench-${v}-${round}`,
              "--isp", "bench-isp",
              "--region", "bench-region",
              "--origin", "www.example.com=http://127.0.0.1:9",
            ],
            v,
          ),
        );
      }
    }
  } finally {
    await central.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`bench:startup — ${ROUNDS} rounds per variant, interleaved; RSS read after ${IDLE_S} s idle; medians (min–max)`);
  const range = (xs: number[], d: number) => `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;
  for (const comp of ["central", "sidecar"]) {
    const c = samples[`${comp} compiled`]!;
    const t = samples[`${comp} tsx`]!;
    const cs = c.map((s) => s.startMs);
    const ts = t.map((s) => s.startMs);
    const cr = c.map((s) => s.rssMb);
    const tr = t.map((s) => s.rssMb);
    console.log(`${comp.padEnd(7)} start-up (exec → listening): compiled ${range(cs, 0)} ms, tsx ${range(ts, 0)} ms — ratio compiled/tsx ${(median(cs) / median(ts)).toFixed(2)}×`);
    console.log(`${comp.padEnd(7)} idle RSS:                    compiled ${range(cr, 1)} MB, tsx ${range(tr, 1)} MB — ratio compiled/tsx ${(median(cr) / median(tr)).toFixed(2)}×`);
  }
}

await main();
