/**
 * Which replica holds each sidecar's session, in cluster mode (issue 16): the
 * directory a replica reads to send a probe (probe-relay.ts) to a node whose
 * stream is on another replica.
 *
 * Bucket `OW_SESSIONS` (R = --nats-replicas, history 1, bucket TTL `ttlMs`):
 *   n.<b64url node id>  JSON SessionRecord, written by the replica holding the
 *                       node's session at connect and every ttl/3 after
 *                       (refresh), deleted at disconnect by a revision-checked
 *                       delete (a newer record of another replica stays).
 *
 * Every replica watches the bucket into memory. A record not refreshed for
 * `ttlMs` (its replica died without deleting) is no longer listed: expiry by
 * max age is not seen by a watch, so staleness is judged by when this replica
 * last received the record, not by anyone's clock. A node that reconnects to
 * another replica is listed there as soon as that replica's put arrives.
 */
import type { KV } from "@nats-io/kv";
import { Kvm } from "@nats-io/kv";
import type { Logger } from "pino";
import type { Ingest, Session } from "../ingest/ingest-service.js";
import type { ReplicaLink } from "./replica-link.js";

export const SESSIONS_BUCKET = "OW_SESSIONS";
const keyOf = (nodeId: string) => `n.${Buffer.from(nodeId).toString("base64url")}`;

/** One node's session as its replica published it. */
export interface SessionRecord {
  nodeId: string;
  replica: string;
  isp: string;
  region: string;
  origins: string[];
  /** When the session began (set by `add`; absent in records of older replicas). */
  connectedSinceMs?: number;
}

export interface SessionDirectoryOptions {
  /** Records not refreshed for this long are dropped (default 60 s; refresh every ttl/3). */
  ttlMs?: number;
  bucket?: string;
}

export interface SessionDirectory {
  /** Publish (or refresh) a session this replica holds. */
  add(rec: Omit<SessionRecord, "replica">): Promise<void>;
  /** This replica no longer holds the node's session (a newer record of another replica stays). */
  remove(nodeId: string): Promise<void>;
  /** Live records of every replica, this one included. */
  list(): SessionRecord[];
  /** The live record of one node. */
  get(nodeId: string): SessionRecord | undefined;
  /** Stops the watch and the refresh. Idempotent. */
  close(): void;
}

export const DEFAULT_SESSION_TTL_MS = 60_000;

export async function openSessionDirectory(link: ReplicaLink, o: SessionDirectoryOptions = {}): Promise<SessionDirectory> {
  const ttlMs = o.ttlMs ?? DEFAULT_SESSION_TTL_MS;
  const kv: KV = await new Kvm(link.js).create(o.bucket ?? SESSIONS_BUCKET, { replicas: link.options.replicas, history: 1, ttl: ttlMs });
  const seen = new Map<string, { rec: SessionRecord; atMs: number }>();
  /** Our own records: node id → (record, revision we wrote, the first put while in flight). */
  type Mine = { rec: SessionRecord; revision: number; first?: Promise<void> };
  const mine = new Map<string, Mine>();
  const watch = await kv.watch({ key: "n.>" });
  let closed = false;
  void (async () => {
    for await (const e of watch) {
      const id = Buffer.from(e.key.slice(2), "base64url").toString();
      if (e.operation !== "PUT") {
        seen.delete(id);
        continue;
      }
      try {
        seen.set(id, { rec: e.json<SessionRecord>(), atMs: Date.now() });
      } catch {
        seen.delete(id); // not a record of ours: never listed, never stops the watch
      }
    }
  })().catch(() => {});
  const put = async (m: Mine) => {
    m.revision = await kv.put(keyOf(m.rec.nodeId), JSON.stringify(m.rec));
    seen.set(m.rec.nodeId, { rec: m.rec, atMs: Date.now() });
  };
  const refresher = setInterval(() => {
    for (const m of mine.values()) put(m).catch(() => {});
  }, Math.max(50, Math.floor(ttlMs / 3)));
  refresher.unref();
  const live = (s: { rec: SessionRecord; atMs: number } | undefined, now: number) => (s && now - s.atMs <= ttlMs ? s.rec : undefined);
  return {
    async add(r) {
      const rec: SessionRecord = { nodeId: r.nodeId, replica: link.replicaId, isp: r.isp, region: r.region, origins: [...r.origins], connectedSinceMs: r.connectedSinceMs ?? Date.now() };
      const m: Mine = { rec, revision: 0 };
      mine.set(rec.nodeId, m);
      m.first = put(m);
      await m.first;
    },
    async remove(nodeId) {
      const m = mine.get(nodeId);
      mine.delete(nodeId);
      if (!m) return;
      // A disconnect right after the connect: let the first put land, then delete it.
      await m.first?.catch(() => {});
      if (m.revision === 0) return;
      // Only our own record: a delete expecting our revision is refused once another replica wrote it.
      await kv.delete(keyOf(nodeId), { previousSeq: m.revision }).catch(() => {});
    },
    list() {
      const now = Date.now();
      return [...seen.values()].map((s) => live(s, now)).filter((r): r is SessionRecord => r !== undefined);
    },
    get: (nodeId) => live(seen.get(nodeId), Date.now()),
    close() {
      if (closed) return;
      closed = true;
      clearInterval(refresher);
      watch.stop();
    },
  };
}

/**
 * Keeps `directory` in step with this replica's sessions: published at
 * connect, removed at disconnect. Returns the unsubscribe.
 */
export function feedSessionDirectory(directory: SessionDirectory, ingest: Ingest, log: Logger): () => void {
  const failed = (node: string) => (err: unknown) => log.warn({ err, node }, "session directory write failed (retried by the refresh)");
  const up = (s: Session) => {
    const n = s.node;
    if (n) directory.add({ nodeId: n.nodeId, isp: n.isp, region: n.region, origins: s.hello?.origins ?? n.origins }).catch(failed(n.nodeId));
  };
  const down = (s: Session) => {
    if (s.node) directory.remove(s.node.nodeId).catch(failed(s.node.nodeId));
  };
  for (const s of ingest.sessions.values()) up(s);
  ingest.on("node-connected", up);
  ingest.on("node-disconnected", down);
  return () => {
    ingest.off("node-connected", up);
    ingest.off("node-disconnected", down);
  };
}
