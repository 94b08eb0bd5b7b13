/**
 * The command-line flags of the operator's stack (issue 15): Prometheus
 * cardinality caps and Alertmanager, in one block registered on `originwatch
 * central` and mapped to CentralConfig fields. Defaults are not set here:
 * validateCentralConfig fills them from CENTRAL_DEFAULTS; the help only shows them.
 */
import type { Command } from "commander";
import { CENTRAL_DEFAULTS, type CentralConfig } from "../config.js";

const D = CENTRAL_DEFAULTS;

export function registerStackFlags(cmd: Command): Command {
  return cmd
    .option("--metrics-max-origins <n>", `origins with per-origin series on /metrics; more are counted in originwatch_central_metrics_over_cap (default ${D.metricsMaxOrigins})`, (v) => Number(v))
    .option("--metrics-max-origin-isps <n>", `(origin, ISP) series of originwatch_origin_isp_failure_ratio; more are counted likewise (default ${D.metricsMaxOriginIsps})`, (v) => Number(v))
    .option("--alertmanager <urls>", "comma-separated Alertmanager base URLs: incidents are sent as alerts (API v2), re-sent while open, resolved when closed")
    .option("--alertmanager-resend <ms>", `re-send open incidents to Alertmanager this often (default ${D.alertmanagerResendMs})`, (v) => Number(v))
    .option("--external-url <url>", "the central's URL as operators open it: alerts link to its dashboard (default http://<listen address>)");
}

/** The parsed flags as a partial config (absent flags stay undefined). */
export function stackFlagsToConfig(opts: Record<string, unknown>): Partial<CentralConfig> {
  return {
    metricsMaxOrigins: opts.metricsMaxOrigins as number | undefined,
    metricsMaxOriginIsps: opts.metricsMaxOriginIsps as number | undefined,
    alertmanagers: typeof opts.alertmanager === "string" ? opts.alertmanager.split(",").map((u) => u.trim()).filter(Boolean) : undefined,
    alertmanagerResendMs: opts.alertmanagerResend as number | undefined,
    externalUrl: opts.externalUrl as string | undefined,
  };
}
