/**
 * An unbounded single-consumer async queue: the outbound side of a session
 * (acks, config pushes, probe requests) that a streaming handler yields from.
 * close(err) ends iteration, throwing err to the consumer when given.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private wake: (() => void) | undefined;
  private done = false;
  private error: unknown;

  push(item: T): boolean {
    if (this.done) return false;
    this.items.push(item);
    this.wake?.();
    return true;
  }

  close(error?: unknown): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    this.wake?.();
  }

  get closed(): boolean {
    return this.done;
  }

  get size(): number {
    return this.items.length;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.items.length > 0) {
        yield this.items.shift() as T;
        continue;
      }
      if (this.done) {
        if (this.error !== undefined) throw this.error;
        return;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}
