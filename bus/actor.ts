import {
  NoRespondersError,
  TimeoutError,
  RequestError,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { decode, encode } from './codec.js';
import { CraneError, isErrorCode } from './errors.js';
import { craneHeaders, H, newTraceId } from './headers.js';
import { actorLogger } from './logger.js';
import { Mailbox } from './mailbox.js';
import { StreamWriter } from './stream.js';

/** One message as an actor sees it. */
export interface Envelope<B = any> {
  subject: string;
  type: string;
  from: string;
  trace: string;
  body: B;
  /** Inbox of a streaming consumer (Crane-Stream), if the sender opened a stream. */
  stream?: string;
  /** Set when the sender waits for a reply. */
  reply?: string;
}

export interface AskOptions {
  timeout?: number;
  /** The message this one is caused by: its trace id and stream inbox are carried on. */
  cause?: { trace: string; stream?: string };
}

/** What a handler may return instead of a reply: it will answer later with ctx.respond(). */
export const DEFERRED = Symbol('deferred');

export interface ActorContext {
  readonly name: string;
  readonly log: Logger;
  readonly system: ActorSystem;
  ask<T = any>(subject: string, type: string, body: unknown, opts?: AskOptions): Promise<T>;
  tell(subject: string, type: string, body: unknown, cause?: Envelope): void;
  /** Answer a request later (after returning DEFERRED). */
  respond(msg: Envelope, body: unknown): void;
  respondError(msg: Envelope, err: CraneError): void;
  /** Writer for the stream the sender opened (NDJSON items to the bridge). */
  openStream(msg: Envelope): StreamWriter;
}

export interface Actor {
  /** Handles one message; its return value is the reply. Throw a CraneError for a typed error reply. */
  receive(msg: Envelope, ctx: ActorContext): unknown | Promise<unknown>;
  preStart?(ctx: ActorContext): void | Promise<void>;
  postStop?(ctx: ActorContext): void | Promise<void>;
}

export interface ActorSpec {
  name: string;
  /** Subjects this actor serves; wildcards allowed. */
  subjects: string[];
  /** Queue group: with several instances, each message goes to one of them. */
  queue?: string;
  /** Builds a fresh instance: called at start and after every crash. */
  factory: () => Actor;
}

const DEFAULT_TIMEOUT = 5_000;

/** The live cell of one actor: subscriptions, mailbox and the current instance. */
class ActorCell {
  instance?: Actor;
  readonly subs: Subscription[] = [];
  readonly mailbox: Mailbox<Msg>;
  readonly ctx: ActorContext;
  crashes = 0;
  restarts = 0;
  private lastCrash = 0;
  private stopped = false;

  constructor(
    readonly spec: ActorSpec,
    private readonly system: ActorSystem,
  ) {
    this.ctx = system.contextFor(spec.name);
    this.mailbox = new Mailbox((m) => this.deliver(m));
  }

  async start(): Promise<void> {
    this.instance = this.spec.factory();
    await this.instance.preStart?.(this.ctx);
    for (const subject of this.spec.subjects) {
      this.subs.push(
        this.system.nc.subscribe(subject, {
          queue: this.spec.queue,
          callback: (err, m) => {
            if (!err) this.mailbox.push(m);
          },
        }),
      );
    }
  }

  private async deliver(m: Msg): Promise<void> {
    const env = toEnvelope(m);
    let result: unknown;
    try {
      result = await this.instance!.receive(env, this.ctx);
    } catch (err) {
      if (err instanceof CraneError) {
        if (m.reply) this.ctx.respondError(env, err);
        return;
      }
      this.ctx.log.error({ err, type: env.type, trace: env.trace }, 'actor crashed; restarting');
      if (m.reply) this.ctx.respondError(env, new CraneError('internal', `${this.spec.name} failed: ${(err as Error)?.message ?? err}`));
      await this.restart();
      return;
    }
    if (m.reply && result !== DEFERRED) this.ctx.respond(env, result);
  }

  /** Supervisor: a fresh instance after a back-off that grows with crashes in quick succession. */
  private async restart(): Promise<void> {
    const now = Date.now();
    this.crashes = now - this.lastCrash > 10_000 ? 1 : this.crashes + 1;
    this.lastCrash = now;
    const delay = Math.min(50 * 2 ** (this.crashes - 1), 5_000);
    this.mailbox.pause();
    try {
      await this.instance?.postStop?.(this.ctx);
    } catch {
      /* the old instance is gone either way */
    }
    await new Promise((r) => setTimeout(r, delay));
    if (this.stopped) return;
    this.instance = this.spec.factory();
    await this.instance.preStart?.(this.ctx);
    this.restarts++;
    this.mailbox.resume();
  }

  /** Graceful: no new messages, drain the mailbox, then postStop. */
  async stop(): Promise<void> {
    for (const s of this.subs) s.unsubscribe();
    this.subs.length = 0;
    await this.mailbox.idle();
    this.stopped = true;
    await this.instance?.postStop?.(this.ctx);
  }
}

function toEnvelope(m: Msg): Envelope {
  const h = m.headers;
  return {
    subject: m.subject,
    type: h?.get(H.type) ?? '',
    from: h?.get(H.from) ?? '',
    trace: h?.get(H.trace) || newTraceId(),
    stream: h?.get(H.stream) || undefined,
    reply: m.reply || undefined,
    body: decode(m.data),
  };
}

/** Decodes a reply: a Crane-Error header becomes a thrown CraneError. */
export function unwrapReply<T>(m: Msg): T {
  const code = m.headers?.get(H.error);
  if (code) {
    const body = decode<{ message?: string }>(m.data);
    throw new CraneError(isErrorCode(code) ? code : 'internal', body?.message ?? code);
  }
  return decode<T>(m.data);
}

export function mapRequestError(err: unknown, subject: string, timeout: number): CraneError {
  if (err instanceof CraneError) return err;
  const cause = err instanceof RequestError ? (err as Error & { cause?: unknown }).cause ?? err : err;
  if (cause instanceof NoRespondersError || (err as Error)?.message?.includes('no responders')) {
    return new CraneError('unavailable', `nothing answers on ${subject}`);
  }
  if (cause instanceof TimeoutError || (err as Error)?.name === 'TimeoutError') {
    return new CraneError('timeout', `no answer on ${subject} within ${timeout} ms`);
  }
  return new CraneError('unavailable', `bus error on ${subject}: ${(err as Error)?.message ?? err}`);
}

/** All actors of one process on one NATS connection. */
export class ActorSystem {
  private readonly cells = new Map<string, ActorCell>();
  readonly log: Logger;

  constructor(
    readonly nc: NatsConnection,
    readonly name = 'system',
  ) {
    this.log = actorLogger(name);
  }

  async spawn(spec: ActorSpec): Promise<void> {
    if (this.cells.has(spec.name)) throw new Error(`actor ${spec.name} already exists`);
    const cell = new ActorCell(spec, this);
    this.cells.set(spec.name, cell);
    await cell.start();
  }

  /** Crash and restart counts, for status and tests. */
  stats(name: string): { restarts: number; mailbox: number } | undefined {
    const c = this.cells.get(name);
    return c && { restarts: c.restarts, mailbox: c.mailbox.size };
  }

  subscriptionCount(): number {
    let n = 0;
    for (const c of this.cells.values()) n += c.subs.length;
    return n;
  }

  contextFor(name: string): ActorContext {
    const system = this;
    const log = actorLogger(name);
    return {
      name,
      log,
      system,
      ask: (subject, type, body, opts) => system.ask(subject, type, body, { ...opts, from: name }),
      tell: (subject, type, body, cause) => system.tell(subject, type, body, { from: name, cause }),
      respond(msg, body) {
        if (!msg.reply) return;
        system.nc.publish(msg.reply, encode(body), { headers: craneHeaders(`${msg.type}.reply`, name, msg.trace) });
      },
      respondError(msg, err) {
        if (!msg.reply) return;
        const h = craneHeaders(`${msg.type}.reply`, name, msg.trace, { [H.error]: err.code });
        system.nc.publish(msg.reply, encode({ message: err.message }), { headers: h });
      },
      openStream(msg) {
        if (!msg.stream) throw new CraneError('invalid', `${msg.type} needs a stream`);
        return new StreamWriter(system.nc, msg.stream, name, msg.trace);
      },
    };
  }

  async ask<T = any>(
    subject: string,
    type: string,
    body: unknown,
    opts: AskOptions & { from?: string } = {},
  ): Promise<T> {
    const timeout = opts.timeout ?? DEFAULT_TIMEOUT;
    const extra = opts.cause?.stream ? { [H.stream]: opts.cause.stream } : undefined;
    const headers = craneHeaders(type, opts.from ?? this.name, opts.cause?.trace ?? newTraceId(), extra);
    let reply: Msg;
    try {
      reply = await this.nc.request(subject, encode(body), { timeout, headers });
    } catch (err) {
      throw mapRequestError(err, subject, timeout);
    }
    return unwrapReply<T>(reply);
  }

  /** Fire and forget; on a closed connection (the system is stopping) the message is dropped. */
  tell(subject: string, type: string, body: unknown, opts: { from?: string; cause?: Envelope } = {}): void {
    if (this.nc.isClosed()) return;
    this.nc.publish(subject, encode(body), {
      headers: craneHeaders(type, opts.from ?? this.name, opts.cause?.trace ?? newTraceId()),
    });
  }

  /** Graceful stop of every actor (drain mailboxes), newest first. */
  async stop(): Promise<void> {
    const cells = [...this.cells.values()].reverse();
    this.cells.clear();
    for (const c of cells) await c.stop();
  }
}
