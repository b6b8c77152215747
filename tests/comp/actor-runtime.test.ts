import test from 'ava';
import { ActorSystem, DEFERRED, type Actor, type ActorContext, type Envelope } from '../../bus/actor.js';
import { CraneError } from '../../bus/errors.js';
import { H } from '../../bus/headers.js';
import { startNats, type NatsFixture } from '../helpers/nats.js';

let nats: NatsFixture;
test.before(async () => {
  nats = await startNats();
});
test.after.always(async () => {
  await nats?.teardown();
});

async function system(name: string) {
  return new ActorSystem(await nats.connect(name), name);
}

class Counter implements Actor {
  n = 0;
  async receive(msg: Envelope) {
    if (msg.type === 'boom') throw new Error('kaboom');
    if (msg.type === 'missing') throw new CraneError('not-found', 'no such thing');
    if (msg.type === 'slow') await new Promise((r) => setTimeout(r, 200));
    // a read-modify-write across an await: only safe because messages are handled one at a time
    const before = this.n;
    await new Promise((r) => setImmediate(r));
    this.n = before + 1;
    return { n: this.n, type: msg.type, trace: msg.trace, from: msg.from };
  }
}

test('ask gets the reply; headers carry type, sender and trace', async (t) => {
  const sys = await system('ask');
  await sys.spawn({ name: 'counter', subjects: ['crane.t1.counter'], factory: () => new Counter() });
  const r = await sys.ask('crane.t1.counter', 'inc', {}, { cause: { trace: 'abc123' }, from: 'tester' });
  t.deepEqual(r, { n: 1, type: 'inc', trace: 'abc123', from: 'tester' });
  await sys.stop();
});

test('one message at a time: concurrent asks never interleave', async (t) => {
  const sys = await system('serial');
  await sys.spawn({ name: 'counter', subjects: ['crane.t2.counter'], factory: () => new Counter() });
  const replies = await Promise.all(Array.from({ length: 50 }, () => sys.ask<{ n: number }>('crane.t2.counter', 'inc', {})));
  t.deepEqual(replies.map((r) => r.n).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1));
  await sys.stop();
});

test('a typed error travels as Crane-Error and is thrown as CraneError', async (t) => {
  const sys = await system('typed');
  await sys.spawn({ name: 'counter', subjects: ['crane.t3.counter'], factory: () => new Counter() });
  const err = await t.throwsAsync(sys.ask('crane.t3.counter', 'missing', {}), { instanceOf: CraneError });
  t.is(err?.code, 'not-found');
  t.is(err?.message, 'no such thing');
  // the raw reply has the header, as any NATS client would see it
  const raw = await sys.nc.request('crane.t3.counter', new Uint8Array(), { timeout: 2_000, headers: (await import('../../bus/headers.js')).craneHeaders('missing', 'raw', 't') });
  t.is(raw.headers?.get(H.error), 'not-found');
  await sys.stop();
});

test('a crash replies internal, and the supervisor restarts the actor with fresh state', async (t) => {
  const sys = await system('crash');
  await sys.spawn({ name: 'counter', subjects: ['crane.t4.counter'], factory: () => new Counter() });
  await sys.ask('crane.t4.counter', 'inc', {});
  await sys.ask('crane.t4.counter', 'inc', {});
  const err = await t.throwsAsync(sys.ask('crane.t4.counter', 'boom', {}), { instanceOf: CraneError });
  t.is(err?.code, 'internal');
  // queued during the restart back-off, answered by the new instance
  const r = await sys.ask<{ n: number }>('crane.t4.counter', 'inc', {});
  t.is(r.n, 1);
  t.is(sys.stats('counter')?.restarts, 1);
  await sys.stop();
});

test('a timeout gives a typed error, and nobody listening gives unavailable', async (t) => {
  const sys = await system('timeout');
  await sys.spawn({ name: 'slow', subjects: ['crane.t5.slow'], factory: () => new Counter() });
  const err = await t.throwsAsync(sys.ask('crane.t5.slow', 'slow', {}, { timeout: 50 }), { instanceOf: CraneError });
  t.is(err?.code, 'timeout');
  const err2 = await t.throwsAsync(sys.ask('crane.t5.nobody', 'x', {}, { timeout: 500 }), { instanceOf: CraneError });
  t.is(err2?.code, 'unavailable');
  await sys.stop();
});

test('deferred replies and tell', async (t) => {
  const sys = await system('deferred');
  const seen: string[] = [];
  let held: Envelope | undefined;
  await sys.spawn({
    name: 'holder',
    subjects: ['crane.t6.holder'],
    factory: () => ({
      receive(msg: Envelope, ctx: ActorContext) {
        if (msg.type === 'hold') {
          held = msg;
          return DEFERRED;
        }
        if (msg.type === 'note') return void seen.push(msg.body.x);
        ctx.respond(held!, { released: true });
        return { ok: true };
      },
    }),
  });
  const waiting = sys.ask('crane.t6.holder', 'hold', {});
  sys.tell('crane.t6.holder', 'note', { x: 'told' });
  await sys.ask('crane.t6.holder', 'release', {});
  t.deepEqual(await waiting, { released: true });
  t.deepEqual(seen, ['told']);
  await sys.stop();
});

test('graceful stop drains the mailbox and leaks no subscription', async (t) => {
  const sys = await system('drain');
  await sys.spawn({ name: 'a', subjects: ['crane.t7.a', 'crane.t7.b.*'], factory: () => new Counter() });
  t.is(sys.subscriptionCount(), 2);
  const inflight = Array.from({ length: 10 }, () => sys.ask<{ n: number }>('crane.t7.a', 'slowish', {}));
  // Stop once all ten are in the actor's hands (handled or queued in its mailbox), however slow
  // the machine: what the stop must not lose is what was delivered.
  let handled = 0;
  void Promise.all(inflight.map((p) => p.then(() => handled++)));
  for (let i = 0; i < 500 && handled + (sys.stats('a')?.mailbox ?? 0) < 9; i++) await new Promise((r) => setTimeout(r, 2));
  await sys.stop();
  const done = await Promise.all(inflight);
  t.is(done.length, 10);
  t.is(sys.subscriptionCount(), 0);
  // the connection itself holds no subscription of ours any more (only the request mux, if any)
  const subs = (sys.nc as unknown as { protocol: { subscriptions: { all(): { subject: string }[] } } }).protocol.subscriptions.all();
  t.deepEqual(subs.filter((s) => s.subject.startsWith('crane.')), []);
});
