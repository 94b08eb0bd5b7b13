/**
 * Webhooks from the cluster's one notify consumer (issue 16), on a real
 * 3-server nats cluster with 3 in-process centrals, all started with the same
 * `--webhook` (a real HTTP receiver):
 * - an incident opened by one owner and closed by the next one (the first
 *   abandoned in between: its NATS connection cut, as a crash looks to the
 *   cluster) reaches the receiver exactly once per event;
 * - a transition decided twice (what a new owner does when its predecessor
 *   died before the snapshot that recorded it: another event id, the same
 *   dedupe key) is sent once;
 * - the replica delivering a webhook abandoned mid-delivery: another replica
 *   sends it after the ack wait (at least once; the dedupe key is the same).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { EventKind, IncidentKind } from "../../proto/gen/originwatch/v1/query_pb.js";
import type { WebhookPayload } from "../alerts/webhook.js";
import type { PostableAlert } from "../alerts/alertmanager.js";
import type { IncidentRecord } from "../verdict/hysteresis.js";
import type { EventRecord } from "../verdict/verdict-store.js";
import { FakeSidecar } from "../../tools/scenarios/fake-sidecar.js";
import { type NatsCluster, startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { type InProcessReplicas, startInProcessReplicas } from "../../tools/nats/in-process-replicas.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { eventually } from "../../tools/test/proc.js";
import { EVENTS_STREAM, EVENTS_SUBJECT, eventId } from "./event-log.js";
import { partitionOf } from "./partition.js";
import { notifyConsumerName } from "./webhook-notifier.js";
import { CENTRAL_NATS_PERMISSIONS } from "./nats-permissions.js";

const P = 4;
const ORIGIN = "shop.example";
const ACK_WAIT_MS = 2_000;

interface Hit {
  key: string;
  body: WebhookPayload;
  answered: boolean;
}

/**
 * A webhook receiver: records every POST; holds (never answers) the first POST of a key listed in `hold`.
 * Also an Alertmanager (`<url>/am/api/v2/alerts`): records each POST's alerts with when it came.
 */
async function startReceiver() {
  const hits: Hit[] = [];
  const alerts: Array<{ atMs: number; alert: PostableAlert }> = [];
  const hold = new Set<string>();
  const held: ServerResponse[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (req.url === "/am/api/v2/alerts") {
        for (const alert of JSON.parse(body) as PostableAlert[]) alerts.push({ atMs: Date.now(), alert });
        res.writeHead(200).end();
        return;
      }
      const key = String(req.headers["idempotency-key"]);
      const hit: Hit = { key, body: JSON.parse(body) as WebhookPayload, answered: false };
      hits.push(hit);
      if (hold.delete(key)) {
        held.push(res);
        return;
      }
      hit.answered = true;
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    alertmanager: `http://127.0.0.1:${(server.address() as AddressInfo).port}/am`,
    alerts,
    hits,
    hold,
    close() {
      for (const r of held) r.destroy();
      server.closeAllConnections();
      server.close();
    },
  };
}

if (requireNats("webhook notifier")) {
  let nats: NatsCluster;
  let nc: NatsConnection;
  let replicas: InProcessReplicas;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const sidecars: FakeSidecar[] = [];

  const live = () => replicas.centrals.map((_, i) => i).filter((i) => !replicas.cutOff.has(i));
  const consumerIdle = async () => {
    const info = await (await jetstreamManager(nc)).consumers.info(EVENTS_STREAM, notifyConsumerName(receiver.url));
    return info.num_pending === 0 && info.num_ack_pending === 0;
  };
  const incident = (over: Partial<IncidentRecord> = {}): IncidentRecord => ({
    id: "inc-direct",
    kind: IncidentKind.ORIGIN_DOWN,
    origin: "direct.example",
    scopeKey: "",
    openedMs: Date.now() - 60_000,
    closedMs: Date.now(),
    open: false,
    flapping: false,
    reopenCount: 0,
    peakFailureRatio: 1,
    peakP95TtfbMs: 0,
    dedupeKey: "direct.example/origin/inc-direct",
    summary: "down",
    ...over,
  });
  /** Publishes an event to OW_EVENTS as an owner does (msgID = its id); returns the id. */
  const publish = async (e: Omit<EventRecord, "id">) => {
    const id = eventId(e);
    await jetstream(nc).publish(EVENTS_SUBJECT, JSON.stringify({ ...e, id }), { msgID: id, expect: { streamName: EVENTS_STREAM } });
    return id;
  };
  const closeEvent = (inc: IncidentRecord, timeMs: number): Omit<EventRecord, "id"> => ({
    timeMs, kind: EventKind.INCIDENT_CLOSED, origin: inc.origin, previousState: 4, state: 2, faults: [], incident: inc, nodeId: "", message: "closed",
  });

  test.before(async () => {
    receiver = await startReceiver();
    // As the user of the least permissions (nats-permissions.ts): acks and OW_NOTIFIED included.
    nats = await startNatsCluster({ servers: 3, users: [{ user: "central", password: "pw-central-0123", permissions: CENTRAL_NATS_PERMISSIONS }] });
    await nats.ready();
    nc = await nats.connect();
    replicas = await startInProcessReplicas(nats, 3, {
      // Alertmanager re-sends far apart: what reaches it after a takeover is the new owner's state, not a round.
      central: { webhook: receiver.url, alertmanagers: [receiver.alertmanager], alertmanagerResendMs: 600_000, lookbackMs: 2000, evalIntervalMs: 200 },
      nats: { leaseTtlMs: 4000, partitions: P },
      start: { notifyAckWaitMs: ACK_WAIT_MS },
    });
  });

  test.after(async () => {
    for (const s of sidecars) s.close();
    receiver?.close(); // first: a delivery still retrying on an abandoned replica ends at once
    await replicas?.close();
    await nc?.close().catch(() => undefined);
    await nats?.stop();
  });

  test("an incident opened by one owner and closed by the next (the first abandoned in between) reaches the receiver once per event; Alertmanager hears it firing from the next owner at once, then resolved", async () => {
    const p = partitionOf(ORIGIN, P);
    await replicas.settled();
    const owner = replicas.ownerOf(p)!;
    const feeder = live().find((i) => i !== owner)!;
    let down = false;
    for (const isp of ["isp-a", "isp-b", "isp-c"]) {
      for (const region of ["eu", "us"]) {
        const s = new FakeSidecar({ address: replicas.centrals[feeder].address, nodeId: `${isp}-${region}`, isp, region, origins: [ORIGIN], traffic: () => (down ? { connectRefused: 4 } : { ok: 4 }) });
        s.start();
        sidecars.push(s);
      }
    }
    // As the feeder's GetOrigin reads it (OW_STATUS, read on demand).
    const record = async () => {
      await replicas.centrals[feeder].cluster!.status.origin(ORIGIN);
      return replicas.centrals[feeder].cluster!.records.get(ORIGIN);
    };
    await eventually(async () => (await record())?.verdict?.state === 2, 20_000); // HEALTHY
    down = true;
    const opened = (await eventually(() => receiver.hits.find((h) => h.body.origin === ORIGIN && h.body.action === "opened"), 20_000))!;
    // The open is acked before the owner goes (so nothing of it is in flight on the abandoned replica).
    await eventually(consumerIdle, 10_000);
    const cutAt = Date.now();
    await replicas.cut(owner);
    await eventually(() => replicas.ownerOf(p) !== undefined, 20_000);
    const ourAlert = (a: PostableAlert) => a.labels.origin === ORIGIN && a.labels.alertname === "OriginDown" && a.annotations.incident_id === opened.body.incident_id;
    const firing = await eventually(() => receiver.alerts.find((x) => x.atMs > cutAt && ourAlert(x.alert)), 15_000).catch((e: Error) => {
      const seen = receiver.alerts.filter((x) => x.atMs > cutAt).map((x) => `${x.alert.labels.alertname} ${x.alert.annotations.incident_id} endsAt ${x.alert.endsAt}`);
      throw new Error(`${e.message}; incident ${opened.body.incident_id}; alerts after the cut: ${seen.join(" | ") || "none"}; owner now r${replicas.ownerOf(p)}`);
    });
    assert.ok(Date.parse(firing!.alert.endsAt!) > Date.now(), "the next owner's alert fires");
    down = false;
    const closed = (await eventually(() => receiver.hits.find((h) => h.body.origin === ORIGIN && h.body.action === "closed"), 30_000))!;
    await eventually(consumerIdle, 10_000);
    // A repeat would come within an ack wait of the last delivery: give it twice that.
    await new Promise((r) => setTimeout(r, 2 * ACK_WAIT_MS));
    const mine = receiver.hits.filter((h) => h.body.origin === ORIGIN);
    assert.equal(mine.map((h) => h.body.action), ["opened", "closed"], "exactly one webhook per event, open before close");
    assert.is(closed.body.incident_id, opened.body.incident_id, "the next owner closed the same incident");
    assert.ok(opened.body.event_id && closed.body.event_id && opened.body.event_id !== closed.body.event_id, "each names its event");
    assert.is(new Set(mine.map((h) => h.key)).size, 2);
    // The fleet is done: a replica cut later must not be left retrying its publishes (ref'd timers, 30 s).
    for (const sc of sidecars.splice(0)) sc.close();
    // Resolved: endsAt no later than when it arrived.
    await eventually(() => receiver.alerts.some((x) => x.atMs > cutAt && ourAlert(x.alert) && Date.parse(x.alert.endsAt!) <= x.atMs), 10_000);
  });

  test("a transition decided twice (other event id, same dedupe key) is sent once", async () => {
    const before = receiver.hits.length;
    const inc = incident();
    const first = await publish(closeEvent(inc, Date.now() - 1000));
    const second = await publish(closeEvent({ ...inc, closedMs: Date.now() }, Date.now()));
    assert.is.not(first, second);
    await eventually(() => receiver.hits.length > before, 15_000);
    await eventually(consumerIdle, 15_000);
    await new Promise((r) => setTimeout(r, ACK_WAIT_MS));
    const got = receiver.hits.slice(before);
    assert.is(got.length, 1, `one POST, got ${got.map((h) => h.body.event_id).join(",")}`);
    assert.is(got[0].body.event_id, first);
    assert.is(got[0].key, `${inc.dedupeKey}/close/0`);
  });

  test("the replica delivering a webhook abandoned mid-delivery: another replica sends it after the ack wait", async () => {
    const inc = incident({ id: "inc-mid", dedupeKey: "direct.example/origin/inc-mid" });
    const key = `${inc.dedupeKey}/close/0`;
    receiver.hold.add(key);
    const before = receiver.hits.length;
    const delivered0 = replicas.centrals.map((c) => c.cluster!.webhook!.delivered);
    await publish(closeEvent(inc, Date.now()));
    await eventually(() => receiver.hits.length > before, 10_000);
    const sending = await eventually(() => live().find((i) => replicas.centrals[i].cluster!.webhook!.pending() > 0), 5_000);
    assert.ok(sending !== undefined, "one replica is delivering");
    await replicas.cut(sending!);
    const taken = (await eventually(() => receiver.hits.slice(before).find((h) => h.answered), 20_000))!;
    assert.is(taken.key, key, "the same dedupe key: the receiver can drop a repeat");
    assert.ok(live().some((i) => replicas.centrals[i].cluster!.webhook!.delivered > delivered0[i]), "delivered by a replica still in the cluster");
    assert.ok(receiver.hits.slice(before).every((h) => h.key === key && h.body.event_id === taken.body.event_id));
  });

  test.run();
}
