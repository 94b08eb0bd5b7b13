/**
 * A pushed config really changes what the sidecar does: window length, stall
 * threshold per origin, exemplar sampling (in-process central and sidecar).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { type Central, startCentral } from "../../central/main.js";
import { ConfigService } from "../../proto/gen/originwatch/v1/config_pb.js";
import { type Origin, startOrigin } from "../../tools/origin.js";
import { request } from "../../tools/test/http-request.js";
import { type Harness, startHarness } from "../../tools/test/sidecar-harness.js";
import { eventually } from "../../tools/test/proc.js";

let dir = "";
let central: Central;
let origin: Origin;
let h: Harness;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-apply-"));
  central = await startCentral({ listen: "127.0.0.1:0", data: join(dir, "central") }, pino({ level: "silent" }));
  origin = await startOrigin();
  h = await startHarness({
    central: `http://${central.address}`,
    stateDir: join(dir, "state"),
    origins: [`www.example=${origin.url}`, `slow.example=${origin.url}`],
    firstByteTimeoutMs: 10_000,
  });
  await eventually(() => h.sc.stream.state === "connected", 15_000);
});

test.after(async () => {
  await h?.close();
  await central?.close();
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

test("window, stall and sampling from a pushed config are applied; the ACK is recorded", async () => {
  const client = createClient(ConfigService, createGrpcTransport({ baseUrl: `http://${central.address}` }));
  const windowsBefore = h.windows().length;
  await client.setConfig({
    config: { windowMs: 500, stallMs: 700, origins: { "slow.example": { stallMs: 300 } }, sampling: { successRate: 1, errorRate: 1 } },
    expectedVersion: 0n,
  });
  await eventually(() => h.sc.directives.version === 1n, 15_000);
  assert.is(h.sc.recorder.windowMs, 500);
  assert.is(h.sc.config.origins.find((o) => o.name === "www.example")!.stallMs, 700);
  assert.is(h.sc.config.origins.find((o) => o.name === "slow.example")!.stallMs, 300);
  await eventually(() => central.query.nodes.get("edge-test")?.appliedConfigVersion === "1", 15_000);

  assert.is((await request(h.address, { path: "/p?x=1", headers: { host: "www.example" } })).status, 200);
  await eventually(() => h.windows().slice(windowsBefore).some((w) => w.lengthMs === 500 && w.origin === "www.example"), 10_000);
  const ex = await eventually(() => central.query.exemplars?.latest("www.example", 10).find((e) => e.path === "/p"), 10_000);
  assert.is(ex!.nodeId, "edge-test");

  // A later config with zeros falls back to the local flags.
  await client.setConfig({ config: {}, expectedVersion: 1n });
  await eventually(() => h.sc.directives.version === 2n, 15_000);
  assert.is(h.sc.recorder.windowMs, 1000);
  assert.is(h.sc.config.origins.find((o) => o.name === "slow.example")!.stallMs, 2000);
});

test.run();
