import { test } from "uvu";
import * as assert from "uvu/assert";
import { startRealFleet } from "./real-fleet.js";
import { runReal, standardRealScenarios } from "./real-run.js";

// The short form of `npm run scenarios`: real central and sidecar processes
// (3 ISPs × 2 regions × 1 node), one origin fault and one network fault.
test("real processes: origin refusing is DOWN with one incident; one ISP's path refusing is an ISP fault with no origin alarm", async () => {
  const all = standardRealScenarios();
  const picked = [all.find((s) => s.name === "origin refuses connections")!, all.find((s) => s.name === "one ISP's path refusing")!].map((s) => ({ ...s, durationS: 8, limitS: 5 })); // a generous bound: speed is measured by `npm run scenarios`, not here
  const fleet = await startRealFleet({ isps: ["isp-a", "isp-b", "isp-c"], regions: ["eu", "us"], perCell: 1, origins: picked.map((s) => s.origin) });
  try {
    for (const sc of picked) {
      const r = await runReal(fleet, sc);
      assert.ok(r.pass, `${sc.name}: ${r.why.join("; ")} ${JSON.stringify(r)}`);
    }
  } finally {
    await fleet.close();
  }
});

test.run();
