import { test } from "uvu";
import * as assert from "uvu/assert";
import { EventHub, SlowWatcherError } from "./event-hub.js";
import type { EventRecord } from "./verdict-store.js";

const ev = (origin: string, id: string): EventRecord => ({ id, timeMs: 0, kind: 1, origin, previousState: 0, state: 0, faults: [], nodeId: "", message: "" });

test("a watcher gets the events that match its filter, in order, from now on", async () => {
  const hub = new EventHub();
  hub.publish(ev("a", "0"));
  const w = hub.watch((e) => e.origin === "a");
  hub.publish(ev("a", "1"));
  hub.publish(ev("b", "2"));
  hub.publish(ev("a", "3"));
  const got: string[] = [];
  for await (const e of w) {
    got.push(e.id);
    if (got.length === 2) break;
  }
  assert.equal(got, ["1", "3"]);
  assert.is(hub.size, 0, "breaking out of the loop unsubscribes");
});

test("a watcher that falls too far behind is closed with an error telling it to reconnect", async () => {
  const hub = new EventHub(3);
  const w = hub.watch();
  for (let i = 0; i < 5; i++) hub.publish(ev("a", String(i)));
  const got: string[] = [];
  let err: unknown;
  try {
    for await (const e of w) got.push(e.id);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof SlowWatcherError);
  assert.equal(got, ["0", "1", "2"]);
  assert.is(hub.size, 0);
});

test("close() ends a waiting watcher", async () => {
  const hub = new EventHub();
  const w = hub.watch();
  setTimeout(() => w.close(), 10);
  const got: EventRecord[] = [];
  for await (const e of w) got.push(e);
  assert.is(got.length, 0);
});

test.run();
