/**
 * Issue 11 item 1, the incident case, against a real central process: error
 * exemplars sampled at 1.0 (a valid pushed config) and 2,048-character client
 * paths during 900+ failing requests. Before, this made a 1.7 MB batch that
 * the central refused with RESOURCE_EXHAUSTED forever while the origin's totals
 * froze. Now exemplar fields are capped at recording and batches are split
 * under the central's limit: no batch is over it, and every request is counted.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import http from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigService } from "../../proto/gen/originwatch/v1/config_pb.js";
import { QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { validateSidecarConfig } from "../../sidecar/config.js";
import { type Sidecar, startSidecar } from "../../sidecar/main.js";
import { startOrigin } from "../origin.js";
import { request } from "../test/http-request.js";
import { type Proc, eventually, startOriginwatch } from "../test/proc.js";

const HOST = "incident.origin";
const FAILING = 950;

async function burst(address: string, n: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const statuses: number[] = [];
  try {
    for (let i = 0; i < n; i += 50) {
      const batch = Array.from({ length: Math.min(50, n - i) }, (_, k) =>
        request(address, { path: `/${String(i + k).padStart(6, "0")}${"x".repeat(2041)}?q=${i + k}`, headers: { host: HOST }, agent }).then((r) => r.status),
      );
      statuses.push(...(await Promise.all(batch)));
    }
  } finally {
    agent.destroy();
  }
  return statuses;
}

async function run(centralArgs: string[]): Promise<{ sc: Sidecar; central: Proc; total: () => Promise<number>; originRequests: () => number; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "ow-limits-"));
  const origin = await startOrigin();
  await origin.setMode({ kind: "status", status: 500 });
  const central = await startOriginwatch(["central", "--listen", "127.0.0.1:0", "--data", join(dir, "central"), ...centralArgs]);
  const transport = createGrpcTransport({ baseUrl: `http://${central.address}` });
  const query = createClient(QueryService, transport);
  const sc = await startSidecar(
    validateSidecarConfig({
      central: `http://${central.address}`, listen: "127.0.0.1:0", admin: "127.0.0.1:0",
      nodeId: "incident-1", isp: "isp-a", region: "eu-west", origins: [`${HOST}=${origin.url}`],
    }),
  );
  await eventually(() => sc.stream.state === "connected", 20_000);
  await createClient(ConfigService, transport).setConfig({ config: { sampling: { successRate: 1, errorRate: 1 } }, expectedVersion: 0n });
  await eventually(() => sc.directives.version === 1n, 20_000);
  return {
    sc,
    central,
    total: async () => {
      try {
        return Number((await query.getOrigin({ origin: HOST })).origin?.totalRequests ?? 0n);
      } catch {
        return 0;
      }
    },
    originRequests: () => origin.requests,
    done: async () => {
      await sc.shutdown();
      await central.stop();
      await origin.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test(`${FAILING} failing requests with 2,048-character paths, error exemplars at 1.0: the stream never ends, every request counted`, async () => {
  const r = await run([]);
  try {
    const statuses = await burst(r.sc.address, FAILING);
    assert.is(statuses.filter((s) => s === 500).length, FAILING);
    await eventually(async () => (await r.total()) === r.originRequests(), 20_000, 200).catch(async (e) => {
      throw new Error(`${(e as Error).message}: central ${await r.total()} vs origin ${r.originRequests()}; ${JSON.stringify(r.sc.stream.status())}`);
    });
    assert.is(r.sc.stream.connects, 1, "no batch was refused as too large (the stream never ended)");
    assert.ok(r.sc.stream.largestSentBytes > 100_000 && r.sc.stream.largestSentBytes <= 1 << 20, `largest batch ${r.sc.stream.largestSentBytes} bytes`);
    assert.is(r.sc.stream.rejectedBatches, 0);
    const metrics = (await request(r.sc.adminAddress!, { path: "/metrics" })).body.toString();
    assert.match(metrics, /^originwatch_sidecar_stream_max_message_bytes 1048576$/m);
  } finally {
    await r.done();
  }
});

test("the same against a central with a 64 KiB message limit it does not announce: the limit is learned from RESOURCE_EXHAUSTED, batches split, every request counted", async () => {
  const r = await run(["--max-message-bytes", "65536"]);
  try {
    await burst(r.sc.address, FAILING);
    const t0 = Date.now();
    await eventually(async () => (await r.total()) === r.originRequests(), 20_000, 200).catch(async (e) => {
      throw new Error(`${(e as Error).message}: central ${await r.total()} vs origin ${r.originRequests()}; ${JSON.stringify(r.sc.stream.status())}`);
    });
    assert.ok(Date.now() - t0 < 15_000);
    assert.ok(r.sc.stream.limits.maxMessageBytes <= 65536, `limit in force ${r.sc.stream.limits.maxMessageBytes}`);
    assert.ok(r.sc.stream.splitBatches > 0);
    assert.is(r.sc.stream.rejectedBatches, 0, "nothing had to be dropped");
    assert.ok(r.sc.stream.connects <= 3, `connects ${r.sc.stream.connects}: the too-big bytes were not replayed`);
  } finally {
    await r.done();
  }
});

test.run();
