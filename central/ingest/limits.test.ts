import { test } from "uvu";
import * as assert from "uvu/assert";
import { Command } from "commander";
import { CENTRAL_DEFAULTS, validateCentralConfig } from "../config.js";
import { addIngestLimitFlags, advertisedLimits, ingestLimitsFromFlags } from "./limits.js";

const parse = (argv: string[]) => {
  const cmd = addIngestLimitFlags(new Command().exitOverride());
  cmd.parse(argv, { from: "user" });
  return ingestLimitsFromFlags(cmd.opts());
};

test("each limit flag sets its config field; unset flags leave the default to validateCentralConfig", () => {
  assert.equal(parse(["--max-origins", "50", "--ingest-rate", "300", "--max-future-skew", "2500", "--max-requests-per-sec", "10"]), {
    maxOrigins: 50,
    ingestRatePerSec: 300,
    maxFutureSkewMs: 2500,
    maxRequestsPerSec: 10,
  });
  const c = validateCentralConfig(parse([]));
  assert.is(c.maxNodes, CENTRAL_DEFAULTS.maxNodes);
  assert.is(c.maxWindowsPerBatch, 2000);
});

test("a limit that is not a positive integer, or origins per node above the total, is refused naming the field", () => {
  assert.throws(() => validateCentralConfig({ maxNodes: 0 }), /maxNodes must be a positive integer/);
  assert.throws(() => validateCentralConfig(parse(["--max-windows-per-batch", "lots"])), /maxWindowsPerBatch must be a positive integer, got NaN/);
  assert.throws(() => validateCentralConfig({ maxOriginsPerNode: 20, maxOrigins: 10 }), /maxOriginsPerNode \(20\) must be at most maxOrigins \(10\)/);
});

test("Welcome.limits never promise more than the bucket can take", () => {
  const l = advertisedLimits(validateCentralConfig({ ingestBurst: 500, ingestRatePerSec: 100 }));
  assert.is(l.maxWindowsPerBatch, 500);
  assert.is(l.maxExemplarsPerBatch, 500);
  assert.is(l.maxWindowsPerSec, 100);
  assert.is(l.maxOriginsPerNode, 1000);
});

test.run();
