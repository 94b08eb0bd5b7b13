import { test } from "uvu";
import * as assert from "uvu/assert";
import { validateSidecarConfig } from "./config.js";
import { SidecarError } from "./errors.js";

const base = { nodeId: "n1", isp: "isp-a", region: "eu", origins: ["www.example.com=http://127.0.0.1:8080"] };

test("fills defaults", () => {
  const c = validateSidecarConfig(base);
  assert.equal(c.central, ["http://127.0.0.1:7400"]);
  assert.equal(c.listen, { host: "127.0.0.1", port: 8081 });
  assert.is(c.origins[0].connectTimeoutMs, 3000);
  assert.is(c.origins[0].firstByteTimeoutMs, 30_000);
  assert.is(c.origins[0].stallMs, 2000);
  assert.is(c.origins[0].preserveHost, true);
  assert.equal(c.trustedPeers, ["loopback"]);
  assert.is(c.origins[0].bodyIdleTimeoutMs, 30_000);
  assert.is(c.origins[0].upgrade, false, "upgrades are refused unless an origin opts in");
  assert.is(c.origins[0].upgradeIdleTimeoutMs, 60_000);
  assert.is(c.origins[0].servername, undefined);
});

test("several centrals: a comma-separated flag or a list in the config file, each kept as written", () => {
  assert.equal(validateSidecarConfig({ ...base, central: "http://10.0.0.1:7400, http://[::1]:7400,http://centrals.example:7400" }).central, [
    "http://10.0.0.1:7400",
    "http://[::1]:7400",
    "http://centrals.example:7400",
  ]);
  assert.equal(validateSidecarConfig({ ...base, central: ["https://a.example:7400", "https://b.example:7400"] }).central, ["https://a.example:7400", "https://b.example:7400"]);
  assert.equal(validateSidecarConfig({ ...base, central: "HTTPS://a.example:7400", tlsCa: "ca.pem" }).central, ["HTTPS://a.example:7400"], "TLS files with an upper-case scheme");
});

test("per-origin upgrade, idle timeouts and TLS servername", () => {
  const c = validateSidecarConfig({
    ...base,
    bodyIdleTimeoutMs: 5000,
    origins: [{ name: "a.example.com", url: "https://10.0.0.5", servername: "Origin.Example.com", upgrade: true, upgradeIdleTimeoutMs: 1000, bodyIdleTimeoutMs: 200 }, "b.example.com=http://b"],
  });
  assert.is(c.origins[0].servername, "origin.example.com");
  assert.is(c.origins[0].upgrade, true);
  assert.is(c.origins[0].upgradeIdleTimeoutMs, 1000);
  assert.is(c.origins[0].bodyIdleTimeoutMs, 200);
  assert.is(c.origins[1].bodyIdleTimeoutMs, 5000);
  assert.is(c.origins[1].upgrade, false);
});

test("per-origin settings override the globals", () => {
  const c = validateSidecarConfig({
    ...base,
    connectTimeoutMs: 1000,
    origins: [{ name: "A.example.com", url: "https://a:8443", connectTimeoutMs: 50, preserveHost: false }, "b.example.com=http://b"],
  });
  assert.is(c.origins[0].name, "a.example.com");
  assert.is(c.origins[0].connectTimeoutMs, 50);
  assert.is(c.origins[0].preserveHost, false);
  assert.is(c.origins[1].connectTimeoutMs, 1000);
});

const bad: Array<[string, Record<string, unknown>, RegExp]> = [
  ["missing node id", { ...base, nodeId: undefined }, /^nodeId /],
  ["no origins", { ...base, origins: [] }, /^origins /],
  ["origin without url", { ...base, origins: ["www.example.com"] }, /^origins\[0\]\.url /],
  ["origin with ftp url", { ...base, origins: ["a=ftp://x"] }, /^origins\[0\]\.url /],
  ["duplicate origin", { ...base, origins: ["a=http://x", "A=http://y"] }, /^origins\[1\]\.name .*duplicates/],
  ["bad origin name", { ...base, origins: ["a b=http://x"] }, /^origins\[0\]\.name /],
  ["bad listen", { ...base, listen: "nope" }, /^listen /],
  ["port out of range", { ...base, listen: "127.0.0.1:70000" }, /^listen /],
  ["negative timeout", { ...base, connectTimeoutMs: -1 }, /^connectTimeoutMs /],
  ["bad per-origin timeout", { ...base, origins: [{ name: "a", url: "http://x", firstByteTimeoutMs: "soon" }] }, /^origins\[0\]\.firstByteTimeoutMs /],
  ["bad central", { ...base, central: "grpc://x" }, /^central /],
  ["a bad entry in a central list", { ...base, central: "http://a:1,ftp://b:2" }, /^central \(--central\) must use http or https, got "ftp:\/\/b:2" \(entry 2\)/],
  ["a central listed twice", { ...base, central: "http://a:1, http://A:1" }, /^central .*twice/],
  ["http and https centrals mixed", { ...base, central: ["http://a:1", "https://b:2"] }, /^central .*mixes/],
  ["a central URL with a path", { ...base, central: "http://a:1/ingest" }, /^central .*no path/],
  ["an empty central list", { ...base, central: " , " }, /^central .*at least one/],
  ["a central list that is not strings", { ...base, central: [7] }, /^central /],
  ["bad trusted peer", { ...base, trustedPeers: ["everyone"] }, /^trustedPeers\[0\] /],
  ["servername on an http origin", { ...base, origins: [{ name: "a", url: "http://x", servername: "x.example" }] }, /^origins\[0\]\.servername .*https/],
  ["an IP as servername", { ...base, origins: [{ name: "a", url: "https://x", servername: "10.0.0.1" }] }, /^origins\[0\]\.servername /],
  ["upgrade not a boolean", { ...base, origins: [{ name: "a", url: "http://x", upgrade: "yes" }] }, /^origins\[0\]\.upgrade /],
  ["zero body idle timeout", { ...base, bodyIdleTimeoutMs: 0 }, /^bodyIdleTimeoutMs /],
];
for (const [name, input, re] of bad) {
  test(`rejects ${name}, naming the field`, () => {
    try {
      validateSidecarConfig(input);
      assert.unreachable("should throw");
    } catch (err) {
      assert.instance(err, SidecarError);
      assert.is((err as SidecarError).code, "CONFIG_INVALID");
      assert.match((err as Error).message, re);
    }
  });
}

test.run();
