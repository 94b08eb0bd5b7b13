/**
 * The fleet config and its history in LevelDB (sublevel "config"):
 * `current` holds the config in force, `h/<version, 20 digits>` every version
 * ever set. A change writes both in one atomic batch, so a restart always
 * comes back to the last config that was acknowledged to its setter.
 * Changes are serialised: optimistic concurrency is checked against the
 * version in force when the change runs, not when it was requested.
 */
import { clone, create, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { EventEmitter } from "node:events";
import { type Config, ConfigSchema } from "../../proto/gen/originwatch/v1/config_pb.js";
import { ConfigInvalidError, validateConfig } from "../../proto/config-validate.js";
import { CentralError } from "../errors.js";
import type { LevelStore } from "../store/level-store.js";

const CURRENT = "current";
const historyKey = (v: bigint) => `h/${v.toString().padStart(20, "0")}`;

export interface ConfigStoreEvents {
  changed: [config: Config];
}

/**
 * What ConfigService, ConfigPush and the verdict need of the fleet config:
 * the embedded ConfigStore (LevelDB) and, in cluster mode, ConfigKv
 * (central/cluster/config-kv.ts) both provide it. `set` refuses a stale
 * expectedVersion with CENTRAL_CONFIG_CONFLICT (FAILED_PRECONDITION) on either;
 * "changed" fires once per new version, in order.
 */
export interface FleetConfigSource {
  current(): Config;
  set(config: Config, expectedVersion: bigint, nowMs?: number): Promise<Config>;
  historyPage(limit?: number, beforeVersion?: bigint): Promise<{ configs: Config[]; more: boolean }>;
  on(event: "changed", listener: (config: Config) => void): unknown;
  off(event: "changed", listener: (config: Config) => void): unknown;
}

/**
 * The config to store as version `current + 1`: validated (CENTRAL_CONFIG_INVALID
 * naming the field), copied, stamped with its version and time. Shared by the
 * embedded store and the cluster's (central/cluster/config-kv.ts).
 */
export function nextConfigVersion(config: Config, current: bigint, nowMs: number): Config {
  try {
    validateConfig(config);
  } catch (err) {
    if (err instanceof ConfigInvalidError) throw new CentralError("CENTRAL_CONFIG_INVALID", `config.${err.message}`, { cause: err });
    throw err;
  }
  const next = clone(ConfigSchema, config);
  next.version = current + 1n;
  next.updatedUnixMs = BigInt(nowMs);
  return next;
}

export class ConfigStore extends EventEmitter<ConfigStoreEvents> implements FleetConfigSource {
  private db;
  private config: Config = create(ConfigSchema, {});
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(store: LevelStore) {
    super();
    this.db = store.sublevel<JsonValue>("config");
  }

  static async open(store: LevelStore): Promise<ConfigStore> {
    const s = new ConfigStore(store);
    const raw = await s.db.get(CURRENT);
    if (raw !== undefined) s.config = fromJson(ConfigSchema, raw, { ignoreUnknownFields: true });
    return s;
  }

  /** The config in force (version 0: none set yet, every default applies). Do not mutate. */
  current(): Config {
    return this.config;
  }

  /**
   * Validate and store `config` as version current+1. Throws CENTRAL_CONFIG_CONFLICT
   * (FAILED_PRECONDITION) when expectedVersion is not the version in force and
   * CENTRAL_CONFIG_INVALID (INVALID_ARGUMENT) naming the field when invalid.
   */
  set(config: Config, expectedVersion: bigint, nowMs = Date.now()): Promise<Config> {
    const run = async () => {
      const cur = this.config.version;
      if (expectedVersion !== cur) {
        throw new CentralError("CENTRAL_CONFIG_CONFLICT", `expected_version ${expectedVersion} is not the current version ${cur}: read the config again and reapply your change`);
      }
      const next = nextConfigVersion(config, cur, nowMs);
      const json = toJson(ConfigSchema, next);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const ops: any[] = [
        { type: "put", key: CURRENT, value: json },
        { type: "put", key: historyKey(next.version), value: json },
      ];
      // sync: a stored config was acknowledged to its setter (the sublevel passes options to classic-level).
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      await this.db.batch(ops, { sync: true } as any);
      this.config = next;
      this.emit("changed", next);
      return next;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => {});
    return p;
  }

  /** Versions newest first, at most `limit` (default 50, at most 1000). */
  async history(limit = 50): Promise<Config[]> {
    return (await this.historyPage(limit)).configs;
  }

  /**
   * One page of versions, newest first: at most `limit` (default 50, at most
   * 1000), older than `beforeVersion` when given; `more` when older ones exist.
   */
  async historyPage(limit = 50, beforeVersion?: bigint): Promise<{ configs: Config[]; more: boolean }> {
    const n = Math.min(Math.max(limit || 50, 1), 1000);
    const out: Config[] = [];
    const lt = beforeVersion !== undefined ? historyKey(beforeVersion) : "h0";
    let more = false;
    for await (const v of this.db.values({ gte: "h/", lt, reverse: true, limit: n + 1 })) {
      if (out.length === n) {
        more = true;
        break;
      }
      out.push(fromJson(ConfigSchema, v, { ignoreUnknownFields: true }));
    }
    return { configs: out, more };
  }
}
