/**
 * Fan-out of events to live watchers (QueryService.WatchEvents). Each watcher
 * has a bounded queue: a watcher that falls more than `maxQueued` events
 * behind is closed with an error telling it to reconnect, so one slow client
 * cannot hold the central's memory.
 */
import type { EventRecord } from "./verdict-store.js";

export class SlowWatcherError extends Error {
  constructor(readonly dropped: number) {
    super(`watcher fell more than ${dropped} events behind; reconnect to resume`);
    this.name = "SlowWatcherError";
  }
}

export interface Watcher extends AsyncIterable<EventRecord> {
  close(): void;
}

export class EventHub {
  private watchers = new Set<{ push(e: EventRecord): void }>();

  constructor(private maxQueued = 10_000) {}

  get size(): number {
    return this.watchers.size;
  }

  publish(e: EventRecord): void {
    for (const w of this.watchers) w.push(e);
  }

  /** A live feed of events matching `filter`, from now on. */
  watch(filter: (e: EventRecord) => boolean = () => true): Watcher {
    const items: EventRecord[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    let error: unknown;
    const hub = this;
    const sub = {
      push(e: EventRecord) {
        if (done || !filter(e)) return;
        if (items.length >= hub.maxQueued) {
          error = new SlowWatcherError(hub.maxQueued);
          close();
          return;
        }
        items.push(e);
        wake?.();
      },
    };
    const close = () => {
      done = true;
      hub.watchers.delete(sub);
      wake?.();
    };
    this.watchers.add(sub);
    return {
      close,
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            if (items.length > 0) {
              yield items.shift()!;
              continue;
            }
            if (done) {
              if (error) throw error;
              return;
            }
            await new Promise<void>((r) => (wake = r));
            wake = undefined;
          }
        } finally {
          close();
        }
      },
    };
  }
}
