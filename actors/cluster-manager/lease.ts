/**
 * The cluster-manager lease: exactly one cluster manager is active, the one holding the key
 * `lease` in the cluster's state bucket. The holder renews it every `renewMs` with a
 * compare-and-set on the revision it wrote last. A candidate takes it over only when it has seen
 * the same revision for `ttlMs` of its own clock (no clock is compared across hosts), again with a
 * compare-and-set, so two candidates never both win. A holder that could not renew for
 * `ttlMs / 2` steps down before anyone else may take over.
 */
import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import { decode, encode } from '../../bus/codec.js';

export interface LeaseOptions {
  ttlMs?: number;
  renewMs?: number;
}

export interface LeaseValue {
  holder: string;
  at: number;
}

const KEY = 'lease';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export class Lease {
  private revision = 0;
  private stopped = false;
  private lastRenewed = 0;
  private renewer?: NodeJS.Timeout;
  readonly ttlMs: number;
  readonly renewMs: number;

  constructor(
    private readonly kv: KV,
    readonly holder: string,
    private readonly log: Logger,
    o: LeaseOptions = {},
  ) {
    this.ttlMs = o.ttlMs ?? 5_000;
    this.renewMs = o.renewMs ?? 1_000;
  }

  /** Who holds the lease now (undefined: nobody). */
  static async holder(kv: KV): Promise<string | undefined> {
    const e = await kv.get(KEY);
    return e?.operation === 'PUT' ? decode<LeaseValue>(e.value).holder : undefined;
  }

  /**
   * Resolves once this candidate holds the lease; `onLost` runs if it ever loses it. Without
   * `mayCreate` it never creates the lease, only takes one over (or one that was released): in an
   * HA cluster only the first manager (whose state is the cluster's) may start it.
   */
  async acquire(onLost: () => void, mayCreate = true): Promise<void> {
    let seen = { revision: -1, since: Date.now() };
    while (!this.stopped) {
      try {
        const e = await this.kv.get(KEY);
        const value = encode({ holder: this.holder, at: Date.now() } satisfies LeaseValue);
        if (!e || e.operation !== 'PUT') {
          // A lease released by its holder (a delete marker) may be taken by anyone; one that
          // never existed only by a candidate that may create it.
          if (!e && !mayCreate) {
            await sleep(this.renewMs / 2);
            continue;
          }
          this.revision = await this.kv.create(KEY, value);
        } else if (decode<LeaseValue>(e.value).holder === this.holder) {
          this.revision = await this.kv.update(KEY, value, e.revision);
        } else {
          if (e.revision !== seen.revision) seen = { revision: e.revision, since: Date.now() };
          if (Date.now() - seen.since < this.ttlMs) {
            await sleep(this.renewMs / 2);
            continue;
          }
          this.log.warn({ from: decode<LeaseValue>(e.value).holder, silentMs: Date.now() - seen.since }, 'taking over the cluster-manager lease');
          this.revision = await this.kv.update(KEY, value, e.revision);
        }
        this.lastRenewed = Date.now();
        this.log.info({ holder: this.holder }, 'holding the cluster-manager lease');
        this.keep(onLost);
        return;
      } catch (err) {
        // Another candidate won the compare-and-set, or the bucket is unreachable: look again.
        this.log.debug({ err: String(err) }, 'lease attempt failed');
        await sleep(this.renewMs / 2);
      }
    }
  }

  /**
   * True while the lease is surely ours: renewed within half its ttl. A holder that was frozen
   * (or cut off) longer must not act even before its next renewal fails.
   */
  get held(): boolean {
    return !this.stopped && Date.now() - this.lastRenewed < this.ttlMs / 2;
  }

  private keep(onLost: () => void): void {
    const renew = async () => {
      if (this.stopped) return;
      try {
        this.revision = await this.kv.update(KEY, encode({ holder: this.holder, at: Date.now() }), this.revision, this.ttlMs / 2);
        this.lastRenewed = Date.now();
      } catch (err) {
        const lost = /wrong last sequence|10071/i.test(String(err)) || !this.held;
        if (lost) {
          this.log.error({ err: String(err) }, 'lost the cluster-manager lease: stepping down');
          this.stop();
          onLost();
          return;
        }
      }
      this.renewer = setTimeout(() => void renew(), this.renewMs);
    };
    this.renewer = setTimeout(() => void renew(), this.renewMs);
  }

  /** Stops renewing; with `release`, deletes the key so a standby takes over at once. */
  async stop(release = false): Promise<void> {
    this.stopped = true;
    clearTimeout(this.renewer);
    if (release && this.revision) await this.kv.delete(KEY, { previousSeq: this.revision }).catch(() => {});
  }
}
