import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually } from "../test/proc.js";
import { startFleet } from "./fleet.js";

for (const tls of [false, true]) {
  test(`a fleet${tls ? " with mTLS" : ""} carries traffic to the central, and an ISP fault shows on that ISP's paths only`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "ow-fleet-"));
    const fleet = await startFleet({ dataDir: join(dir, "data"), isps: ["isp-a", "isp-b"], regions: ["eu"], perCell: 1, ratePerNode: 20, tls });
    try {
      assert.is(fleet.centralUrl.startsWith(tls ? "https://" : "http://"), true);
      fleet.startTraffic();
      await eventually(() => fleet.nodes.every((n) => fleet.central.ingest.isConnected(n.nodeId)), 10_000);
      await eventually(() => Number(fleet.central.query.totals.get("shop.example")?.requests ?? 0) >= 20, 10_000);
      await fleet.setIsp("isp-a", { kind: "refuse" });
      const before = fleet.nodes.map((n) => ({ ...n.stats }));
      await new Promise((r) => setTimeout(r, 1000));
      const [a, b] = fleet.nodes;
      assert.ok(a.stats.failed > before[0].failed, "isp-a requests fail");
      assert.is(b.stats.failed, before[1].failed, "isp-b requests do not");
      await fleet.heal();
    } finally {
      await fleet.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test.run();
