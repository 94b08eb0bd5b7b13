/**
 * The Prometheus/Alertmanager flags: parsed by commander, mapped to config
 * fields, defaults from CENTRAL_DEFAULTS (one source), bad values refused
 * naming the field (table).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Command } from "commander";
import { CENTRAL_DEFAULTS, type CentralConfig, validateCentralConfig } from "../config.js";
import { registerStackFlags, stackFlagsToConfig } from "./stack-flags.js";

const parse = (argv: string[]) => {
  const cmd = registerStackFlags(new Command("central").exitOverride());
  cmd.parse(argv, { from: "user" });
  return validateCentralConfig(stackFlagsToConfig(cmd.opts()));
};

test("absent flags leave the defaults of CENTRAL_DEFAULTS", () => {
  const c = parse([]);
  for (const f of ["metricsMaxOrigins", "metricsMaxOriginIsps", "alertmanagerResendMs", "externalUrl"] as const) assert.is(c[f], CENTRAL_DEFAULTS[f], f);
  assert.equal(c.alertmanagers, []);
});

test("each flag reaches its field", () => {
  const c = parse([
    "--metrics-max-origins", "5", "--metrics-max-origin-isps", "7", "--alertmanager", "http://am-1:9093/, https://am-2:9093",
    "--alertmanager-resend", "15000", "--external-url", "https://central.example:7400/",
  ]);
  assert.equal([c.metricsMaxOrigins, c.metricsMaxOriginIsps, c.alertmanagerResendMs], [5, 7, 15000]);
  assert.equal(c.alertmanagers, ["http://am-1:9093", "https://am-2:9093"]);
  assert.is(c.externalUrl, "https://central.example:7400");
});

const BAD: Array<[Partial<CentralConfig>, RegExp]> = [
  [{ metricsMaxOrigins: 0 }, /metricsMaxOrigins must be a positive integer, got 0/],
  [{ metricsMaxOriginIsps: 1.5 }, /metricsMaxOriginIsps must be a positive integer/],
  [{ alertmanagerResendMs: Number.NaN }, /alertmanagerResendMs must be a positive integer/],
  [{ alertmanagers: ["am-1:9093"] }, /alertmanagers\[0\] must be an absolute http\(s\) URL/],
  [{ alertmanagers: ["http://ok:9093", "ftp://x"] }, /alertmanagers\[1\] must be an absolute http\(s\) URL/],
  [{ externalUrl: "central:7400" }, /externalUrl must be an absolute http\(s\) URL/],
];

for (const [partial, re] of BAD) {
  test(`refused naming the field: ${JSON.stringify(partial)}`, () => {
    assert.throws(() => validateCentralConfig(partial), re);
  });
}

test.run();
