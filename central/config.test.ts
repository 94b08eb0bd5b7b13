/**
 * The central's options (issue 12): one table of defaults (CENTRAL_DEFAULTS,
 * the verdict defaults from proto/config-validate.ts CONFIG_DEFAULTS) and one
 * validator, validateCentralConfig; every bad value is refused naming the
 * field. The HOST:PORT rules are the shared parser's (proto/host-port.ts).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CONFIG_DEFAULTS } from "../proto/config-validate.js";
import { parseHostPort as parseAddress } from "../proto/host-port.js";
import { CENTRAL_DEFAULTS, type CentralConfig, parseHostPort, validateCentralConfig } from "./config.js";
import { DEFAULT_SETTINGS } from "./verdict/settings.js";

test("no options: the defaults, and the lookback is the one of the fleet config defaults", () => {
  assert.equal(validateCentralConfig({}), CENTRAL_DEFAULTS);
  assert.is(CENTRAL_DEFAULTS.lookbackMs, CONFIG_DEFAULTS.lookbackMs);
  assert.is(DEFAULT_SETTINGS.lookbackMs, CONFIG_DEFAULTS.lookbackMs);
  assert.is(DEFAULT_SETTINGS.windowMs, CONFIG_DEFAULTS.windowMs);
  assert.is(DEFAULT_SETTINGS.thresholds.failRatio, CONFIG_DEFAULTS.failRatio);
});

test("each option given reaches its field", () => {
  const given: Partial<CentralConfig> = { listen: "[::1]:0", data: "/tmp/x", lookbackMs: 7000, windowRetentionMs: 20_000, maxRequestsPerSec: 5, webhook: "https://h.example/x", originIdleMs: 0 };
  const c = validateCentralConfig(given);
  for (const [k, v] of Object.entries(given)) assert.equal(c[k as keyof CentralConfig], v, k);
});

const BAD: Array<[Partial<CentralConfig>, RegExp]> = [
  [{ listen: "7400" }, /^listen must be HOST:PORT/],
  [{ listen: "h:70000" }, /^listen port must be 0\.\.65535/],
  [{ data: "" }, /^data must be a directory path/],
  [{ tlsCert: "c.pem" }, /tlsCert, tlsKey and tlsCa must be given together/],
  [{ lookbackMs: 0 }, /^lookbackMs must be a positive integer/],
  [{ maxMessageBytes: 1.5 }, /^maxMessageBytes must be a positive integer/],
  [{ maxRequestsPerSec: -1 }, /^maxRequestsPerSec must be a positive integer/],
  [{ originIdleMs: -1 }, /^originIdleMs must be a non-negative integer/],
  [{ maxOriginsPerNode: 20, maxOrigins: 10 }, /^maxOriginsPerNode \(20\) must be at most maxOrigins \(10\)/],
  [{ windowRetentionMs: 1000, lookbackMs: 5000 }, /^windowRetentionMs \(1000\) must be at least lookbackMs/],
  [{ webhook: "ftp://x" }, /^webhook must be an absolute http\(s\) URL/],
  [{ headersTimeoutMs: 90_000 }, /^headersTimeoutMs \(90000\) must be at most requestTimeoutMs/],
  [{ allowedHosts: ["a b"] }, /^allowedHosts\[0\] must be a host name/],
];

test("bad options are refused naming the field (table)", () => {
  for (const [partial, reason] of BAD) {
    assert.throws(() => validateCentralConfig(partial), (e: Error) => reason.test(e.message), JSON.stringify(partial));
  }
});

test("one HOST:PORT parser: a listen address may leave the host out, a sidecar's may not", () => {
  assert.equal(parseHostPort("listen", ":7400"), { host: "0.0.0.0", port: 7400 });
  assert.equal(parseHostPort("listen", "[::1]:0"), { host: "::1", port: 0 });
  assert.equal(parseAddress(":7400"), { error: "needs a host" });
  assert.equal(parseAddress("h.example:1"), { host: "h.example", port: 1 });
  assert.equal(parseAddress(42), { error: "must be HOST:PORT" });
});

test.run();
