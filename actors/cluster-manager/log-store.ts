import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { DEFERRED, type Actor, type ActorContext, type ActorSpec, type Envelope } from '../../bus/actor.js';
import { decode } from '../../bus/codec.js';
import type { StreamWriter } from '../../bus/stream.js';
import { subjects } from '../../bus/subjects.js';
import { TERMINAL_STATES, type JobState, type LogLine } from '../protocol.js';

export interface LogStoreOptions {
  cluster: string;
  /**
   * Keep the lines in the JetStream stream `crane-<cluster>-logs` (bounded per container), and
   * read them from it: a restarted log store replays the stream and has every line again.
   */
  persist?: { nc: NatsConnection; replicas?: number; untilJetStream?: Promise<void> };
  /** False once the manager it runs beside lost its lease: then it answers no reads. */
  isActive?: () => boolean;
  /** Lines kept per job; older lines are dropped first. */
  maxLinesPerJob?: number;
  /** Bytes kept per job. */
  maxBytesPerJob?: number;
}

interface JobLog {
  lines: LogLine[];
  bytes: number;
  dropped: number;
  ended: boolean;
  /** Cargo containers that have exited: a follow of a cargo's logs ends with its last one. */
  endedContainers: Set<string>;
  followers: Set<Follower>;
}

interface Follower {
  w: StreamWriter;
  source?: string;
  /** Only these containers' lines (a cargo's). */
  containers?: Set<string>;
}

export interface LogReadRequest {
  job: string;
  follow: boolean;
  /** epoch ms */
  since?: number;
  source?: 'stdout' | 'stderr';
  /** The job had ended when the gateway looked. */
  ended: boolean;
  /** Only these containers' lines (a cargo's logs); the follow ends once they all exited. */
  containers?: string[];
  /** Those of `containers` that had exited when the gateway looked. */
  exited?: string[];
}

/**
 * Keeps every job's log lines (bounded per job) so `crane job log` works after a job ended, and
 * feeds followers live until the job ends. `drop` (job rm) forgets a job's lines.
 */
class LogStore implements Actor {
  private readonly jobs = new Map<string, JobLog>();
  private readonly maxLines: number;
  private readonly maxBytes: number;
  private consumer?: { stop(): void };
  /** Settles once the lines the stream held at start are in memory. */
  private replayed?: Promise<void>;

  constructor(private readonly o: LogStoreOptions) {
    this.maxLines = o.maxLinesPerJob ?? 10_000;
    this.maxBytes = o.maxBytesPerJob ?? 8 * 1024 * 1024;
  }

  async preStart(ctx: ActorContext): Promise<void> {
    if (!this.o.persist) return;
    const { nc } = this.o.persist;
    const name = logStreamName(this.o.cluster);
    if (this.o.persist.untilJetStream) {
      // JetStream is not up yet (an HA cluster's first manager): keep lines from the bus in
      // memory, and start the stream once JetStream answers, so a later manager finds them.
      const sub = nc.subscribe(subjects(this.o.cluster).logAll, { callback: (_e, m) => this.append(m.subject.split('.')[3]!, decode<LogLine>(m.data)) });
      this.consumer = { stop: () => sub.unsubscribe() };
      void this.o.persist.untilJetStream.then(() => ensureLogStream(nc, this.o.cluster, this.maxLines, this.o.persist!.replicas)).catch((err) => ctx.log.error({ err: String(err) }, 'could not create the log stream'));
      return;
    }
    await retryQuickly(() => ensureLogStream(nc, this.o.cluster, this.maxLines, this.o.persist!.replicas), ctx);
    // Reads wait until the lines already in the stream are replayed: a manager that just took
    // over must not answer `crane job log` with half a log.
    const stored = (await retryQuickly(async () => (await jetstreamManager(nc, { timeout: 1_500 })).streams.info(name), ctx)).state.messages;
    let replayed = () => {};
    if (stored > 0) this.replayed = new Promise<void>((r) => (replayed = r));
    setTimeout(() => replayed(), 30_000).unref(); // never hang reads, whatever the stream does
    // Every line arrives once, in order, from the stream (after a restart: all of them again).
    // append() is synchronous, so taking lines here never interleaves with a message handler.
    const msgs = await retryQuickly(async () => (await jetstream(nc, { timeout: 1_500 }).consumers.get(name)).consume(), ctx);
    this.consumer = msgs;
    void (async () => {
      for await (const m of msgs) {
        this.append(m.subject.split('.')[3]!, decode<LogLine>(m.data));
        if (m.info.pending === 0) replayed();
      }
    })().catch((err) => ctx.log.error({ err: String(err) }, 'log stream consumer failed'));
  }

  postStop(): void {
    this.consumer?.stop();
  }

  private entry(job: string): JobLog {
    let e = this.jobs.get(job);
    if (!e) {
      e = { lines: [], bytes: 0, dropped: 0, ended: false, endedContainers: new Set(), followers: new Set() };
      this.jobs.set(job, e);
    }
    return e;
  }

  receive(msg: Envelope, ctx: ActorContext): unknown {
    switch (msg.type) {
      case 'log':
        return this.append(msg.subject.split('.')[3]!, msg.body as LogLine);
      case 'job.state':
        if (TERMINAL_STATES.includes((msg.body as { state: JobState }).state)) this.end(msg.body.id);
        return;
      case 'container.ended': {
        const e = this.entry(msg.body.job);
        e.endedContainers.add(msg.body.container);
        for (const f of e.followers) if (f.containers && [...f.containers].every((c) => e.endedContainers.has(c))) f.w.end();
        return;
      }
      case 'drop':
        this.end(msg.body.job);
        this.jobs.delete(msg.body.job);
        if (this.o.persist) return this.purge(msg.body.job);
        return;
      case 'read':
        if (this.o.isActive && !this.o.isActive()) return DEFERRED;
        return this.replayed ? this.replayed.then(() => this.read(msg, ctx)) : this.read(msg, ctx);
    }
  }

  private async purge(job: string): Promise<void> {
    const jsm = await jetstreamManager(this.o.persist!.nc);
    await jsm.streams.purge(logStreamName(this.o.cluster), { filter: `${subjects(this.o.cluster).prefix}.log.${job}.>` });
  }

  private append(job: string, l: LogLine): void {
    const e = this.entry(job);
    e.lines.push(l);
    e.bytes += l.line.length;
    while (e.lines.length > this.maxLines || e.bytes > this.maxBytes) {
      e.bytes -= e.lines.shift()!.line.length;
      e.dropped++;
    }
    for (const f of e.followers) if ((!f.source || f.source === l.src) && (!f.containers || f.containers.has(l.container ?? ''))) f.w.write(l);
  }

  private end(job: string): void {
    const e = this.entry(job);
    e.ended = true;
    for (const f of e.followers) f.w.end();
    e.followers.clear();
  }

  private read(msg: Envelope, ctx: ActorContext) {
    const r = msg.body as LogReadRequest;
    const w = ctx.openStream(msg);
    const e = this.entry(r.job);
    if (r.ended) e.ended = true;
    for (const c of r.exited ?? []) e.endedContainers.add(c);
    const only = r.containers && new Set(r.containers);
    const lines = e.lines.filter((l) => (!r.source || l.src === r.source) && (!r.since || l.t >= r.since) && (!only || only.has(l.container ?? '')));
    // The consumer subscribed to its inbox before asking, so lines sent before the reply wait there.
    if (e.dropped > 0 && !r.since) w.write({ t: e.lines[0]?.t ?? Date.now(), src: 'stderr', line: `[crane: ${e.dropped} earlier lines were dropped]`, container: 'crane' });
    for (const l of lines) w.write(l);
    const done = only && [...only].every((c) => e.endedContainers.has(c));
    if (!r.follow || e.ended || done) w.end();
    else {
      const f = { w, source: r.source, containers: only };
      e.followers.add(f);
      w.onClose(() => e.followers.delete(f));
    }
    return { ok: true };
  }
}

export const logStreamName = (cluster: string) => `crane-${cluster}-logs`;

/** Tries fn again for a minute: a new consumer may time out while a lost server is still placed. */
async function retryQuickly<T>(fn: () => Promise<T>, ctx: ActorContext): Promise<T> {
  const end = Date.now() + 60_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > end) throw err;
      ctx.log.warn({ err: String(err), attempt }, 'could not read the log stream yet; trying again');
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * Creates the log stream, or raises its replicas. A stream that is there as wanted is left alone:
 * asking its leader is all a manager taking over needs (creating goes through the meta leader).
 */
export async function ensureLogStream(nc: NatsConnection, cluster: string, maxLines = 10_000, replicas?: number): Promise<void> {
  const name = logStreamName(cluster);
  const jsm = await jetstreamManager(nc, { timeout: 1_500 });
  const config = { name, subjects: [subjects(cluster).logAll], max_msgs_per_subject: maxLines, max_bytes: 1 << 30, num_replicas: replicas ?? 1 };
  const info = await jsm.streams.info(name).catch((err: Error) => {
    if (/stream not found/i.test(err.message)) return undefined;
    throw err;
  });
  if (!info) await jsm.streams.add(config);
  else if (replicas !== undefined && info.config.num_replicas !== replicas) await jsm.streams.update(name, { ...info.config, num_replicas: replicas });
}

export function logStoreSpec(o: LogStoreOptions): ActorSpec {
  const s = subjects(o.cluster);
  const lines = o.persist ? [] : [s.logAll];
  return { name: 'log-store', subjects: [...lines, s.jobEvents, s.logstore('*')], factory: () => new LogStore(o) };
}
