import { createInbox, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { decode, encode } from './codec.js';
import { CraneError, isErrorCode } from './errors.js';
import { craneHeaders, H } from './headers.js';

/**
 * Streams (log follow, job wait) flow from a producer actor straight to the consumer's inbox:
 * `stream.item`* then `stream.end` or `stream.error`. The producer pings the inbox with a request
 * every PING_MS; no answer means the consumer is gone and the writer closes. The consumer gives up
 * when it hears nothing (not even a ping) for IDLE_MS: the producer died.
 */
export const PING_MS = 5_000;
export const IDLE_MS = 3 * PING_MS;

export class StreamWriter {
  private closed = false;
  private readonly closeHandlers: Array<() => void> = [];
  private readonly ping: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    readonly inbox: string,
    private readonly from: string,
    private readonly trace: string,
  ) {
    this.ping = setInterval(() => {
      this.nc
        .request(inbox, new Uint8Array(), { timeout: 2_000, headers: craneHeaders('stream.ping', from, trace) })
        .catch(() => this.close());
    }, PING_MS);
    this.ping.unref();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onClose(cb: () => void): void {
    if (this.closed) cb();
    else this.closeHandlers.push(cb);
  }

  write(item: unknown): void {
    if (!this.closed) this.publish('stream.item', item);
  }

  end(final?: unknown): void {
    if (this.closed) return;
    this.publish('stream.end', final ?? null);
    this.close();
  }

  fail(err: CraneError): void {
    if (this.closed) return;
    this.publish('stream.error', { message: err.message }, { [H.error]: err.code });
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ping);
    for (const cb of this.closeHandlers.splice(0)) cb();
  }

  private publish(type: string, body: unknown, extra?: Record<string, string>): void {
    if (this.nc.isClosed()) return this.close();
    this.nc.publish(this.inbox, encode(body), { headers: craneHeaders(type, this.from, this.trace, extra) });
  }
}

export interface StreamReader {
  inbox: string;
  /** Items in order; the iterator ends after `stream.end` (whose body, if any, is the last item). */
  items: AsyncIterable<unknown>;
  close(): void;
}

/** The consumer side: subscribe to a fresh inbox before asking the producer to stream to it. */
export function openStreamReader(nc: NatsConnection, prefix = '_INBOX'): StreamReader {
  const inbox = createInbox(prefix);
  const sub: Subscription = nc.subscribe(inbox);
  const close = () => sub.unsubscribe();
  async function* items(): AsyncGenerator<unknown> {
    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => sub.unsubscribe(), IDLE_MS);
    };
    armIdle();
    let ended = false;
    try {
      for await (const m of sub) {
        armIdle();
        const type = m.headers?.get(H.type);
        if (type === 'stream.ping') {
          m.respond(new Uint8Array());
          continue;
        }
        if (type === 'stream.error') {
          const code = m.headers?.get(H.error);
          throw new CraneError(isErrorCode(code) ? code : 'internal', decode<{ message: string }>(m.data)?.message ?? 'stream failed');
        }
        const body = decode(m.data);
        if (type === 'stream.end') {
          ended = true;
          if (body !== null && body !== undefined) yield body;
          return;
        }
        yield body;
      }
      if (!ended) throw new CraneError('unavailable', 'the stream producer went away');
    } finally {
      clearTimeout(idle);
      sub.unsubscribe();
    }
  }
  return { inbox, items: items(), close };
}
