/**
 * (a) Request/reply latency on one embedded nats-server, one process, one connection:
 *   - raw NATS: nc.request / msg.respond, the requester encodes a 200-byte msgpack body and decodes
 *     the reply, the responder decodes and re-encodes it (what any msgpack service does);
 *   - raw bytes: the same without the codec (the floor);
 *   - raw NATS + Crane headers: the raw msgpack request/reply, both ways with the four Crane
 *     headers (type, from, trace, content type) and a fresh trace id: what the wire format costs;
 *   - actor: ActorSystem.ask to an echo actor (headers, trace id, mailbox, envelope).
 * Sequential, 500 warm-up each, then 5 rounds of 1,000 each, alternating the order per round.
 */
import { fmt, mean, median, percentile, ratio, result, runMain } from './lib.js';
import type { Msg } from '@nats-io/transport-node';
import { ActorSystem } from '../bus/actor.js';
import { decode, encode } from '../bus/codec.js';
import { craneHeaders, newTraceId } from '../bus/headers.js';
import { startNats } from '../tests/helpers/nats.js';

const WARMUP = 500;
const ROUNDS = 5;
const PER_ROUND = 1_000;

/** A body whose msgpack encoding is exactly 200 bytes. */
function body200(): Record<string, unknown> {
  const b = { job: '3f2a9c4e-8d1b-4a7e-9f00-123456789abc', container: '3f2a9c4e-am', node: 'node-1', gpus: [0, 1], pad: '' };
  while (encode(b).length > 200) b.pad = b.pad.slice(1);
  while (encode(b).length < 200) b.pad += 'x';
  return b;
}

runMain(async () => {
  const nats = await startNats();
  try {
    const nc = await nats.connect('bench');
    const system = new ActorSystem(nc, 'bench');
    await system.spawn({ name: 'echo', subjects: ['bench.echo'], factory: () => ({ receive: (m) => m.body }) });
    nc.subscribe('bench.raw', { callback: (_e, m: Msg) => void m.respond(encode(decode(m.data))) });
    nc.subscribe('bench.hdr', {
      callback: (_e, m: Msg) => {
        const h = m.headers!;
        const body = decode(m.data);
        void m.respond(encode(body), { headers: craneHeaders(`${h.get('Crane-Type')}.reply`, 'echo', h.get('Crane-Trace')) });
      },
    });
    nc.subscribe('bench.bytes', { callback: (_e, m: Msg) => void m.respond(m.data) });
    await nc.flush();

    const body = body200();
    const bytes = encode(body);
    if (bytes.length !== 200) throw new Error(`body is ${bytes.length} bytes, not 200`);

    const kinds = {
      actor: async () => {
        await system.ask('bench.echo', 'echo', body);
      },
      raw: async () => {
        const m = await nc.request('bench.raw', encode(body), { timeout: 5_000 });
        decode(m.data);
      },
      hdr: async () => {
        const m = await nc.request('bench.hdr', encode(body), { timeout: 5_000, headers: craneHeaders('echo', 'bench', newTraceId()) });
        m.headers?.get('Crane-Error');
        decode(m.data);
      },
      bytes: async () => {
        await nc.request('bench.bytes', bytes, { timeout: 5_000 });
      },
    } as const;
    type Kind = keyof typeof kinds;
    const samples: Record<Kind, number[]> = { actor: [], raw: [], hdr: [], bytes: [] };
    const run = async (k: Kind, n: number, keep: boolean) => {
      const f = kinds[k];
      for (let i = 0; i < n; i++) {
        const t0 = process.hrtime.bigint();
        await f();
        const us = Number(process.hrtime.bigint() - t0) / 1_000;
        if (keep) samples[k].push(us);
      }
    };
    for (const k of Object.keys(kinds) as Kind[]) await run(k, WARMUP, false);
    const orders: Kind[][] = [
      ['actor', 'raw', 'hdr', 'bytes'],
      ['bytes', 'hdr', 'raw', 'actor'],
      ['raw', 'actor', 'bytes', 'hdr'],
      ['hdr', 'bytes', 'actor', 'raw'],
      ['raw', 'hdr', 'bytes', 'actor'],
    ];
    const perRound: Record<Kind, number[]> = { actor: [], raw: [], hdr: [], bytes: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const k of orders[r % orders.length]!) {
        const before = samples[k].length;
        await run(k, PER_ROUND, true);
        perRound[k].push(median(samples[k].slice(before)));
      }
    }

    const s = (k: Kind) => ({ p50: median(samples[k]), mean: mean(samples[k]), p99: percentile(samples[k], 99) });
    const a = s('actor');
    const w = s('raw');
    const b = s('bytes');
    const hd = s('hdr');
    const n = ROUNDS * PER_ROUND;
    console.log(`# (a) ask round trip, ${n} sequential requests each (${ROUNDS} interleaved rounds, ${WARMUP} warm-up) per kind, 200-byte msgpack body, one connection`);
    console.log(`ask round trip: actor ${fmt(a.p50)} µs (p50) vs raw NATS+msgpack ${fmt(w.p50)} µs → ${ratio(a.p50, w.p50)} (target ≤ 1.3×)`);
    console.log(`ask round trip: actor ${fmt(a.mean)} µs (mean) vs raw NATS+msgpack ${fmt(w.mean)} µs → ${ratio(a.mean, w.mean)} (target ≤ 1.3×)`);
    console.log(`ask round trip: actor ${fmt(a.p50)} µs (p50) vs raw NATS bytes, no codec ${fmt(b.p50)} µs → ${ratio(a.p50, b.p50)}`);
    console.log(
      `  where the actor's extra ${fmt(a.p50 - w.p50)} µs go: Crane headers + trace id on the wire ${fmt(hd.p50 - w.p50)} µs (raw + headers ${fmt(hd.p50)} µs), mailbox/envelope/async ${fmt(a.p50 - hd.p50)} µs`,
    );
    console.log(`ask round trip p99: actor ${fmt(a.p99)} µs, raw NATS+msgpack ${fmt(w.p99)} µs, raw bytes ${fmt(b.p99)} µs`);
    console.log(
      `per-round p50 (µs): actor ${perRound.actor.map((x) => fmt(x)).join('/')}, raw ${perRound.raw.map((x) => fmt(x)).join('/')}, raw+headers ${perRound.hdr.map((x) => fmt(x)).join('/')}, bytes ${perRound.bytes.map((x) => fmt(x)).join('/')}`,
    );
    result('ask-vs-raw', {
      actorP50Us: a.p50,
      rawP50Us: w.p50,
      bytesP50Us: b.p50,
      hdrP50Us: hd.p50,
      actorMeanUs: a.mean,
      rawMeanUs: w.mean,
      ratioP50: a.p50 / w.p50,
      ratioMean: a.mean / w.mean,
      target: 1.3,
    });
    await system.stop();
  } finally {
    await nats.teardown();
  }
});
