/**
 * Issue 11 item 1 (clock skew), against a real central process: a sidecar
 * whose clock is 10 minutes ahead (an injected clock; the system clock is never
 * touched) still has its totals counted exactly — it measures its skew from
 * the central's Welcome/BatchAck server times and sends windows on the
 * central's clock. Needs a central that sends `server_time_unix_ms` (issue 10).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { validateSidecarConfig } from "../../sidecar/config.js";
import { type Sidecar, startSidecar } from "../../sidecar/main.js";
import { startOrigin } from "../origin.js";
import { type Proc, eventually, startOriginwatch } from "../test/proc.js";
import { startTraffic } from "../test/traffic.js";

const HOST = "skew.origin";
const AHEAD = 10 * 60_000;

test("a sidecar whose clock is 10 minutes ahead still has its totals counted by a real central", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-skew-"));
  const origin = await startOrigin();
  let central: Proc | undefined;
  let sc: Sidecar | undefined;
  try {
    central = await startOriginwatch(["central", "--listen", "127.0.0.1:0", "--data", join(dir, "central")]);
    const query = createClient(QueryService, createGrpcTransport({ baseUrl: `http://${central.address}` }));
    const total = async () => {
      try {
        return Number((await query.getOrigin({ origin: HOST })).origin?.totalRequests ?? 0n);
      } catch {
        return 0;
      }
    };
    sc = await startSidecar(
      validateSidecarConfig({
        central: `http://${central.address}`, listen: "127.0.0.1:0",
        nodeId: "skew-1", isp: "isp-a", region: "eu-west", origins: [`${HOST}=${origin.url}`],
      }),
      { clock: () => Date.now() + AHEAD },
    );
    const traffic = startTraffic([{ address: sc.address, host: HOST }], 20);
    await new Promise((r) => setTimeout(r, 3000));
    await traffic.stop();
    assert.equal(traffic.failures, []);
    await eventually(async () => (await total()) === origin.requests, 20_000, 200).catch(async (e) => {
      throw new Error(`${(e as Error).message}: central ${await total()} vs origin ${origin.requests}; ${JSON.stringify(sc!.stream.status())}`);
    });
    assert.ok(Math.abs(sc.stream.skew.estimateMs - AHEAD) < 1000, `skew ${sc.stream.skew.estimateMs}`);
    assert.is(sc.stream.rejectedBatches, 0, "no batch refused for its window times");
  } finally {
    await sc?.shutdown();
    await central?.stop();
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
