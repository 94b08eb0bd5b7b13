/**
 * Issue 11 item 5: the hop and the confirmation probe present one TLS
 * identity per origin — the origin URL's host, or an explicit `servername` —
 * never the cache's Host header. A TLS origin whose certificate names only
 * `localhost`: both succeed with the right name and both fail with a wrong one.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { create } from "@bufbuild/protobuf";
import { Outcome } from "../../proto/gen/originwatch/v1/common_pb.js";
import { ProbeRequestSchema } from "../../proto/gen/originwatch/v1/ingest_pb.js";
import { startOrigin } from "../../tools/origin.js";
import { request } from "../../tools/test/http-request.js";
import { startHarness } from "../../tools/test/sidecar-harness.js";
import { makeTlsFixture } from "../../tools/test/tls-fixtures.js";
import { runProbe } from "./probe.js";

const NAME = "www.example.com";

test("hop and probe agree on a TLS origin: both use the origin URL's host (not the cache's Host) and both pass; a wrong explicit servername fails both", async () => {
  const fx = makeTlsFixture(["DNS:localhost"]);
  const o = await startOrigin({ tls: { key: fx.key, cert: fx.cert } });
  const url = `https://localhost:${o.port}`;
  const h = await startHarness({
    origins: [
      // preserveHost (the default): the cache's Host goes upstream as the HTTP Host, but not as the TLS name
      { name: NAME, url, caFile: fx.caFile },
      { name: "wrong.example.com", url, caFile: fx.caFile, servername: "not-localhost.example" },
    ],
  });
  const probe = (origin: string) =>
    runProbe(create(ProbeRequestSchema, { probeId: "p", origin, method: "GET", path: "/", count: 3, timeoutMs: 3000 }), h.sc.config.origins.find((x) => x.name === origin));
  try {
    const hop = await request(h.address, { headers: { host: NAME } });
    assert.is(hop.status, 200, `hop: ${hop.headers["x-originwatch-outcome"] ?? ""}`);
    assert.is(o.log[0].headers.host, NAME, "the HTTP Host is still the cache's");
    const p = await probe(NAME);
    assert.equal(p.attempts.map((a) => a.outcome), [Outcome.OK, Outcome.OK, Outcome.OK]);
    assert.ok(o.sniNames.length >= 2 && o.sniNames.every((n) => n === "localhost"), `SNI seen: ${o.sniNames.join(",")}`);

    const before = o.requests;
    const bad = await request(h.address, { headers: { host: "wrong.example.com" } });
    assert.is(bad.status, 502);
    assert.is(bad.headers["x-originwatch-outcome"], "tls");
    const pb = await probe("wrong.example.com");
    assert.equal(pb.attempts.map((a) => a.outcome), [Outcome.TLS, Outcome.TLS, Outcome.TLS]);
    assert.is(o.requests, before, "nothing is sent over a connection whose certificate does not match");
  } finally {
    await h.close();
    await o.close();
    fx.cleanup();
  }
});

test("an IP origin URL without a servername: no SNI, the certificate is checked against the IP (hop and probe alike)", async () => {
  const fx = makeTlsFixture(["IP:127.0.0.1"]);
  const o = await startOrigin({ tls: { key: fx.key, cert: fx.cert } });
  const h = await startHarness({ origins: [{ name: NAME, url: `https://127.0.0.1:${o.port}`, caFile: fx.caFile }] });
  try {
    const hop = await request(h.address, { headers: { host: NAME } });
    assert.is(hop.status, 200, `hop: ${hop.headers["x-originwatch-outcome"] ?? ""}`);
    const p = await runProbe(create(ProbeRequestSchema, { probeId: "p", origin: NAME, method: "HEAD", path: "/", count: 1, timeoutMs: 3000 }), h.sc.config.origins[0]);
    assert.equal(p.attempts.map((a) => a.outcome), [Outcome.OK]);
    assert.ok(o.sniNames.every((n) => n === ""), `SNI seen: ${o.sniNames.join(",")}`);
  } finally {
    await h.close();
    await o.close();
    fx.cleanup();
  }
});

test.run();
