import { runSim, standardSimScenarios, formatTable } from "./sim-run.js";
const rows = [];
for (const s of standardSimScenarios()) rows.push(await runSim(s));
console.log(formatTable(rows));
