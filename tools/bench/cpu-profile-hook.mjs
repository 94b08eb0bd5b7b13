// Preloaded into a process (NODE_OPTIONS="--import <this file>") to write a V8 CPU profile of it into
// $ORIGINWATCH_CPU_PROF_DIR/<pid>.cpuprofile when it exits (Node 20 refuses --cpu-prof in NODE_OPTIONS).
// SIGUSR2 restarts the profile (drops what was sampled so far): send it when the interval to study begins.
// The inspector session is on the same thread, so Profiler.stop answers synchronously inside "exit".
// Used by tools/bench/cluster-fleet.ts (ORIGINWATCH_BENCH_CPU_PROF); open the files in Chrome DevTools or
// summarise them with tools/bench/cpu-profile-top.ts.
import { mkdirSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";

const dir = process.env.ORIGINWATCH_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 1000 });
  session.post("Profiler.start");
  process.on("SIGUSR2", () => {
    session.post("Profiler.stop");
    session.post("Profiler.start");
  });
  process.once("exit", () => {
    session.post("Profiler.stop", (err, res) => {
      if (err) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
