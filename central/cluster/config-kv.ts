/**
 * The fleet config in cluster mode (issue 16): versioned in a JetStream KV
 * bucket with optimistic concurrency, so every replica accepts SetConfig and a
 * stale version is refused on any of them. The cluster twin of ConfigStore
 * (same `current` / `set` / `historyPage` / "changed" contract), so ConfigPush
 * can distribute from either.
 *
 * Bucket `OW_CONFIG` (R3, no TTL, history 1 per key):
 *   v.<N>            Config version N (protobuf binary), written once by
 *                    `create`, never changed or deleted
 *   node.<b64url id> this node's config state as its replica last saw it
 *                    (JSON NodeConfigRecord): applied version, last ACK/NACK;
 *                    deleted when an operator forgets the node (ForgetNode,
 *                    age-out), which every replica's watch sees
 *
 * Concurrency: set(config, expectedVersion) requires expectedVersion to be the
 * latest version this replica has seen, then `create("v.<expected+1>")`.
 * `create` refuses an existing key on the stream leader, so of two replicas
 * racing with the same expected version exactly one wins; a replica whose view
 * lags can only refuse (its expected+1 already exists), never leave a gap.
 * Every refusal is CENTRAL_CONFIG_CONFLICT (FAILED_PRECONDITION), like the
 * embedded store. Version keys are never deleted: `create` of a key that never
 * had a message is the one compare-and-set that nats-server 2.9 serialises on
 * a clustered stream (central/cluster/README.md, "Compare-and-set on 2.9.10").
 *
 * Every replica watches v.> and emits "changed" once per new version, in
 * version order, so it can push to its own sidecar sessions.
 */
import { EventEmitter } from "node:events";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type JetStreamClient, JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { type Config, ConfigSchema } from "../../proto/gen/originwatch/v1/config_pb.js";
import { CentralError } from "../errors.js";
import { nextConfigVersion } from "../config-push/config-store.js";

export const CONFIG_BUCKET = "OW_CONFIG";
const versionKey = (v: bigint) => `v.${v}`;
const nodeKey = (nodeId: string) => `node.${Buffer.from(nodeId).toString("base64url")}`;

/** One node's config state, as the replica holding its session recorded it. */
export interface NodeConfigRecord {
  nodeId: string;
  /** Last version the node ACKed (0: none). */
  appliedVersion: string;
  /** The last ACK or NACK. */
  lastAck?: { version: string; accepted: boolean; reason: string };
  /** Replica that wrote this record, and when. */
  replica: string;
  atMs: number;
}

export interface ConfigKvEvents {
  changed: [config: Config];
}

export interface ConfigKvOptions {
  replicas: number;
  /** This replica's name (written into node records). */
  replica: string;
  bucket?: string;
}

const MAX_REASON = 1024;

export class ConfigKv extends EventEmitter<ConfigKvEvents> {
  private latest: Config = create(ConfigSchema, {});
  private closed = false;
  private stopWatch: () => void = () => {};

  private constructor(
    private readonly kv: KV,
    private readonly replica: string,
  ) {
    super();
  }

  /**
   * Opens (creating it if needed) the bucket, loads the latest version and
   * starts watching for new ones. Versions created while it opens are not
   * missed: the watch starts from the stream sequence read before the listing.
   */
  static async open(js: JetStreamClient, o: ConfigKvOptions): Promise<ConfigKv> {
    const kv = await new Kvm(js).create(o.bucket ?? CONFIG_BUCKET, { replicas: o.replicas, history: 1 });
    const s = new ConfigKv(kv, o.replica);
    const fromSeq = (await kv.status()).streamInfo.state.last_seq + 1;
    const versions = await s.versions();
    if (versions.length > 0) s.latest = (await s.load(versions[0]))!;
    const watch = await kv.watch({ key: "v.>", resumeFromRevision: fromSeq });
    s.stopWatch = () => watch.stop();
    void (async () => {
      for await (const e of watch) {
        if (e.operation !== "PUT") continue;
        s.advance(fromBinary(ConfigSchema, e.value));
      }
    })();
    return s;
  }

  /** The latest version this replica has seen (version 0: none set yet). Do not mutate. */
  current(): Config {
    return this.latest;
  }

  /**
   * Validates `config` and stores it as version expectedVersion + 1. Throws
   * CENTRAL_CONFIG_CONFLICT when expectedVersion is not the latest version (on
   * this replica or, decided by JetStream, on any other), CENTRAL_CONFIG_INVALID
   * naming the field, CENTRAL_NATS_UNAVAILABLE when JetStream cannot confirm.
   * Resolves with the stored config (after "changed" for it was emitted here).
   */
  async set(config: Config, expectedVersion: bigint, nowMs = Date.now()): Promise<Config> {
    const cur = this.latest.version;
    const conflict = () =>
      new CentralError("CENTRAL_CONFIG_CONFLICT", `expected_version ${expectedVersion} is not the current version ${expectedVersion === cur ? `(version ${cur + 1n} was just set elsewhere)` : cur}: read the config again and reapply your change`);
    if (expectedVersion !== cur) throw conflict();
    const next = nextConfigVersion(config, cur, nowMs);
    try {
      await this.kv.create(versionKey(next.version), toBinary(ConfigSchema, next));
    } catch (err) {
      // create refuses an existing key: another replica stored this version first.
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) throw conflict();
      throw new CentralError("CENTRAL_NATS_UNAVAILABLE", `cannot store config version ${next.version}: ${(err as Error).message}`, { cause: err });
    }
    this.advance(next);
    return next;
  }

  /** Versions newest first: at most `limit` (default 50, at most 1000), older than `beforeVersion` when given. */
  async historyPage(limit = 50, beforeVersion?: bigint): Promise<{ configs: Config[]; more: boolean }> {
    const n = Math.min(Math.max(limit || 50, 1), 1000);
    const all = (await this.versions()).filter((v) => beforeVersion === undefined || v < beforeVersion);
    const configs = (await Promise.all(all.slice(0, n).map((v) => this.load(v)))).filter((c): c is Config => c !== undefined);
    return { configs, more: all.length > n };
  }

  /** Records a node's ACK or NACK of `version` (written by the replica holding its session). */
  async recordAck(nodeId: string, ack: { version: bigint; accepted: boolean; reason: string }, nowMs = Date.now()): Promise<NodeConfigRecord> {
    const prev = await this.node(nodeId);
    const rec: NodeConfigRecord = {
      nodeId,
      appliedVersion: ack.accepted ? ack.version.toString() : (prev?.appliedVersion ?? "0"),
      lastAck: { version: ack.version.toString(), accepted: ack.accepted, reason: ack.reason.slice(0, MAX_REASON) },
      replica: this.replica,
      atMs: nowMs,
    };
    await this.kv.put(nodeKey(nodeId), JSON.stringify(rec));
    return rec;
  }

  /** Records the version a node reports applied in its Hello (no ACK involved). */
  async recordApplied(nodeId: string, appliedVersion: bigint, nowMs = Date.now()): Promise<NodeConfigRecord> {
    const prev = await this.node(nodeId);
    const rec: NodeConfigRecord = { nodeId, appliedVersion: appliedVersion.toString(), lastAck: prev?.lastAck, replica: this.replica, atMs: nowMs };
    await this.kv.put(nodeKey(nodeId), JSON.stringify(rec));
    return rec;
  }

  /** One node's record, from any replica; undefined when none was written. */
  async node(nodeId: string): Promise<NodeConfigRecord | undefined> {
    const e = await this.kv.get(nodeKey(nodeId));
    return e && e.operation === "PUT" ? e.json<NodeConfigRecord>() : undefined;
  }

  /** Every node's record. */
  async nodes(): Promise<NodeConfigRecord[]> {
    const out: NodeConfigRecord[] = [];
    for await (const k of await this.kv.keys("node.>")) {
      const e = await this.kv.get(k);
      if (e && e.operation === "PUT") out.push(e.json<NodeConfigRecord>());
    }
    return out.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  }

  /** The node was forgotten (ForgetNode, age-out): its record goes, and every replica's watch sees it go. */
  async forgetNode(nodeId: string): Promise<void> {
    await this.kv.delete(nodeKey(nodeId));
  }

  /**
   * Calls `onRecord` with every node record now in the bucket, then with each
   * one written after (by any replica), and `onForget` with each node whose
   * record was deleted (forgotten on some replica). Returns the stop function.
   */
  async watchNodes(onRecord: (rec: NodeConfigRecord) => void, onForget: (nodeId: string) => void = () => {}): Promise<() => void> {
    const watch = await this.kv.watch({ key: "node.>" });
    void (async () => {
      for await (const e of watch) {
        if (e.operation !== "PUT") {
          onForget(Buffer.from(e.key.slice("node.".length), "base64url").toString());
          continue;
        }
        let rec: NodeConfigRecord;
        try {
          rec = e.json<NodeConfigRecord>();
        } catch {
          continue; // not a record of ours: skipped, never stops the watch
        }
        onRecord(rec);
      }
    })().catch(() => {});
    return () => watch.stop();
  }

  /** Stops watching. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopWatch();
  }

  /** Takes `c` as the latest and emits "changed", once per version, only forward. */
  private advance(c: Config): void {
    if (c.version <= this.latest.version) return;
    this.latest = c;
    this.emit("changed", c);
  }

  private async versions(): Promise<bigint[]> {
    const out: bigint[] = [];
    for await (const k of await this.kv.keys("v.>")) out.push(BigInt(k.slice(2)));
    return out.sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
  }

  private async load(v: bigint): Promise<Config | undefined> {
    const e = await this.kv.get(versionKey(v));
    return e && e.operation === "PUT" ? fromBinary(ConfigSchema, e.value) : undefined;
  }
}
