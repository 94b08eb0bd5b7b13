/**
 * Issue 11 acceptance, item 1, against a real central process: after a poison
 * batch (one the central refuses for good — a window for an origin this
 * sidecar never declared), the origin's totals keep moving within 5 s and the
 * dropped batch is counted. The sidecar is in-process (real listeners, real
 * grpc-js stream) so the test can hand its stream the poison batch.
 *
 * With a central that answers BatchReject (issue 10's central) the batch is
 * dropped at once; an older central ends the stream with INVALID_ARGUMENT and
 * the sidecar drops the head batch after it ends two streams — both within 5 s.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WindowSummarySchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { QueryService } from "../../proto/gen/originwatch/v1/query_pb.js";
import { validateSidecarConfig } from "../../sidecar/config.js";
import { type Sidecar, startSidecar } from "../../sidecar/main.js";
import { startOrigin } from "../origin.js";
import { request } from "../test/http-request.js";
import { type Proc, eventually, startOriginwatch } from "../test/proc.js";
import { startTraffic } from "../test/traffic.js";

const HOST = "poison.origin";

test("after a poison batch the origin's totals keep moving within 5 s and the dropped batch is counted", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-poison-"));
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
        central: `http://${central.address}`, listen: "127.0.0.1:0", admin: "127.0.0.1:0",
        nodeId: "poison-1", isp: "isp-a", region: "eu-west", origins: [`${HOST}=${origin.url}`],
      }),
    );
    const traffic = startTraffic([{ address: sc.address, host: HOST }], 20);
    await eventually(async () => (await total()) > 0, 20_000);

    // The poison: a window for an origin the Hello never declared.
    const poisonSeq = sc.stream.seq;
    sc.stream.send([create(WindowSummarySchema, { origin: "undeclared.example", startUnixMs: BigInt(Date.now() - 1000), lengthMs: 1000, counts: { ok: 1n } })]);
    const before = await total();
    const t0 = Date.now();
    await eventually(async () => sc!.stream.ackedSeq > poisonSeq && (await total()) > before, 5000, 50).catch(async (e) => {
      throw new Error(`${(e as Error).message}: totals ${await total()} (were ${before}), acked ${sc!.stream.ackedSeq} (poison ${poisonSeq}), ${JSON.stringify(sc!.stream.status())}`);
    });
    const movedAfterMs = Date.now() - t0;
    assert.ok(movedAfterMs <= 5000, `moved after ${movedAfterMs} ms`);
    assert.is(sc.stream.rejectedBatches, 1, "the poison batch was dropped, counted once");
    const metrics = (await request(sc.adminAddress!, { path: "/metrics" })).body.toString();
    assert.match(metrics, /^originwatch_sidecar_stream_rejected_batches_total\{code="[A-Z_]+"\} 1$/m);

    await traffic.stop();
    assert.equal(traffic.failures, [], "the proxied requests never noticed");
    // Everything but the poison (which carried no real request) is counted exactly.
    await eventually(async () => (await total()) === origin.requests, 20_000, 200).catch(async (e) => {
      throw new Error(`${(e as Error).message}: central ${await total()} vs origin ${origin.requests}`);
    });
    assert.ok(sc.stream.connects <= 4, `connects ${sc.stream.connects}`);
  } finally {
    await sc?.shutdown();
    await central?.stop();
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
