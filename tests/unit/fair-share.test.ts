import test from 'ava';
import { planQueue, type PlanInput, type QueueEntry } from '../../actors/cluster-manager/fair-share.js';
import type { NodeCapacity } from '../../actors/cluster-manager/scheduler.js';

const node = (name: string, free: number[], total = free.length, o: Partial<NodeCapacity> = {}): NodeCapacity => ({ name, free, total, docker: true, hostJobs: true, ...o });
let seq = 0;
const job = (id: string, user: string, min: number, o: Partial<QueueEntry> & { app?: number } = {}): QueueEntry => ({
  id,
  user,
  priority: 0,
  seq: ++seq,
  image: 'host',
  ...o,
  resources: { app: o.app ?? Math.min(1, min), min, max: min },
});
const plan = (i: Partial<PlanInput>) => planQueue({ queue: [], nodes: [], held: {}, users: {}, ...i });
const started = (p: ReturnType<typeof planQueue>) => p.placements.map((x) => x.job);

test('within a user: FIFO, and the head waits in front (nothing of theirs overtakes it)', (t) => {
  const p = plan({ queue: [job('head', 'a', 4), job('small', 'a', 1)], nodes: [node('n', [0, 1, 2], 4)] });
  t.deepEqual(started(p), []);
  t.deepEqual(p.waiting.get('head'), { position: 1, reason: 'waiting for 1 more GPU (3 of 4 free; reserved)' });
  t.regex(p.waiting.get('small')!.reason, /^behind your job head/);
  t.is(p.reserved, 'head');
  t.deepEqual(started(plan({ queue: [job('x', 'a', 1), job('y', 'a', 2), job('z', 'a', 1)], nodes: [node('n', [0, 1, 2])] })), ['x', 'y']);
});

test('within a user: higher priority first, then arrival', (t) => {
  const q = [job('old', 'a', 1), job('urgent', 'a', 1, { priority: 5 }), job('new', 'a', 1)];
  t.deepEqual(started(plan({ queue: q, nodes: [node('n', [0, 1])] })), ['urgent', 'old']);
});

test('between users: the one furthest below their fair share goes first', (t) => {
  const q = [job('a1', 'alice', 1), job('b1', 'bob', 1)];
  t.deepEqual(started(plan({ queue: q, nodes: [node('n', [0])], held: { alice: 4 } })), ['b1']);
  t.deepEqual(started(plan({ queue: q, nodes: [node('n', [0])], held: { bob: 4 } })), ['a1']);
  // Weight 2 entitles alice to twice bob's share: 4 held ÷ 2 = 2 < bob's 3.
  t.deepEqual(started(plan({ queue: q, nodes: [node('n', [0])], held: { alice: 4, bob: 3 }, users: { alice: { weight: 2 } } })), ['a1']);
});

test('two users share evenly what frees up, FIFO within each', (t) => {
  const q = [job('a1', 'alice', 1), job('a2', 'alice', 1), job('a3', 'alice', 1), job('b1', 'bob', 1), job('b2', 'bob', 1)];
  t.deepEqual(started(plan({ queue: q, nodes: [node('n', [0, 1, 2, 3])] })).sort(), ['a1', 'a2', 'b1', 'b2']);
});

test('a quota caps what a user holds; their later jobs wait behind; others go on', (t) => {
  const q = [job('a1', 'alice', 2), job('a2', 'alice', 1), job('b1', 'bob', 1)];
  const p = plan({ queue: q, nodes: [node('n', [0, 1, 2, 3])], held: { alice: 1 }, users: { alice: { quotaGpus: 2 } } });
  t.deepEqual(started(p), ['b1']);
  t.is(p.waiting.get('a1')!.reason, 'over quota: you hold 1 of 2 GPUs and it needs 2');
  t.regex(p.waiting.get('a2')!.reason, /^behind your job a1 .*over quota/);
});

test('backfill only where the reservation cannot use the GPUs', (t) => {
  // The head (a Docker job) waits for 4 GPUs; only 2 Docker GPUs are free. A host job of another
  // user may start on the host-only node; one that needs the Docker GPUs waits behind it.
  const nodes = [node('gpu', [0, 1], 4, { hostJobs: false }), node('cpu', [0, 1], 2, { docker: false })];
  const q = [job('head', 'alice', 4, { image: 'img' }), job('hostjob', 'bob', 2), job('docker1', 'carol', 1, { image: 'img' })];
  const p = plan({ queue: q, nodes });
  t.deepEqual(started(p), ['hostjob']);
  t.deepEqual(p.placements[0]!.grant, { cpu: [0, 1] });
  t.regex(p.waiting.get('docker1')!.reason, /^behind a reservation for job head/);
});

test('a head whose app manager does not fit on one node waits for that, and the excess backfills', (t) => {
  const nodes = [node('a', [0, 1], 4), node('b', [0, 1], 4), node('c', [0], 4)];
  const p = plan({ queue: [job('wide', 'alice', 3, { app: 3 }), job('one', 'bob', 1)], nodes });
  t.is(p.waiting.get('wide')!.reason, 'waiting for 3 GPUs on one node for its app manager (reserved)');
  t.deepEqual(started(p), ['one'], 'the excess GPU (5 free, 3 needed) is used; the best node keeps 2');
});

// --- properties over random clusters and job streams ------------------------------------------

function rng(seed: number) {
  return () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
}

test('properties: exact GPUs, never twice, quotas, FIFO per user, the reservation never shrinks', (t) => {
  for (let round = 0; round < 400; round++) {
    const r = rng(round + 1);
    const int = (n: number) => Math.floor(r() * n);
    const nodes = Array.from({ length: 1 + int(6) }, (_, i) => {
      const total = 1 + int(8);
      const free = Array.from({ length: total }, (_, g) => g).filter(() => r() < 0.6);
      return node(`n${i}`, free, total, { docker: r() < 0.8, hostJobs: r() < 0.8 });
    });
    const usersList = ['u0', 'u1', 'u2'].slice(0, 1 + int(3));
    const users = Object.fromEntries(usersList.map((u) => [u, { weight: 1 + int(3), ...(r() < 0.3 ? { quotaGpus: int(8) } : {}) }]));
    const held = Object.fromEntries(usersList.map((u) => [u, int(6)]));
    const queue = Array.from({ length: int(25) }, (_, i) => {
      const min = 1 + int(6);
      return job(`j${i}`, usersList[int(usersList.length)]!, min, { app: int(min + 1), priority: int(3), image: r() < 0.5 ? 'host' : 'img' });
    });
    const before = new Map(nodes.map((n) => [n.name, new Set(n.free)]));
    const p = planQueue({ queue, nodes, held, users });

    const seen = new Set<string>();
    const gained: Record<string, number> = {};
    for (const pl of p.placements) {
      const j = queue.find((q) => q.id === pl.job)!;
      const gpus = Object.entries(pl.grant).flatMap(([n, gs]) => gs.map((g) => `${n}/${g}`));
      t.is(gpus.length, j.resources.min, 'MIN GPUs exactly');
      for (const [n, gs] of Object.entries(pl.grant)) {
        const nd = nodes.find((x) => x.name === n)!;
        t.true(j.image === 'host' ? nd.hostJobs : nd.docker, 'an eligible node');
        for (const g of gs) t.true(before.get(n)!.has(g), `${n}/${g} was free`);
      }
      for (const g of gpus) {
        t.false(seen.has(g), `${g} given twice`);
        seen.add(g);
      }
      t.is(pl.am.gpus.length, j.resources.app);
      t.true(pl.am.gpus.every((g) => pl.grant[pl.am.node]!.includes(g)), 'AM GPUs on one node, inside the grant');
      gained[j.user] = (gained[j.user] ?? 0) + j.resources.min;
    }
    for (const u of usersList) {
      const q = users[u]!.quotaGpus;
      if (q !== undefined && gained[u]) t.true(held[u]! + gained[u]! <= q, `${u} within quota`);
      const mine = queue.filter((j) => j.user === u).sort((a, b) => b.priority - a.priority || a.seq - b.seq);
      const placed = mine.map((j) => p.placements.some((x) => x.job === j.id));
      t.deepEqual(placed, [...placed].sort((a, b) => Number(b) - Number(a)), `${u}: no job overtakes an earlier one`);
    }
    t.is(p.placements.length + p.waiting.size, queue.length, 'every job starts or has a reason');
    if (p.reserved) {
      // What was free for the reserved job when it got its reservation, and what is free at the end.
      const rj = queue.find((q) => q.id === p.reserved)!;
      const ok = (n: NodeCapacity) => (rj.image === 'host' ? n.hostJobs : n.docker);
      const taken = (pls: typeof p.placements) => new Set(pls.flatMap((pl) => Object.entries(pl.grant).flatMap(([n, gs]) => gs.map((g) => `${n}/${g}`))));
      const freeAfter = (used: Set<string>) => nodes.filter(ok).map((n) => [...before.get(n.name)!].filter((g) => !used.has(`${n.name}/${g}`)).length);
      const atReservation = freeAfter(taken(p.placements.slice(0, p.placedBeforeReservation)));
      const atEnd = freeAfter(seen);
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      t.true(sum(atEnd) >= Math.min(rj.resources.min, sum(atReservation)), 'backfill never takes GPUs the reserved job needs');
      t.true(Math.max(0, ...atEnd) >= Math.min(rj.resources.app, Math.max(0, ...atReservation)), 'nor its app manager\'s node');
    }
  }
});

test('reasons: places 1..n in the order considered, however the list is read', (t) => {
  const p = plan({ nodes: [node('a', [0])], queue: [job('x1', 'x', 2), job('x2', 'x', 1), job('y1', 'y', 1), job('y2', 'y', 3)], held: { y: 5 } });
  t.deepEqual(started(p), []);
  t.is(p.waiting.size, 4);
  const viaGet = ['x1', 'x2', 'y1', 'y2'].map((id) => p.waiting.get(id)!.position);
  t.deepEqual([...viaGet].sort(), [1, 2, 3, 4]);
  t.deepEqual([...p.waiting.values()].map((w) => w.position), [1, 2, 3, 4]);
  t.deepEqual(Object.fromEntries(p.waiting), Object.fromEntries([...p.waiting.entries()]));
});
