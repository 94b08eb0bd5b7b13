import { runSim, standardSimScenarios } from "./sim-run.js";
const sc = standardSimScenarios().find((s) => s.name.startsWith(process.argv[2]))!;
await runSim(sc, (l) => console.log(l));
