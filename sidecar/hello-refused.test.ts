/**
 * A central that refuses this sidecar's Hello (labels it does not accept, a
 * wrong identity) is a configuration error on the sidecar: proxying goes on
 * untouched, reporting pauses, the reason is on /status and /metrics, and the
 * Hello is retried only at the maximum backoff.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { validateSidecarConfig } from "./config.js";
import { type Sidecar, startSidecar } from "./main.js";
import { startOrigin } from "../tools/origin.js";
import { startFakeCentral } from "../tools/test/fake-central.js";
import { request } from "../tools/test/http-request.js";
import { eventually } from "../tools/test/proc.js";

const HOST = "refused.origin";

test("Hello refused with INVALID_ARGUMENT: requests still proxied, reason on /status, config_error gauge 1, no reconnect storm", async () => {
  const fc = await startFakeCentral({ refuseHello: { code: grpc.status.INVALID_ARGUMENT, details: "hello.node.region must match ^[A-Za-z0-9]... [CENTRAL_BAD_MESSAGE]" } });
  const origin = await startOrigin();
  let sc: Sidecar | undefined;
  try {
    sc = await startSidecar(
      validateSidecarConfig({ central: fc.url, listen: "127.0.0.1:0", admin: "127.0.0.1:0", nodeId: "refused-1", isp: "isp-a", region: "eu", origins: [`${HOST}=${origin.url}`] }),
    );
    await eventually(() => sc!.stream.configError !== undefined);
    for (let i = 0; i < 20; i++) assert.is((await request(sc.address, { path: `/r/${i}`, headers: { host: HOST } })).status, 200);
    assert.is(origin.requests, 20);
    const status = JSON.parse((await request(sc.adminAddress!, { path: "/status" })).body.toString());
    assert.match(status.stream.configError, /hello\.node\.region/);
    assert.is(status.stream.lastEnd.kind, "config_error");
    const metrics = (await request(sc.adminAddress!, { path: "/metrics" })).body.toString();
    assert.match(metrics, /^originwatch_sidecar_stream_config_error 1$/m);
    assert.is(fc.hellos.length, 1, "the default maximum backoff (30 s) keeps the next Hello far away");
  } finally {
    await sc?.shutdown();
    await origin.close();
    fc.close();
  }
});

test.run();
