/**
 * A server-wide cap on concurrent streams of one kind (Health.Watch,
 * reflection). The per-session HTTP/2 stream cap bounds one connection; this
 * bounds them all. Over the cap a new stream is refused with
 * RESOURCE_EXHAUSTED and counted; acquire() returns the release function,
 * which is idempotent.
 */
import { CentralError } from "../errors.js";

export class StreamLimit {
  private open = 0;
  /** Streams refused because the cap was reached. */
  refused = 0;

  constructor(
    readonly what: string,
    readonly max: number,
    private readonly flag: string,
  ) {}

  active(): number {
    return this.open;
  }

  /** Throws a ConnectError (RESOURCE_EXHAUSTED) over the cap. */
  acquire(): () => void {
    if (this.open >= this.max) {
      this.refused++;
      throw new CentralError("CENTRAL_TOO_MANY_STREAMS", `too many concurrent ${this.what} streams (limit ${this.max}, ${this.flag}); retry later`).toConnectError();
    }
    this.open++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.open--;
    };
  }
}
