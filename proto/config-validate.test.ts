import { test } from "uvu";
import * as assert from "uvu/assert";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ConfigSchema } from "./gen/originwatch/v1/config_pb.js";
import { ConfigInvalidError, configProblem, validateConfig } from "./config-validate.js";

const cfg = (init: MessageInitShape<typeof ConfigSchema>) => create(ConfigSchema, init);

test("an empty config (all defaults) is valid", () => {
  assert.is(configProblem(cfg({})), undefined);
});

test("a full, sensible config is valid", () => {
  const c = cfg({
    sampling: { successRate: 0.01, errorRate: 0.5 },
    windowMs: 1000,
    lookbackMs: 10_000,
    stallMs: 1500,
    thresholds: { minRequests: 10, failRatio: 0.4, degradedFailRatio: 0.05, degradedP95TtfbMs: 800 },
    hysteresis: { openAfter: 3, closeAfter: 6, flapWindowMs: 120_000 },
    probe: { method: "GET", path: "/health", count: 3, maxSidecars: 4, minIntervalMs: 10_000, timeoutMs: 2000 },
    origins: { "img.example.com": { stallMs: 500, sampling: { errorRate: 1 } } },
    requiredCapabilities: ["exemplars"],
  });
  assert.is(validateConfig(c), c);
});

const bad: Array<[string, MessageInitShape<typeof ConfigSchema>, string]> = [
  ["rate above 1", { sampling: { successRate: 1.5 } }, "sampling.success_rate"],
  ["NaN rate", { sampling: { errorRate: Number.NaN } }, "sampling.error_rate"],
  ["negative rate", { thresholds: { failRatio: -0.1 } }, "thresholds.fail_ratio"],
  ["errors sampled below successes", { sampling: { successRate: 0.5, errorRate: 0.2 } }, "sampling.error_rate"],
  ["tiny window", { windowMs: 10 }, "window_ms"],
  ["lookback shorter than window", { windowMs: 5000, lookbackMs: 2000 }, "lookback_ms"],
  ["lookback shorter than default window", { lookbackMs: 500 }, "lookback_ms"],
  ["degraded bar above failing bar", { thresholds: { failRatio: 0.2, degradedFailRatio: 0.3 } }, "thresholds.degraded_fail_ratio"],
  ["absurd stall", { stallMs: 4_000_000 }, "stall_ms"],
  ["probe method", { probe: { method: "DELETE" } }, "probe.method"],
  ["probe path", { probe: { path: "no-slash" } }, "probe.path"],
  ["bad origin key", { origins: { "bad host/": {} } }, 'origins["bad host/"]'],
  ["override rate", { origins: { a: { sampling: { errorRate: 2 } } } }, 'origins["a"].sampling.error_rate'],
  ["capability", { requiredCapabilities: ["Has Space"] }, "required_capabilities[0]"],
  ["hysteresis", { hysteresis: { openAfter: 5000 } }, "hysteresis.open_after"],
];

for (const [name, init, field] of bad) {
  test(`refuses ${name}, naming ${field}`, () => {
    const p = configProblem(cfg(init));
    assert.instance(p, ConfigInvalidError);
    assert.is(p!.field, field);
    assert.ok(p!.message.startsWith(field), p!.message);
  });
}

test("stall must be below the first-byte timeout where the validating side knows it", () => {
  const c = cfg({ stallMs: 5000, origins: { slow: { stallMs: 100 } } });
  assert.is(configProblem(c), undefined);
  const p = configProblem(c, { firstByteTimeoutMs: () => 3000 });
  assert.is(p?.field, "stall_ms");
  const q = configProblem(cfg({ origins: { slow: { stallMs: 4000 } } }), { firstByteTimeoutMs: (o) => (o === "slow" ? 3000 : 30_000) });
  assert.is(q?.field, 'origins["slow"].stall_ms');
});

test.run();
