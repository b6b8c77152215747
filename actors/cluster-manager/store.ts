/**
 * The cluster manager's durable state in a JetStream key-value bucket `crane-<cluster>-state`:
 *   user.<name>      UserRecord (with its scrypt hash)
 *   token.<sha256>   { username, expiresAt }   (tokens are kept hashed: the bus never sees them)
 *   job.<id>         JobRecord
 *   node.<name>      RegisterNode (so a new cluster manager knows which nodes to wait for)
 *   acct.<id>        AccountRecord: the GPU-time of a removed job (user, name, segments)
 * Writes are coalesced per key and flushed after each message the cluster manager handles, before
 * it replies, so an answered request survives a restart of the cluster manager.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { decode, encode } from '../../bus/codec.js';
import { CraneError } from '../../bus/errors.js';

export class StateStore {
  private readonly pending = new Map<string, unknown | null>();
  private flushing?: Promise<void>;

  private constructor(
    readonly kv: KV,
    private readonly name: string,
  ) {}

  static bucketName(cluster: string): string {
    return `crane-${cluster}-state`;
  }

  /** Opens the cluster's bucket, or creates it. `replicas` > 1 needs that many JetStream servers. */
  static async open(nc: NatsConnection, cluster: string, replicas = 1): Promise<StateStore> {
    const kvm = new Kvm(nc);
    const name = StateStore.bucketName(cluster);
    // A handle is not an answer: status() makes JetStream say whether the bucket exists.
    const opened = await kvm.open(name).then(async (kv) => (await kv.status(), kv)).catch(() => undefined);
    const kv = opened ?? (await kvm.create(name, { history: 1, replicas }));
    if (!opened) await kv.status();
    return new StateStore(kv, name);
  }

  /** Retries `open` until JetStream answers (an HA cluster's JetStream needs two servers). */
  static async openWhenReady(nc: NatsConnection, cluster: string, log: { info(o: object, m: string): void }): Promise<StateStore> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await StateStore.open(nc, cluster);
      } catch (err) {
        if (attempt === 1 || attempt % 30 === 0) log.info({ err: String(err) }, 'waiting for JetStream');
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  /**
   * Every key's last value, trying again while JetStream cannot serve a reader: right after a
   * manager host is lost, a new reader (a consumer) may be placed on the lost server and time out
   * until JetStream marks it offline. Short attempts find a live server sooner than one long one.
   */
  async loadWhenReady(nc: NatsConnection, log: { warn(o: object, m: string): void }, forMs = 60_000): Promise<Map<string, unknown>> {
    const quick = await new Kvm(jetstream(nc, { timeout: 1_500 })).open(this.name);
    const end = Date.now() + forMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.load(10_000, quick);
      } catch (err) {
        if (Date.now() > end) throw err;
        log.warn({ err: String(err), attempt }, 'could not read the state yet; trying again');
      }
    }
  }

  /** Every key's last value. */
  async load(timeoutMs = 15_000, kv = this.kv): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    const status = await kv.status();
    if (status.values === 0) return out;
    const iter = await kv.watch({ key: '>' });
    const timer = setTimeout(() => iter.stop(), timeoutMs);
    try {
      for await (const e of iter) {
        if (e.operation === 'PUT') out.set(e.key, decode(e.value));
        else out.delete(e.key);
        if (!e.delta) break;
      }
    } finally {
      clearTimeout(timer);
      iter.stop();
    }
    return out;
  }

  put(key: string, value: unknown): void {
    this.pending.set(key, value);
  }

  del(key: string): void {
    this.pending.set(key, null);
  }

  get dirty(): boolean {
    return this.pending.size > 0;
  }

  /** Writes what changed since the last flush (the last value of each key); one flush at a time. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (this.pending.size === 0) return Promise.resolve();
    const batch = [...this.pending];
    this.pending.clear();
    const write = ([k, v]: [string, unknown]) => (v === null ? this.kv.purge(k) : this.kv.put(k, encode(v)).then(() => {}));
    this.flushing = retrying(() => Promise.all(batch.map(write)), FLUSH_RETRY_MS)
      .then(
        () => {},
        (err) => {
          // Keep what did not land (unless a newer value came meanwhile); the next flush retries.
          for (const [k, v] of batch) if (!this.pending.has(k)) this.pending.set(k, v);
          throw new CraneError('unavailable', `the cluster state store is unavailable: ${(err as Error).message}`);
        },
      )
      .finally(() => (this.flushing = undefined));
    return this.flushing;
  }
}

/**
 * How long a flush keeps trying while JetStream cannot take writes: a stream's leader moving
 * (a manager host lost, replicas added) makes it refuse them for a moment.
 */
const FLUSH_RETRY_MS = 8_000;

async function retrying<T>(fn: () => Promise<T>, forMs: number): Promise<T> {
  const end = Date.now() + forMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 1_000)) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() + delay > end) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
