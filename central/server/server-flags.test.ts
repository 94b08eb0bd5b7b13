/**
 * The exposure and connection-limit flags: parsed by commander, mapped to
 * config fields, defaults filled by validateCentralConfig (one source), bad
 * values refused naming the field (table).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Command } from "commander";
import { CENTRAL_DEFAULTS, validateCentralConfig } from "../config.js";
import { registerServerFlags, serverFlagsToConfig } from "./server-flags.js";

const parse = (argv: string[]) => {
  const cmd = registerServerFlags(new Command("central").exitOverride());
  cmd.parse(argv, { from: "user" });
  return validateCentralConfig(serverFlagsToConfig(cmd.opts()));
};

test("absent flags leave the defaults of CENTRAL_DEFAULTS", () => {
  const c = parse([]);
  for (const f of ["sniffTimeoutMs", "headersTimeoutMs", "requestTimeoutMs", "idleTimeoutMs", "keepaliveMs", "keepaliveTimeoutMs", "maxConnections", "maxConcurrentStreams", "maxHealthWatches", "maxReflectionStreams"] as const) {
    assert.is(c[f], CENTRAL_DEFAULTS[f], f);
  }
  assert.is(c.insecure, false);
  assert.equal(c.allowedHosts, []);
});

test("each flag reaches its field", () => {
  const c = parse([
    "--insecure", "--allowed-hosts", "Central.Lab.Internal, 10.0.0.5,[fd00::1]",
    "--sniff-timeout", "1", "--headers-timeout", "2", "--request-timeout", "3", "--idle-timeout", "4", "--keepalive", "5",
    "--keepalive-timeout", "6", "--max-connections", "7", "--max-concurrent-streams", "8", "--max-health-watches", "9", "--max-reflection-streams", "10",
  ]);
  assert.is(c.insecure, true);
  assert.equal(c.allowedHosts, ["central.lab.internal", "10.0.0.5", "fd00::1"]);
  assert.equal(
    [c.sniffTimeoutMs, c.headersTimeoutMs, c.requestTimeoutMs, c.idleTimeoutMs, c.keepaliveMs, c.keepaliveTimeoutMs, c.maxConnections, c.maxConcurrentStreams, c.maxHealthWatches, c.maxReflectionStreams],
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  );
});

test("bad values are refused naming the field (table)", () => {
  const rows: Array<[string[], RegExp]> = [
    [["--sniff-timeout", "0"], /^sniffTimeoutMs must be a positive integer/],
    [["--idle-timeout", "abc"], /^idleTimeoutMs must be a positive integer/],
    [["--max-connections", "1.5"], /^maxConnections must be a positive integer/],
    [["--max-concurrent-streams", "4294967295"], /^maxConcurrentStreams must be below 2\^31/],
    [["--headers-timeout", "5000", "--request-timeout", "1000"], /^headersTimeoutMs \(5000\) must be at most requestTimeoutMs/],
    [["--allowed-hosts", "evil.example:80/x"], /^allowedHosts\[0\] must be a host name/],
  ];
  for (const [argv, want] of rows) {
    try {
      parse(argv);
      assert.unreachable(argv.join(" "));
    } catch (err) {
      assert.is((err as { code?: string }).code, "CENTRAL_BAD_CONFIG", argv.join(" "));
      assert.match((err as Error).message, want);
    }
  }
});

test.run();
