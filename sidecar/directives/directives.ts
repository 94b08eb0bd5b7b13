/**
 * Directives: the pushed fleet config as this sidecar applies it, xDS-style.
 * A pushed version is validated again here (the same validateConfig as the
 * central, plus what only the sidecar knows: its first-byte timeouts and its
 * capabilities), then applied and ACKed, or NACKed with a reason while the
 * last good config stays in force. The last good config is persisted under
 * the state directory (write to a temp file, then rename: never half a file)
 * and applied at boot, so a sidecar that cannot reach the central still runs
 * with the fleet's settings.
 */
import { create, fromJson, toJson } from "@bufbuild/protobuf";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CONFIG_DEFAULTS, configProblem } from "../../proto/config-validate.js";
import { type Config, ConfigSchema } from "../../proto/gen/originwatch/v1/config_pb.js";
import type { SampleRates } from "./sampler.js";

/** Features this sidecar supports; a config requiring anything else is NACKed. */
export const SIDECAR_CAPABILITIES: readonly string[] = Object.freeze(["config-v1", "sampling", "exemplars", "stall", "window"]);

export const STATE_FILE = "config.json";

export interface DirectivesOptions {
  stateDir?: string;
  capabilities?: readonly string[];
  /** First-byte timeout per origin name: stall_ms must stay below it. */
  firstByteTimeoutMs: (origin: string) => number | undefined;
  /** Names of the origins this sidecar forwards to. */
  originNames?: () => string[];
  /** Apply an accepted config (stall per origin, window, ...). Must not throw for a valid config. */
  apply: (config: Config) => void;
  log?: (level: "info" | "warn", msg: string, fields?: Record<string, unknown>) => void;
}

export interface Verdict {
  accepted: boolean;
  reason: string;
}

export class Directives {
  private config: Config = create(ConfigSchema, {});
  private writing: Promise<void> = Promise.resolve();

  constructor(private opts: DirectivesOptions) {}

  /** The config in force (version 0: none, every default). */
  get current(): Config {
    return this.config;
  }

  get version(): bigint {
    return this.config.version;
  }

  /** Sampling rates for an origin: override, then fleet value, then default. */
  rates(origin: string): SampleRates {
    const fleet = this.config.sampling;
    const o = this.config.origins[origin]?.sampling;
    return {
      successRate: o?.successRate || fleet?.successRate || CONFIG_DEFAULTS.successRate,
      errorRate: o?.errorRate || fleet?.errorRate || CONFIG_DEFAULTS.errorRate,
    };
  }

  /** Why this sidecar cannot apply `config`, or undefined. */
  problem(config: Config): string | undefined {
    if (config.version === 0n) return "version must be at least 1";
    const caps = new Set(this.opts.capabilities ?? SIDECAR_CAPABILITIES);
    const missing = config.requiredCapabilities.filter((c) => !caps.has(c));
    if (missing.length > 0) return `required_capabilities: this sidecar lacks ${missing.join(", ")}`;
    const p = configProblem(config, {
      firstByteTimeoutMs: (origin) => (origin === "" ? undefined : this.opts.firstByteTimeoutMs(origin)),
    });
    if (p) return p.message;
    // A fleet-wide stall_ms applies to every origin without an override of its own.
    if (config.stallMs > 0) {
      for (const name of this.opts.originNames?.() ?? []) {
        const fbt = this.opts.firstByteTimeoutMs(name);
        if (!config.origins[name]?.stallMs && fbt !== undefined && config.stallMs >= fbt) {
          return `stall_ms (${config.stallMs}) must be below the first-byte timeout (${fbt} ms) of origin ${name}`;
        }
      }
    }
    return undefined;
  }

  /** Validate, apply and persist a pushed config: the ACK/NACK to send back. */
  async offer(config: Config): Promise<Verdict> {
    if (config.version === this.config.version && config.version !== 0n) return { accepted: true, reason: "" };
    const reason = this.problem(config);
    if (reason !== undefined) {
      this.opts.log?.("warn", "pushed config rejected; keeping the last good one", { version: config.version.toString(), reason, inForce: this.config.version.toString() });
      return { accepted: false, reason };
    }
    try {
      this.opts.apply(config);
    } catch (err) {
      return { accepted: false, reason: `cannot apply: ${(err as Error).message}` };
    }
    this.config = config;
    this.opts.log?.("info", "config applied", { version: config.version.toString() });
    await this.persist(config);
    return { accepted: true, reason: "" };
  }

  /** Apply the last good config from the state directory, if any. Never throws. */
  async loadPersisted(): Promise<boolean> {
    if (!this.opts.stateDir) return false;
    const file = join(this.opts.stateDir, STATE_FILE);
    let config: Config;
    try {
      config = fromJson(ConfigSchema, JSON.parse(await readFile(file, "utf8")), { ignoreUnknownFields: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.opts.log?.("warn", "ignoring unreadable persisted config", { file, error: (err as Error).message });
      return false;
    }
    const reason = this.problem(config);
    if (reason !== undefined) {
      this.opts.log?.("warn", "ignoring persisted config this sidecar cannot apply", { file, reason });
      return false;
    }
    this.opts.apply(config);
    this.config = config;
    this.opts.log?.("info", "applied persisted config", { version: config.version.toString() });
    return true;
  }

  private persist(config: Config): Promise<void> {
    const dir = this.opts.stateDir;
    if (!dir) return Promise.resolve();
    const run = async () => {
      try {
        await mkdir(dir, { recursive: true });
        const tmp = join(dir, `${STATE_FILE}.tmp`);
        await writeFile(tmp, JSON.stringify(toJson(ConfigSchema, config)));
        await rename(tmp, join(dir, STATE_FILE));
      } catch (err) {
        this.opts.log?.("warn", "cannot persist the applied config", { dir, error: (err as Error).message });
      }
    };
    this.writing = this.writing.then(run);
    return this.writing;
  }
}
