import test from 'ava';
import { byCodeUnit, FreeNodes, neverFits, placeJob, type NodeCapacity, type QueuedJob } from '../../actors/cluster-manager/scheduler.js';

const node = (name: string, free: number[], total = free.length, o: Partial<NodeCapacity> = {}): NodeCapacity => ({
  name,
  free,
  total,
  docker: true,
  hostJobs: true,
  ...o,
});
const job = (id: string, app: number, min = app, max = min, image = 'host'): QueuedJob => ({ id, resources: { app, min, max }, image });

test('all or nothing: a job that does not fit gets nothing', (t) => {
  const nodes = [node('a', [0, 1, 2])];
  t.is(placeJob(job('j', 4), nodes), undefined);
  t.deepEqual(nodes[0]!.free, [0, 1, 2]);
});

test('AM GPUs on one node, MIN in total, exact indices removed from free', (t) => {
  const nodes = [node('a', [0, 1, 2, 3]), node('b', [0, 1, 2, 3])];
  const p = placeJob(job('j', 2, 6), nodes)!;
  t.is(p.am.gpus.length, 2);
  t.is(Object.values(p.grant).flat().length, 6);
  t.true(p.grant[p.am.node]!.length >= 2);
  t.is(nodes[0]!.free.length + nodes[1]!.free.length, 2);
});

test('best fit keeps whole nodes free for large jobs', (t) => {
  const nodes = [node('big', [0, 1, 2, 3], 4), node('half', [2, 3], 4)];
  const p = placeJob(job('small', 2), nodes)!;
  t.deepEqual(p.grant, { half: [2, 3] });
  t.deepEqual(nodes[0]!.free, [0, 1, 2, 3]);
});

test('refused at once when it could never fit', (t) => {
  const nodes = [node('a', [0, 1, 2, 3], 4), node('b', [0, 1], 2)];
  t.regex(neverFits(job('j', 1, 7), nodes)!, /needs 7 GPUs but the cluster has 6/);
  t.regex(neverFits(job('j', 5, 5), nodes)!, /app manager needs 5 GPUs on one node/);
  t.is(neverFits(job('j', 4, 6), nodes), undefined);
  t.regex(neverFits(job('j', 1), [node('a', [0], 1, { hostJobs: false })])!, /--no-host-jobs/);
  t.regex(neverFits(job('j', 1, 1, 1, 'busybox'), [node('a', [0], 1, { docker: false })])!, /Docker/);
});

test('only eligible nodes: host jobs avoid --no-host-jobs nodes', (t) => {
  const nodes = [node('nohost', [0, 1], 2, { hostJobs: false }), node('ok', [0, 1, 2], 3)];
  const p = placeJob(job('j', 1), nodes)!;
  t.deepEqual(Object.keys(p.grant), ['ok']);
});

test('FreeNodes places every job exactly as placeJob does (random clusters, jobs placed and ended)', (t) => {
  let seed = 11;
  const r = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  const int = (n: number) => Math.floor(r() * n);
  for (let round = 0; round < 300; round++) {
    // Names that sort differently by locale and by code unit ('N2' / 'n10' / 'n9'), sizes that differ.
    const nodes = Array.from({ length: 1 + int(12) }, (_, i) => {
      const total = int(9);
      const free = Array.from({ length: total }, (_, g) => g).filter(() => r() < 0.7);
      return node(`${r() < 0.3 ? 'N' : 'n'}${int(20)}-${i}`, free, total, { docker: r() < 0.8, hostJobs: r() < 0.8 });
    });
    const index = new FreeNodes(nodes);
    const running: Array<{ grant: Record<string, number[]> }> = [];
    for (let step = 0; step < 40; step++) {
      if (running.length && r() < 0.3) {
        const done = running.splice(int(running.length), 1)[0]!;
        for (const [name, gpus] of Object.entries(done.grant)) {
          const n = nodes.find((x) => x.name === name)!;
          n.free = [...n.free, ...gpus].sort((a, b) => a - b);
          index.give(name, gpus);
        }
        continue;
      }
      const min = int(12);
      const j = job(`j${step}`, int(Math.min(min, 8) + 1), min, min, r() < 0.5 ? 'host' : 'img');
      const want = placeJob(j, nodes);
      t.deepEqual(index.place(j), want, `round ${round} step ${step}`);
      if (want) running.push(want);
      t.deepEqual(
        index.nodes().map((n) => [n.name, n.free]),
        nodes.map((n) => [n.name, n.free]),
      );
    }
  }
});

test('FreeNodes: the fullest node with a GPU free, in the order asked for', (t) => {
  const index = new FreeNodes([node('n10', [0, 1]), node('n9', [0, 1]), node('n2', [0, 1, 2]), node('x', [])], byCodeUnit);
  t.is(index.fullest('host'), 'n10');
  t.deepEqual(index.take('n10', 2), [0, 1]);
  t.is(index.fullest('host'), 'n9');
  t.is(index.best('host'), 3);
  t.is(index.total.host, 5);
});
