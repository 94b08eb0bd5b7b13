/**
 * The least NATS permissions a central replica needs in cluster mode (issue
 * 16), in one place: the README's server config example and the tests that
 * prove them (nats-permissions.test.ts) both read this list. Put the central's
 * user in an account of its own with JetStream enabled: `$JS.API.>` then
 * reaches only that account's streams.
 */
export const CENTRAL_NATS_PERMISSIONS = {
  publish: [
    // the window log (window-log.ts)
    "ow.win.>",
    // the events stream (event-log.ts)
    "ow.evt",
    // JetStream API: stream, consumer and KV management, pull requests, direct gets
    "$JS.API.>",
    // acks (and "still working") of the webhook notify consumer (webhook-notifier.ts)
    "$JS.ACK.OW_EVENTS.>",
    // KV writes: leases, config, snapshots (partition-lease.ts, config-kv.ts, snapshot.ts)
    "$KV.OW_LEASES.>",
    "$KV.OW_CONFIG.>",
    "$KV.OW_SNAPSHOTS.>",
    // session directory and probes to other replicas (session-directory.ts, probe-relay.ts)
    "$KV.OW_SESSIONS.>",
    "ow.probe.>",
    // GetOrigin's breakdown asked of the partition's owner (origin-breakdown.ts)
    "ow.query.>",
    // FlushWindows requests to the other replicas' sessions (flush-relay.ts)
    "ow.flush",
    // the ingest's per-node marks and the owners' per-origin status (cluster-sink.ts, origin-status.ts)
    "$KV.OW_NODES.>",
    "$KV.OW_STATUS.>",
    // delivered webhook dedupe keys (webhook-notifier.ts)
    "$KV.OW_NOTIFIED.>",
    // flow-control replies of KV watches and ordered consumers (sent only under load)
    "$JS.FC.>",
  ],
  // replies to requests and consumer deliveries all come to the connection's inbox
  // ow.probe.<replica id>: the probe requests this replica answers
  // ow.query.<replica id>: the breakdown requests this replica answers; ow.flush: flush requests of the other replicas
  subscribe: ["_INBOX.>", "ow.probe.>", "ow.query.>", "ow.flush"],
  // a replica answers a probe or breakdown request on its reply subject (nothing else in _INBOX.>)
  allowResponses: true,
} as const;
