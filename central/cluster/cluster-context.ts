/**
 * The shared handle of a cluster-mode replica (issue 16): one NATS connection,
 * its JetStream client and KV manager, this replica's id and the validated
 * options. Everything in central/cluster/ that talks to NATS takes a
 * ClusterContext instead of opening its own connection, so a replica holds
 * exactly one connection (one reconnect policy, one place to close).
 *
 * Contract: `connectCluster` either returns a connected context or throws
 * CENTRAL_NATS_UNAVAILABLE (start-up fails clearly when NATS is unreachable);
 * once connected, the client reconnects forever (toConnectOptions) and the
 * status events are logged through `log`, never fatal.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { CentralError } from "../errors.js";
import { type NatsOptions, toConnectOptions } from "./nats-options.js";

export interface ClusterContext {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kvm: Kvm;
  /** This replica's id: lease owner, snapshot writer, event origin (letters, digits, -_=, ≤ 64). */
  replicaId: string;
  options: NatsOptions;
  /** Drains and closes the connection (idempotent). */
  close(): Promise<void>;
}

/** Replica ids go into KV keys (`w.<id>`) and msgIDs: keep them to what every key allows. */
export const REPLICA_ID = /^[A-Za-z0-9_=-]{1,64}$/;

/** A replica id that is unique per process: host name (sanitised) plus random suffix. */
export function generateReplicaId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 40) || "central";
  return `${host}-${randomBytes(4).toString("hex")}`;
}

export interface ConnectClusterOptions {
  /** Given by `--replica-id`; generated when absent. */
  replicaId?: string;
  /** How long the first connection may take before start-up fails (default 10 s). */
  connectTimeoutMs?: number;
  log?: (msg: string) => void;
}

/**
 * Connects to NATS with the validated options. Throws CENTRAL_BAD_CONFIG for a
 * bad replica id, CENTRAL_NATS_UNAVAILABLE when no server answers in time or
 * the credentials are refused.
 */
export async function connectCluster(options: NatsOptions, o: ConnectClusterOptions = {}): Promise<ClusterContext> {
  const replicaId = o.replicaId ?? generateReplicaId();
  if (!REPLICA_ID.test(replicaId)) throw new CentralError("CENTRAL_BAD_CONFIG", `--replica-id must be 1-64 letters, digits or -_=, got ${JSON.stringify(replicaId)}`);
  const log = o.log ?? (() => {});
  let nc: NatsConnection;
  try {
    nc = await connect({ ...toConnectOptions(options, `originwatch-central-${replicaId}`), timeout: o.connectTimeoutMs ?? 10_000 });
  } catch (err) {
    throw new CentralError("CENTRAL_NATS_UNAVAILABLE", `cannot connect to NATS at ${options.servers.join(",")}: ${(err as Error).message}`, { cause: err });
  }
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "reconnect" || s.type === "error") log(`nats ${s.type}${"server" in s && s.server ? ` ${String(s.server)}` : ""}`);
    }
  })().catch(() => {});
  const js = jetstream(nc);
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc);
  } catch (err) {
    await nc.close();
    throw new CentralError("CENTRAL_NATS_UNAVAILABLE", `NATS at ${options.servers.join(",")} has no JetStream for this user: ${(err as Error).message}`, { cause: err });
  }
  let closed: Promise<void> | undefined;
  return {
    nc,
    js,
    jsm,
    kvm: new Kvm(js),
    replicaId,
    options,
    close: () => (closed ??= nc.drain().catch(() => nc.close())),
  };
}
