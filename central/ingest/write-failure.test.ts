/**
 * Exactly-once across a failed write (issue 10 item 7), on a real central with
 * its real LevelDB store wrapped so that the next N writes fail (as a full
 * disk or an I/O error would): the batches in the failed write are not
 * acknowledged, their streams end with UNAVAILABLE, nothing moves in memory,
 * and the sidecar's replay is counted exactly once, also after a restart.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import pino from "pino";
import { IngestStream, batch, hello, win } from "../../tools/test/ingest-client.js";
import { type Central, startCentral } from "../main.js";

let dir = "";
let central: Central;

/**
 * The next n writes of the real store fail (after delayMs, so that more
 * batches queue behind them); with onlyBatches, only writes that count batches.
 */
function failWrites(c: Central, n: number, delayMs = 0, onlyBatches = false): void {
  const real = c.store.writeCounted.bind(c.store);
  let left = n;
  c.store.writeCounted = async (...args: Parameters<typeof real>) => {
    if (left > 0 && (!onlyBatches || args[0].size > 0)) {
      left--;
      if (delayMs) await sleep(delayMs);
      throw Object.assign(new Error("IO error: No space left on device (injected)"), { code: "LEVEL_IO_ERROR" });
    }
    return real(...args);
  };
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ow-writefail-"));
  central = await startCentral({ listen: "127.0.0.1:0", data: dir }, pino({ level: "silent" }));
});

test.after(async () => {
  await central.close();
  await rm(dir, { recursive: true, force: true });
});

const totals = () => central.query.totals.get("w.example");

test("a failed write: no ack, the stream ends UNAVAILABLE, nothing moves; the replay counts exactly once, also after a restart", async () => {
  const s1 = new IngestStream(central.address);
  await s1.send(hello("wf-1", ["w.example"]), batch(1, { windows: [win("w.example", { ok: 1n })] }), batch(2, { windows: [win("w.example", { ok: 2n })] }));
  await s1.until(() => s1.acks().includes(2n));
  assert.is(totals()!.requests, 3n);

  // The next write fails after 100 ms; seq 4 queues behind seq 3 meanwhile and must not be written over the lost 3.
  failWrites(central, 1, 100);
  await s1.send(batch(3, { windows: [win("w.example", { ok: 4n, serverError: 1n })] }));
  await sleep(20);
  await s1.send(batch(4, { windows: [win("w.example", { ok: 8n })] }));
  const end = await s1.ended;
  assert.is(end.code, grpc.status.UNAVAILABLE);
  assert.match(end.details, /storage unavailable/);
  assert.equal(s1.acks(), [1n, 2n], "nothing in the failed write is acknowledged");
  assert.is(totals()!.requests, 3n, "nothing of the failed write reached the totals");
  assert.is(central.store && (await central.store.loadHighWater()).get("wf-1"), 2n);
  assert.is(central.ingest.stats().failedWrites, 1);
  s1.close();

  // The sidecar reconnects: the welcome names the durable mark, and it replays 3 and 4.
  const s2 = new IngestStream(central.address);
  await s2.send(hello("wf-1", ["w.example"]));
  const got = await s2.until((g) => g.length >= 1);
  assert.is((got[0].kind.value as { highWaterSeq: bigint }).highWaterSeq, 2n);
  await s2.send(batch(3, { windows: [win("w.example", { ok: 4n, serverError: 1n })] }), batch(4, { windows: [win("w.example", { ok: 8n })] }));
  await s2.until(() => s2.acks().includes(4n));
  assert.is(totals()!.requests, 16n, "3 + (4 ok + 1 5xx) + 8");
  assert.is(totals()!.failures, 1n);
  s2.close();

  await central.close();
  central = await startCentral({ listen: "127.0.0.1:0", data: dir }, pino({ level: "silent" }));
  assert.is(totals()!.requests, 16n, "a restart reads back the exact totals");
  assert.is(central.query.totals.get("w.example")!.failures, 1n);
  const s3 = new IngestStream(central.address);
  await s3.send(hello("wf-1", ["w.example"]));
  const again = await s3.until((g) => g.length >= 1);
  assert.is((again[0].kind.value as { highWaterSeq: bigint }).highWaterSeq, 4n);
  s3.close();
});

test("a write failing under a hello ends that stream UNAVAILABLE; the retry is welcomed", async () => {
  failWrites(central, 1);
  const s = new IngestStream(central.address);
  await s.send(hello("wf-2", ["w.example"]));
  const end = await s.ended;
  assert.is(end.code, grpc.status.UNAVAILABLE);
  s.close();
  const retry = new IngestStream(central.address);
  await retry.send(hello("wf-2", ["w.example"]), batch(1, { windows: [win("w.example", { ok: 5n })] }));
  await retry.until(() => retry.acks().includes(1n));
  assert.is(totals()!.requests, 21n);
  retry.close();
});

test("writes failing for a while: a sidecar that keeps replaying ends with exact totals, and another node's stream is untouched while its writes succeed", async () => {
  const other = new IngestStream(central.address);
  await other.send(hello("wf-other", ["other.example"]));
  await other.until((g) => g.length >= 1);
  // Three failures in a row: the first replays fail too.
  failWrites(central, 3, 0, true);
  let attempts = 0;
  let sent = 0n;
  const base = totals()!.requests;
  let welcomedAt = 4n;
  for (let attempt = 0; attempt < 10; attempt++) {
    attempts++;
    const s = new IngestStream(central.address);
    await s.send(hello("wf-1", ["w.example"]));
    const end = s.ended.then((e) => e);
    const first = await Promise.race([s.until((g) => g.length >= 1).then(() => undefined), end]);
    if (first) {
      s.close();
      continue; // the hello's write failed: reconnect
    }
    welcomedAt = (s.received[0].kind.value as { highWaterSeq: bigint }).highWaterSeq;
    // Replay from the durable mark: the batches are deterministic (seq n carries n requests).
    for (let n = welcomedAt + 1n; n <= 8n; n++) await s.send(batch(n, { windows: [win("w.example", { ok: n })] }));
    const done = await Promise.race([s.until(() => s.acks().includes(8n)).then(() => true), end.then(() => false)]);
    s.close();
    if (done) break;
  }
  for (let n = 5n; n <= 8n; n++) sent += n;
  assert.is(attempts, 4, "three streams ended by failed writes, the fourth went through");
  assert.is(welcomedAt >= 4n, true);
  assert.is(totals()!.requests, base + sent, "every batch counted exactly once");
  // The other node had no batch in the failed writes: its stream is still up and counts.
  await other.send(batch(1, { windows: [win("other.example", { ok: 3n })] }));
  await other.until(() => other.acks().includes(1n));
  assert.is(central.query.totals.get("other.example")!.requests, 3n);
  other.close();
});

test.run();
