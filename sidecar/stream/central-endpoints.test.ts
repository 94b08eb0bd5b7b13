import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseCentrals, resolveCentrals } from "./central-endpoints.js";
import { startDnsStub } from "../../tools/test/dns-stub.js";
import { dnsServerResolve } from "./central-endpoints.js";

test("a list of URLs, IP literals need no lookup, a name stands for each of its addresses", async () => {
  const centrals = parseCentrals("http://10.0.0.1:7400,http://[::1]:7401, http://replicas.test:7402");
  assert.equal(centrals.map((c) => [c.host, c.port, c.tls]), [["10.0.0.1", 7400, false], ["::1", 7401, false], ["replicas.test", 7402, false]]);
  const asked: string[] = [];
  const eps = await resolveCentrals(centrals, async (h) => (asked.push(h), ["127.0.0.2", "127.0.0.3", "127.0.0.2"]));
  assert.equal(asked, ["replicas.test"]);
  assert.equal(eps.map((e) => e.key), [
    "http://10.0.0.1:7400@10.0.0.1",
    "http://[::1]:7401@::1",
    "http://replicas.test:7402@127.0.0.2",
    "http://replicas.test:7402@127.0.0.3",
  ]);
});

test("a name that stops resolving keeps its last addresses; one that never resolved has none", async () => {
  const centrals = parseCentrals(["https://replicas.test:7400"]);
  const first = await resolveCentrals(centrals, async () => ["127.0.0.2"]);
  assert.equal(await resolveCentrals(centrals, async () => { throw new Error("SERVFAIL"); }, first), first);
  assert.equal(await resolveCentrals(centrals, async () => []), []);
});

test("a DNS server with several A records for one name gives every address", async () => {
  const dns = await startDnsStub({ "replicas.test": ["127.0.0.1", "127.0.0.2", "127.0.0.3"] });
  try {
    const resolve = dnsServerResolve({ host: "127.0.0.1", port: dns.port });
    assert.equal((await resolve("replicas.test")).sort(), ["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    assert.equal(await resolve("nope.test"), []);
  } finally {
    await dns.close();
  }
});

test.run();
