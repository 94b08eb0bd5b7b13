/**
 * validateConfig: the one typed validator of a fleet Config, shared by the
 * central (before a config is stored) and the sidecar (before a pushed config
 * is applied). Zero values mean "use the default" (config.proto), so every
 * rule is checked against the effective value. Errors name the field by its
 * proto path (`thresholds.fail_ratio`, `origins["a.example"].sampling.error_rate`)
 * so an operator can act on them.
 */
import type { Config, ProbeSettings, Sampling, Thresholds } from "./gen/originwatch/v1/config_pb.js";
import { ORIGIN_PATTERN } from "./names.js";

/** Defaults of a zero field (DESIGN.md §5, config.proto). */
export const CONFIG_DEFAULTS = Object.freeze({
  successRate: 0.001,
  errorRate: 0.1,
  windowMs: 1000,
  lookbackMs: 5000,
  stallMs: 2000,
  failRatio: 0.5,
  degradedFailRatio: 0.1,
  /** Requests a node (or pooled scope) needs in the lookback before it counts; also the sidecar's onset cut. */
  minRequests: 5,
});

export const CONFIG_LIMITS = Object.freeze({
  minWindowMs: 100,
  maxWindowMs: 60_000,
  maxLookbackMs: 3_600_000,
  maxStallMs: 3_600_000,
  maxOrigins: 10_000,
  maxCapabilities: 64,
});

const ORIGIN = ORIGIN_PATTERN;
const CAPABILITY = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const METHODS = new Set(["", "GET", "HEAD", "OPTIONS"]);

export class ConfigInvalidError extends Error {
  override readonly name = "ConfigInvalidError";
  constructor(
    /** Proto path of the offending field. */
    readonly field: string,
    problem: string,
  ) {
    super(`${field} ${problem}`);
  }
}

/** What the validating side knows beyond the config (the sidecar knows its first-byte timeouts). */
export interface ConfigContext {
  /** First-byte timeout of an origin ("" = the fleet-wide value), when known. */
  firstByteTimeoutMs?: (origin: string) => number | undefined;
}

function fail(field: string, problem: string): never {
  throw new ConfigInvalidError(field, problem);
}

function rate(field: string, v: number): void {
  if (!Number.isFinite(v) || v < 0 || v > 1) fail(field, `must be a rate in [0, 1], got ${v}`);
}

function upTo(field: string, v: number, max: number): void {
  if (v > max) fail(field, `must be at most ${max}, got ${v}`);
}

function sampling(prefix: string, s: Sampling | undefined, base: { successRate: number; errorRate: number }) {
  if (!s) return base;
  rate(`${prefix}sampling.success_rate`, s.successRate);
  rate(`${prefix}sampling.error_rate`, s.errorRate);
  const eff = { successRate: s.successRate || base.successRate, errorRate: s.errorRate || base.errorRate };
  if (eff.errorRate < eff.successRate) {
    fail(`${prefix}sampling.error_rate`, `(${eff.errorRate}) must be at least sampling.success_rate (${eff.successRate}): errors are kept at a higher rate than successes`);
  }
  return eff;
}

function thresholds(prefix: string, t: Thresholds | undefined, base: { failRatio: number; degradedFailRatio: number }) {
  if (!t) return base;
  upTo(`${prefix}thresholds.min_requests`, t.minRequests, 1_000_000);
  rate(`${prefix}thresholds.fail_ratio`, t.failRatio);
  rate(`${prefix}thresholds.degraded_fail_ratio`, t.degradedFailRatio);
  upTo(`${prefix}thresholds.degraded_p95_ttfb_ms`, t.degradedP95TtfbMs, 3_600_000);
  const eff = { failRatio: t.failRatio || base.failRatio, degradedFailRatio: t.degradedFailRatio || base.degradedFailRatio };
  if (eff.degradedFailRatio > eff.failRatio) {
    fail(`${prefix}thresholds.degraded_fail_ratio`, `(${eff.degradedFailRatio}) must not exceed thresholds.fail_ratio (${eff.failRatio})`);
  }
  return eff;
}

function probe(prefix: string, p: ProbeSettings | undefined): void {
  if (!p) return;
  if (!METHODS.has(p.method)) fail(`${prefix}probe.method`, `must be GET, HEAD or OPTIONS, got ${JSON.stringify(p.method.slice(0, 16))}`);
  if (p.path !== "" && (!p.path.startsWith("/") || p.path.length > 2048 || /[\s\u0000-\u001f\u007f]/.test(p.path))) {
    fail(`${prefix}probe.path`, "must be an absolute path without spaces or control characters (at most 2048 characters)");
  }
  upTo(`${prefix}probe.count`, p.count, 100);
  upTo(`${prefix}probe.max_sidecars`, p.maxSidecars, 1000);
  upTo(`${prefix}probe.min_interval_ms`, p.minIntervalMs, 86_400_000);
  upTo(`${prefix}probe.timeout_ms`, p.timeoutMs, 60_000);
}

function stall(field: string, v: number, origin: string, ctx: ConfigContext): void {
  upTo(field, v, CONFIG_LIMITS.maxStallMs);
  const fbt = ctx.firstByteTimeoutMs?.(origin);
  if (v > 0 && fbt !== undefined && v >= fbt) fail(field, `(${v}) must be below the first-byte timeout (${fbt} ms)${origin ? ` of origin ${origin}` : ""}`);
}

/** Throws ConfigInvalidError naming the first offending field; returns the config unchanged. */
export function validateConfig(c: Config, ctx: ConfigContext = {}): Config {
  const base = sampling("", c.sampling, { successRate: CONFIG_DEFAULTS.successRate, errorRate: CONFIG_DEFAULTS.errorRate });
  if (c.windowMs !== 0 && (c.windowMs < CONFIG_LIMITS.minWindowMs || c.windowMs > CONFIG_LIMITS.maxWindowMs)) {
    fail("window_ms", `must be 0 (default) or from ${CONFIG_LIMITS.minWindowMs} to ${CONFIG_LIMITS.maxWindowMs}, got ${c.windowMs}`);
  }
  upTo("lookback_ms", c.lookbackMs, CONFIG_LIMITS.maxLookbackMs);
  const windowMs = c.windowMs || CONFIG_DEFAULTS.windowMs;
  const lookbackMs = c.lookbackMs || CONFIG_DEFAULTS.lookbackMs;
  if (lookbackMs < windowMs) fail("lookback_ms", `(${lookbackMs}) must be at least window_ms (${windowMs})`);
  stall("stall_ms", c.stallMs, "", ctx);
  const t = thresholds("", c.thresholds, { failRatio: CONFIG_DEFAULTS.failRatio, degradedFailRatio: CONFIG_DEFAULTS.degradedFailRatio });
  const h = c.hysteresis;
  if (h) {
    upTo("hysteresis.open_after", h.openAfter, 1000);
    upTo("hysteresis.close_after", h.closeAfter, 1000);
    upTo("hysteresis.flap_window_ms", h.flapWindowMs, 86_400_000);
  }
  probe("", c.probe);
  const names = Object.keys(c.origins);
  if (names.length > CONFIG_LIMITS.maxOrigins) fail("origins", `has ${names.length} entries, more than ${CONFIG_LIMITS.maxOrigins}`);
  for (const name of names) {
    const prefix = `origins[${JSON.stringify(name.slice(0, 64))}].`;
    if (!ORIGIN.test(name)) fail(prefix.slice(0, -1), "key must be a host name");
    const o = c.origins[name];
    thresholds(prefix, o.thresholds, t);
    sampling(prefix, o.sampling, base);
    probe(prefix, o.probe);
    stall(`${prefix}stall_ms`, o.stallMs, name, ctx);
  }
  if (c.requiredCapabilities.length > CONFIG_LIMITS.maxCapabilities) {
    fail("required_capabilities", `has more than ${CONFIG_LIMITS.maxCapabilities} entries`);
  }
  c.requiredCapabilities.forEach((cap, i) => {
    if (!CAPABILITY.test(cap)) fail(`required_capabilities[${i}]`, `must match ${CAPABILITY.source}, got ${JSON.stringify(cap.slice(0, 64))}`);
  });
  if (c.updatedBy.length > 128) fail("updated_by", "must be at most 128 characters");
  return c;
}

/** The problem with a config, or undefined when it is valid. */
export function configProblem(c: Config, ctx: ConfigContext = {}): ConfigInvalidError | undefined {
  try {
    validateConfig(c, ctx);
    return undefined;
  } catch (err) {
    if (err instanceof ConfigInvalidError) return err;
    throw err;
  }
}
