/**
 * OW_STATUS writes and reads (issue 16), an in-process central on a real
 * nats-server: while traffic keeps an origin's totals moving, its record is
 * rewritten at the refresh cadence, not every second; once traffic stops its
 * totals are written exactly; a second replica reads the record on demand
 * and answers the same totals and state.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { jetstream } from "@nats-io/jetstream";
import { KvWatchInclude, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { type Central, startCentral } from "../main.js";
import { validateNatsOptions } from "./nats-options.js";
import { type OriginStatusRecord, STATUS_BUCKET, statusKey } from "./origin-status.js";
import { IngestStream, batch, hello, win } from "../../tools/test/ingest-client.js";
import { type NatsCluster, startNatsCluster } from "../../tools/nats/nats-cluster.js";
import { requireNats } from "../../tools/nats/require-nats.js";
import { eventually } from "../../tools/test/proc.js";

const ORIGIN = "busy.example";
const P = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (requireNats("origin status")) {
  let dir = "";
  let nats: NatsCluster;
  let nc: NatsConnection | undefined;
  const centrals: Central[] = [];

  const start = async (i: number) => {
    const o = validateNatsOptions({ servers: nats.urls, user: nats.user.user, replicas: 1, partitions: P }, { ORIGINWATCH_NATS_PASSWORD: nats.user.password });
    const c = await startCentral({ listen: "127.0.0.1:0", data: join(dir, `c${i}`) }, pino({ level: "silent" }), { nats: o, replicaId: `s${i}` });
    centrals.push(c);
    return c;
  };

  test.before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ow-cl-status-"));
    nats = await startNatsCluster({ servers: 1 });
    await nats.ready();
  });

  test.after(async () => {
    for (const c of centrals) await c.close();
    await nc?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("a busy origin's record is rewritten every few seconds, not every second; exact once traffic stops; read on demand by another replica", async () => {
    const a = await start(0);
    await eventually(() => a.cluster!.owner!.partitions().live.length === P, 20_000);
    nc = await nats.connect();
    const kv = await new Kvm(jetstream(nc)).open(STATUS_BUCKET);
    const puts: OriginStatusRecord[] = [];
    const watch = await kv.watch({ key: statusKey(ORIGIN), include: KvWatchInclude.UpdatesOnly });
    void (async () => {
      for await (const e of watch) if (e.operation === "PUT") puts.push(e.json<OriginStatusRecord>());
    })();

    const s = new IngestStream(a.address);
    await s.send(hello("edge-1", [ORIGIN]));
    await s.until((m) => m.some((x) => x.kind.case === "welcome"));
    let seq = 0n;
    let sent = 0n;
    const send = async () => {
      seq++;
      sent += 5n;
      await s.send(batch(seq, { windows: [win(ORIGIN, { ok: 5n })] }));
    };
    // Until the owner has published a verdict (the first writes: the record appears, NO_DATA -> HEALTHY).
    await eventually(async () => {
      await send();
      return puts.some((r) => r.verdict?.state === 2);
    }, 20_000, 100);
    await sleep(1_500); // let the writes of that change land before counting
    const before = puts.length;
    const t0 = Date.now();
    while (Date.now() - t0 < 8_000) {
      await send();
      await sleep(100);
    }
    const during = puts.length - before;
    // Per-second writes would be ~8 here; the 5 s refresh gives 1-2 (a stall of a whole second can add a settled write).
    assert.ok(during <= 4, `${during} writes of a busy origin's record in 8 s: ${puts.slice(before).map((r) => r.requests).join(", ")}`);
    await s.until(() => s.acks().includes(seq), 20_000);

    // Traffic stops: the totals settle and are written, exactly.
    await eventually(() => puts.at(-1)?.requests === sent.toString(), 15_000).catch(() => {
      throw new Error(`last record ${puts.at(-1)?.requests}, sent ${sent}`);
    });
    s.close();

    // Another replica reads the record when asked (GetOrigin reads its key, the lists the bucket).
    const b = await start(1);
    await b.cluster!.status.origin(ORIGIN);
    assert.is(b.query.totals.get(ORIGIN)?.requests, sent);
    await b.cluster!.status.all();
    assert.is(b.cluster!.records.get(ORIGIN)?.verdict?.state, 2);
    watch.stop();
  });

  test.run();
}
