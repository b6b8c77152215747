/**
 * The cluster manager's durable state in a JetStream key-value bucket `crane-<cluster>-state`:
 *   user.<name>      UserRecord (with its scrypt hash)
 *   token.<sha256>   { username, expiresAt }   (tokens are kept hashed: the bus never sees them)
 *   job.<id>         JobRecord
 *   node.<name>      RegisterNode (so a new cluster manager knows which nodes to wait for)
 * Writes are coalesced per key and flushed after each message the cluster manager handles, before
 * it replies, so an answered request survives a restart of the cluster manager.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { decode, encode } from '../../bus/codec.js';
import { CraneError } from '../../bus/errors.js';

export class StateStore {
  private readonly pending = new Map<string, unknown | null>();
  private flushing?: Promise<void>;

  private constructor(readonly kv: KV) {}

  static bucketName(cluster: string): string {
    return `crane-${cluster}-state`;
  }

  /** Opens (or creates) the cluster's bucket. `replicas` > 1 needs that many JetStream servers. */
  static async open(nc: NatsConnection, cluster: string, replicas = 1): Promise<StateStore> {
    const kv = await new Kvm(nc).create(StateStore.bucketName(cluster), { history: 1, replicas });
    return new StateStore(kv);
  }

  /** Every key's last value. */
  async load(timeoutMs = 15_000): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    const status = await this.kv.status();
    if (status.values === 0) return out;
    const iter = await this.kv.watch({ key: '>' });
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
    this.flushing = Promise.all(batch.map(([k, v]) => (v === null ? this.kv.purge(k) : this.kv.put(k, encode(v)).then(() => {}))))
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

