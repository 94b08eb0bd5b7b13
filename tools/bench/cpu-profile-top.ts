/**
 * Summarises V8 CPU profiles (`.cpuprofile`, as tools/bench/cpu-profile-hook.mjs writes them): self time
 * per source file and per function, and total (inclusive) time of the functions whose name matches a
 * filter — where a process's CPU went, to compare two runs (W = 1 against W = 3 in bench:cluster).
 *
 *   node --import tsx tools/bench/cpu-profile-top.ts <file.cpuprofile>... [--top 25] [--match regex]
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? undefined : argv.splice(i, 2)[1];
};
const top = Number(opt("top") ?? 25);
const match = opt("match");
const short = (url: string) => url.replace(/^file:\/\/.*?\/(node_modules|central|sidecar|proto|tools)\//, "$1/").replace(/^node:/, "node:");

for (const file of argv) {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  const files = new Map<string, number>();
  const fns = new Map<string, number>();
  const incl = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const f = n.callFrame;
    add(files, short(f.url) || `(${f.functionName})`, us);
    add(fns, `${f.functionName || "(anon)"} ${short(f.url)}:${f.lineNumber + 1}`, us);
    if (match) {
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const c = byId.get(cur)!.callFrame;
        const k = `${c.functionName || "(anon)"} ${short(c.url)}:${c.lineNumber + 1}`;
        if (new RegExp(match).test(k) && !seen.has(k)) {
          seen.add(k);
          add(incl, k, us);
        }
      }
    }
  }
  const show = (title: string, m: Map<string, number>) => {
    console.log(`  ${title}`);
    for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${(us / 1000).toFixed(0).padStart(7)} ms ${((us / total) * 100).toFixed(1).padStart(5)} %  ${k}`);
  };
  console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled over ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s`);
  show("self time by file", files);
  show("self time by function", fns);
  if (match) show(`total time of functions matching /${match}/`, incl);
}
