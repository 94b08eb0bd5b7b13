/**
 * npm run scenarios — the issue-4 fault scenarios against real processes:
 * a central and 3 ISPs × 2 regions × 2 nodes of sidecars as `originwatch`
 * child processes, a controllable origin, a fault relay on every ISP path and
 * node path, steady traffic (10 req/s per node), and a table at the end.
 *
 *   npm run scenarios                 every scenario, real processes (~9 min)
 *   npm run scenarios -- --only blackholed,flapping
 *   npm run scenarios -- --sim        the same list in simulated time (seconds)
 */
import { formatRealTable, runReal, standardRealScenarios } from "./real-run.js";
import { startRealFleet } from "./real-fleet.js";
import { formatTable, runSim, standardSimScenarios } from "./sim-run.js";

const argv = process.argv.slice(2);
const onlyArg = argv.includes("--only") ? argv[argv.indexOf("--only") + 1] : "";
const only = onlyArg ? onlyArg.split(",").map((s) => s.trim().toLowerCase()) : [];
const pick = <T extends { name: string }>(l: T[]) => (only.length ? l.filter((s) => only.some((o) => s.name.toLowerCase().includes(o))) : l);

if (argv.includes("--sim")) {
  const rows = [];
  for (const s of pick(standardSimScenarios())) rows.push(await runSim(s));
  console.log(formatTable(rows));
  process.exit(0);
}

const scenarios = pick(standardRealScenarios());
console.log(`starting a central and 12 sidecar processes for ${scenarios.length} scenarios...`);
const fleet = await startRealFleet({ isps: ["isp-a", "isp-b", "isp-c"], regions: ["eu", "us"], perCell: 2, origins: scenarios.map((s) => s.origin) });
const rows = [];
try {
  for (const s of scenarios) {
    console.log(`- ${s.name}`);
    const r = await runReal(fleet, s, (l) => console.log(l));
    rows.push(r);
    console.log(`  ${r.pass ? "PASS" : `FAIL: ${r.why.join("; ")}`}`);
  }
} finally {
  await fleet.close();
}
console.log("\n" + formatRealTable(rows));
const failed = rows.filter((r) => !r.pass).length;
console.log(`\n${rows.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
