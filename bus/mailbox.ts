/**
 * A FIFO mailbox drained by one consumer at a time: the heart of actor semantics. Items pushed
 * while a handler runs wait their turn; `pause()` holds delivery (during a supervisor restart).
 */
export class Mailbox<T> {
  private readonly queue: T[] = [];
  private head = 0;
  private running = false;
  private paused = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly handle: (item: T) => Promise<void>) {}

  get size(): number {
    return this.queue.length - this.head;
  }

  push(item: T): void {
    this.queue.push(item);
    if (!this.running && !this.paused) void this.pump();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    if (!this.running) void this.pump();
  }

  /** Resolves once every queued item has been handled. */
  idle(): Promise<void> {
    if (!this.running && this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async pump(): Promise<void> {
    this.running = true;
    while (!this.paused && this.head < this.queue.length) {
      const item = this.queue[this.head]!;
      this.queue[this.head++] = undefined as T;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      await this.handle(item);
    }
    this.running = false;
    if (this.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
