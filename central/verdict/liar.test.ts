/**
 * One liar against a real central (issue 10 item 5): fake sidecars on the real
 * ingest stream, one of them claiming what it likes. The verdict must not move.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { OriginState, QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { FakeSidecar } from "../../tools/scenarios/fake-sidecar.js";
import { eventually } from "../../tools/test/proc.js";
import { type Central, startCentral } from "../main.js";
import type { Counts } from "./counts.js";

const ORIGIN = "shop.example";
let dir = "";
let central: Central;
const sidecars: FakeSidecar[] = [];

test.before.each(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-liar-"));
  central = await startCentral({ listen: "127.0.0.1:0", data: dir, lookbackMs: 2000, evalIntervalMs: 200 }, pino({ level: "silent" }));
});

test.after.each(async () => {
  for (const s of sidecars.splice(0)) s.close();
  await central.close();
  await rm(dir, { recursive: true, force: true });
});

function start(nodeId: string, isp: string, region: string, traffic: Partial<Counts>): void {
  const s = new FakeSidecar({ address: central.address, nodeId, isp, region, origins: [ORIGIN], periodMs: 200, traffic: () => traffic });
  s.start();
  sidecars.push(s);
}

const client = () => createClient(QueryService, createGrpcTransport({ baseUrl: `http://${central.address}` }));

/** The state at every look over `ms` (GetOrigin every 100 ms). */
async function statesOver(ms: number): Promise<Set<string>> {
  const q = client();
  const seen = new Set<string>();
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const o = (await q.getOrigin({ origin: ORIGIN })).origin!;
    seen.add(OriginState[o.state] + (o.faults.length ? ` ${o.faults.map((f) => f.key).join(",")}` : ""));
    await new Promise((r) => setTimeout(r, 100));
  }
  return seen;
}

test("a 20% 5xx fleet stays DEGRADED while one node claims 2^40 OK (refused) or 100,000 OK per window (counted, weighs as one)", async () => {
  for (const isp of ["isp-a", "isp-b", "isp-c"]) for (const region of ["eu", "us"]) start(`${isp}-${region}`, isp, region, { ok: 8, serverError: 2 });
  const q = client();
  await eventually(async () => (await q.getOrigin({ origin: ORIGIN }).catch(() => undefined))?.origin?.state === OriginState.DEGRADED, 15_000);
  // 2^40 in a 200 ms window is over the plausible maximum (--max-requests-per-sec): refused, never counted.
  start("absurd", "isp-b", "eu", { ok: 2 ** 40 });
  await eventually(async () => (central.ingest.sessions.get("absurd")?.node?.rejectedBatches ?? 0) >= 2, 10_000);
  assert.is((await q.getOrigin({ origin: ORIGIN })).origin!.nodes.find((n) => n.key === "absurd")?.requests ?? 0n, 0n);
  // A plausible but huge claim is counted, and weighs no more than the median node.
  start("liar", "isp-a", "eu", { ok: 100_000 });
  await eventually(async () => ((await q.getOrigin({ origin: ORIGIN })).origin!.nodes.find((n) => n.key === "liar")?.requests ?? 0n) >= 200_000n, 10_000);
  const seen = await statesOver(3000);
  assert.equal([...seen], ["DEGRADED"], "the liar's claim is counted but weighs as one median node");
  const o = (await q.getOrigin({ origin: ORIGIN })).origin!;
  assert.ok(o.failureRatio > 0.15 && o.failureRatio < 0.2, `weighted failure ratio ${o.failureRatio}`);
});

test("a 2-ISP fleet at 100% 5xx stays DOWN while one node reports OK on one of the ISPs", async () => {
  for (const isp of ["isp-a", "isp-b"]) for (const region of ["eu", "us"]) start(`${isp}-${region}`, isp, region, { serverError: 5 });
  const q = client();
  await eventually(async () => (await q.getOrigin({ origin: ORIGIN }).catch(() => undefined))?.origin?.state === OriginState.DOWN, 15_000);
  start("liar", "isp-a", "eu", { ok: 1 }); // 10 OK over the 2 s lookback
  await eventually(async () => ((await q.getOrigin({ origin: ORIGIN })).origin!.nodes.find((n) => n.key === "liar")?.requests ?? 0n) >= 8n, 10_000);
  const seen = await statesOver(3000);
  assert.equal([...seen], ["DOWN"], "no 'failures localised to ISP' while the liar reports");
});

test.run();
