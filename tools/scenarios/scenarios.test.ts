import { test } from "uvu";
import * as assert from "uvu/assert";
import { requireNats } from "../nats/require-nats.js";
import type { ClusterSpec } from "./real-centrals.js";
import { startRealFleet } from "./real-fleet.js";
import { runReal, standardRealScenarios } from "./real-run.js";

/**
 * Rows of the standard list, shortened, with a generous detection bound: speed is measured by
 * `npm run scenarios`, not here. What must hold is the verdict, the exact fault set at every poll
 * once right, the incidents and the webhooks.
 */
function rows(names: string[]) {
  const all = standardRealScenarios();
  return names.map((n) => ({ ...all.find((s) => s.name === n)!, durationS: 8, limitS: 5, recoverLimitS: 15 }));
}

async function runRows(names: string[], cluster?: ClusterSpec): Promise<void> {
  const picked = rows(names);
  const began = Date.now();
  const fleet = await startRealFleet({ isps: ["isp-a", "isp-b", "isp-c"], regions: ["eu", "us"], perCell: 1, origins: picked.map((s) => s.origin), cluster });
  try {
    for (const sc of picked) {
      const r = await runReal(fleet, sc);
      assert.ok(r.pass, `${sc.name}: ${r.why.join("; ")} ${JSON.stringify(r)}`);
      assert.is(r.centrals, cluster ? 3 : 1, "every central was polled");
    }
  } finally {
    await fleet.close();
  }
  console.log(`${cluster ? "cluster" : "embedded"}: ${picked.length} rows in ${((Date.now() - began) / 1000).toFixed(0)} s`);
}

// The short form of `npm run scenarios`: real central and sidecar processes
// (3 ISPs × 2 regions × 1 node), one origin fault and one network fault.
test("real processes: origin refusing is DOWN with one incident; one ISP's path refusing is an ISP fault with no origin alarm", async () => {
  await runRows(["origin refuses connections", "one ISP's path refusing"]);
});

// The short form of `npm run scenarios -- --cluster`: 3 nats-servers, 3 central replicas, the 6
// sidecars spread over them; every replica is polled at every step and must show exactly the
// expected state, and the cluster sends each alert once.
if (requireNats("scenarios in cluster mode")) {
  test("cluster (3 nats-servers, 3 replicas): origin refusing is DOWN on every replica, one incident, open + close webhook once across the cluster; one node broken is that node's fault on every replica, no origin alarm", async () => {
    await runRows(["origin refuses connections", "one node broken"], { replicas: 3, partitions: 4 });
  });
}

test.run();
