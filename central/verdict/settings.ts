/**
 * Verdict settings resolved from the pushed Config: zero means "use the
 * default" (config.proto), per-origin overrides win over fleet values.
 * Defaults are DESIGN.md §5.
 */
import type { Config, ProbeSettings, Thresholds } from "../../proto/gen/originwatch/v1/config_pb.js";
import { CONFIG_DEFAULTS } from "../../proto/config-validate.js";

export interface VerdictThresholds {
  /** Minimum requests in the lookback before a node (or a pooled scope) counts. */
  minRequests: number;
  /** Failure ratio at which a node or scope is failing. */
  failRatio: number;
  /** Fleet failure ratio above which the origin is DEGRADED. */
  degradedFailRatio: number;
  /** Fleet p95 TTFB above which the origin is DEGRADED. */
  degradedP95TtfbMs: number;
}

export interface HysteresisSettings {
  openAfter: number;
  closeAfter: number;
  flapWindowMs: number;
}

export interface ProbeOptions {
  enabled: boolean;
  method: string;
  path: string;
  count: number;
  maxSidecars: number;
  minIntervalMs: number;
  timeoutMs: number;
}

export interface VerdictSettings {
  windowMs: number;
  lookbackMs: number;
  thresholds: VerdictThresholds;
  hysteresis: HysteresisSettings;
  probe: ProbeOptions;
}

export const DEFAULT_THRESHOLDS: Readonly<VerdictThresholds> = Object.freeze({
  minRequests: CONFIG_DEFAULTS.minRequests,
  failRatio: CONFIG_DEFAULTS.failRatio,
  degradedFailRatio: CONFIG_DEFAULTS.degradedFailRatio,
  degradedP95TtfbMs: 1000,
});

export const DEFAULT_HYSTERESIS: Readonly<HysteresisSettings> = Object.freeze({
  openAfter: 2,
  closeAfter: 5,
  flapWindowMs: 60_000,
});

export const DEFAULT_PROBE: Readonly<ProbeOptions> = Object.freeze({
  enabled: true,
  method: "HEAD",
  path: "/",
  count: 3,
  maxSidecars: 3,
  minIntervalMs: 30_000,
  timeoutMs: 2_000,
});

export const DEFAULT_SETTINGS: Readonly<VerdictSettings> = Object.freeze({
  windowMs: CONFIG_DEFAULTS.windowMs,
  lookbackMs: CONFIG_DEFAULTS.lookbackMs,
  thresholds: DEFAULT_THRESHOLDS,
  hysteresis: DEFAULT_HYSTERESIS,
  probe: DEFAULT_PROBE,
});

const or = <T extends number | string>(v: T | undefined, d: T): T => (v ? v : d);

function thresholdsOf(base: VerdictThresholds, t: Thresholds | undefined): VerdictThresholds {
  if (!t) return base;
  return {
    minRequests: or(t.minRequests, base.minRequests),
    failRatio: or(t.failRatio, base.failRatio),
    degradedFailRatio: or(t.degradedFailRatio, base.degradedFailRatio),
    degradedP95TtfbMs: or(t.degradedP95TtfbMs, base.degradedP95TtfbMs),
  };
}

function probeOf(base: ProbeOptions, p: ProbeSettings | undefined): ProbeOptions {
  if (!p) return base;
  return {
    enabled: base.enabled && !p.disabled,
    method: or(p.method, base.method),
    path: or(p.path, base.path),
    count: or(p.count, base.count),
    maxSidecars: or(p.maxSidecars, base.maxSidecars),
    minIntervalMs: or(p.minIntervalMs, base.minIntervalMs),
    timeoutMs: or(p.timeoutMs, base.timeoutMs),
  };
}

/** Settings for one origin: defaults, then the fleet config, then the origin's override. */
export function resolveSettings(config: Config | undefined, origin = ""): VerdictSettings {
  if (!config) return DEFAULT_SETTINGS;
  const override = origin ? config.origins[origin] : undefined;
  const fleetThresholds = thresholdsOf(DEFAULT_THRESHOLDS, config.thresholds);
  const fleetProbe = probeOf(DEFAULT_PROBE, config.probe);
  const h = config.hysteresis;
  return {
    windowMs: or(config.windowMs, DEFAULT_SETTINGS.windowMs),
    lookbackMs: or(config.lookbackMs, DEFAULT_SETTINGS.lookbackMs),
    thresholds: thresholdsOf(fleetThresholds, override?.thresholds),
    hysteresis: {
      openAfter: or(h?.openAfter, DEFAULT_HYSTERESIS.openAfter),
      closeAfter: or(h?.closeAfter, DEFAULT_HYSTERESIS.closeAfter),
      flapWindowMs: or(h?.flapWindowMs, DEFAULT_HYSTERESIS.flapWindowMs),
    },
    probe: probeOf(fleetProbe, override?.probe),
  };
}
