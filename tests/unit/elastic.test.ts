import test from 'ava';
import { planGrow, planReclaim, placeCargo, type ElasticJob } from '../../actors/cluster-manager/elastic.js';
import { both, gpuCount, minus, plus, showGrant } from '../../actors/cluster-manager/grant.js';
import type { NodeCapacity } from '../../actors/cluster-manager/scheduler.js';

const node = (name: string, free: number[], total = 8): NodeCapacity => ({ name, free, total, docker: true, hostJobs: true });
let seq = 0;
function job(id: string, user: string, app: number, min: number, max: number, grant: Record<string, number[]>, o: Partial<ElasticJob> = {}): ElasticJob {
  const amNode = Object.keys(grant)[0]!;
  return {
    id,
    user,
    priority: 0,
    seq: ++seq,
    resources: { app, min, max },
    image: 'host',
    grant,
    am: app ? { [amNode]: grant[amNode]!.slice(0, app) } : {},
    cargoGpus: [],
    reclaiming: {},
    ...o,
  };
}
const head = (id: string, user: string, app: number, min: number, priority = 0) => ({ id, user, priority, resources: { app, min, max: min }, image: 'host' });

test('grant arithmetic', (t) => {
  t.deepEqual(plus({ a: [1] }, { a: [0], b: [2] }), { a: [0, 1], b: [2] });
  t.deepEqual(minus({ a: [0, 1], b: [2] }, { b: [2], a: [1] }), { a: [0] });
  t.deepEqual(both({ a: [0, 1], b: [2] }, { a: [1, 3] }), { a: [1] });
  t.is(gpuCount({ a: [0, 1], b: [2] }), 3);
  t.is(showGrant({ a: [0, 1], b: [2] }), 'a:0,1 b:2');
  t.is(showGrant({}), 'none');
});

test('grow: idle GPUs go to jobs below MAX, on the nodes they hold first, never past MAX', (t) => {
  const j = job('j', 'u', 1, 2, 4, { n1: [0, 1] });
  const g = planGrow({ nodes: [node('n1', [2, 3, 4]), node('n2', [0, 1])], jobs: [j], held: { u: 2 }, users: {}, queueWaits: false });
  t.deepEqual(g.get('j'), { n1: [2, 3] });
});

test('grow: shared between users by fair share, one GPU at a time', (t) => {
  const a = job('a', 'alice', 1, 1, 8, { n1: [0] });
  const b = job('b', 'bob', 1, 1, 8, { n1: [1] });
  const g = planGrow({ nodes: [node('n1', [2, 3, 4, 5])], jobs: [a, b], held: { alice: 1, bob: 1 }, users: { bob: { weight: 3 } }, queueWaits: false });
  // bob's weight is 3: he ends with 4 of 6 held GPUs... as near as whole GPUs go.
  t.is(gpuCount(g.get('a') ?? {}), 1);
  t.is(gpuCount(g.get('b')!), 3);
});

test('grow: not while a queued job waits for GPUs; a quota caps it', (t) => {
  const j = job('j', 'u', 1, 1, 4, { n1: [0] });
  t.is(planGrow({ nodes: [node('n1', [1, 2])], jobs: [j], held: { u: 1 }, users: {}, queueWaits: true }).size, 0);
  const g = planGrow({ nodes: [node('n1', [1, 2, 3])], jobs: [j], held: { u: 1 }, users: { u: { quotaGpus: 2 } }, queueWaits: false });
  t.deepEqual(g.get('j'), { n1: [1] });
});

test('grow: a job being shrunk or paused does not grow', (t) => {
  const j = job('j', 'u', 1, 1, 4, { n1: [0, 1] }, { reclaiming: { n1: [1] } });
  const p = job('p', 'u', 1, 1, 4, { n1: [2] }, { pausing: true });
  t.is(planGrow({ nodes: [node('n1', [3, 4])], jobs: [j, p], held: {}, users: {}, queueWaits: false }).size, 0);
});

test('reclaim: GPUs above MIN, idle ones first, just enough for the reserved job', (t) => {
  const j = job('j', 'u', 1, 1, 4, { n1: [0, 1, 2, 3] }, { cargoGpus: [{ node: 'n1', gpu: 1, age: 1 }] });
  const r = planReclaim({ nodes: [node('n1', [], 4)], jobs: [j], held: { u: 4 }, users: {}, head: head('q', 'v', 1, 2) });
  t.deepEqual(r?.take.get('j'), { n1: [2, 3] }, 'the idle GPUs 2 and 3, not the cargo\'s 1 nor the AM\'s 0');
  t.deepEqual(r?.pause, []);
});

test('reclaim: the newest cargo\'s GPUs when idle ones are not enough; never below MIN, never the AM', (t) => {
  const j = job('j', 'u', 1, 1, 4, { n1: [0, 1, 2, 3] }, {
    cargoGpus: [
      { node: 'n1', gpu: 1, age: 1 },
      { node: 'n1', gpu: 2, age: 2 },
      { node: 'n1', gpu: 3, age: 2 },
    ],
  });
  const r = planReclaim({ nodes: [node('n1', [], 4)], jobs: [j], held: { u: 4 }, users: {}, head: head('q', 'v', 2, 2) });
  t.deepEqual(r?.take.get('j'), { n1: [2, 3] });
  t.is(planReclaim({ nodes: [node('n1', [], 4)], jobs: [j], held: { u: 4 }, users: {}, head: head('q', 'v', 1, 4) }), undefined, 'never below MIN: nothing is taken for nothing');
});

test('reclaim: nothing new while GPUs being taken back will do', (t) => {
  const j = job('j', 'u', 1, 1, 4, { n1: [0, 1, 2, 3] }, { reclaiming: { n1: [2, 3] } });
  t.is(planReclaim({ nodes: [node('n1', [], 4)], jobs: [j], held: { u: 4 }, users: {}, head: head('q', 'v', 1, 2) }), undefined);
});

test('reclaim: from the user furthest above their share first', (t) => {
  const a = job('a', 'alice', 1, 1, 4, { n1: [0, 1, 2, 3] });
  const b = job('b', 'bob', 1, 1, 4, { n2: [0, 1] });
  const r = planReclaim({ nodes: [node('n1', [], 4), node('n2', [], 2)], jobs: [a, b], held: { alice: 4, bob: 2 }, users: {}, head: head('q', 'carol', 1, 1) });
  t.deepEqual([...r!.take.keys()], ['a']);
});

test('reclaim: idle GPUs for the jobs queued behind the head too (their MIN in total), in one round', (t) => {
  const a = job('a', 'u', 1, 1, 8, { n1: [0, 1, 2, 3, 4, 5, 6, 7] });
  const behind = [head('q2', 'v', 1, 2), head('q3', 'v', 1, 1), head('q4', 'v', 1, 8)];
  const r = planReclaim({ nodes: [node('n1', [])], jobs: [a], held: { u: 8 }, users: {}, head: head('q1', 'v', 1, 2), behind });
  t.is(gpuCount(r!.take.get('a')!), 7, '2 for the head, 2 + 1 behind it, then all that is left above MIN (not the AM)');
  t.false(r!.take.get('a')!.n1!.includes(0));
  const none = planReclaim({ nodes: [node('n1', [])], jobs: [a], held: { u: 8 }, users: {}, head: head('q1', 'v', 1, 2) });
  t.is(gpuCount(none!.take.get('a')!), 2, 'without them, just the head\'s');
  const quota = planReclaim({ nodes: [node('n1', [])], jobs: [a], held: { u: 8, v: 0 }, users: { v: { quotaGpus: 4 } }, head: head('q1', 'v', 1, 2), behind });
  t.is(gpuCount(quota!.take.get('a')!), 4, 'a job behind that its user\'s quota would refuse does not count');
});

test('reclaim: nothing for the jobs behind when the head waits for a cargo to stop', (t) => {
  const a = job('a', 'u', 1, 1, 8, { n1: [0, 1, 2, 3, 4, 5, 6, 7] }, { cargoGpus: [1, 2, 3, 4, 5, 6, 7].map((gpu) => ({ node: 'n1', gpu, age: 1 })) });
  const b = job('b', 'w', 1, 1, 4, { n2: [0, 1, 2, 3] });
  const r = planReclaim({ nodes: [node('n1', []), node('n2', [], 4)], jobs: [a, b], held: { u: 8, w: 1 }, users: {}, head: head('q1', 'v', 4, 4), behind: [head('q2', 'v', 1, 1)] });
  t.is(gpuCount(r!.take.get('a')!), 4, 'the head needs 4 on one node: 4 of the cargo\'s GPUs');
  t.is(r?.take.get('b'), undefined, 'and b\'s idle GPUs stay with b');
});

test('reclaim: free GPUs on nodes the head cannot use do not make it fit', (t) => {
  const a = job('a', 'u', 1, 1, 4, { n1: [0, 1, 2, 3] });
  const dockerOnly: NodeCapacity = { ...node('d1', [0, 1, 2, 3], 4), hostJobs: false };
  const r = planReclaim({ nodes: [node('n1', [], 4), dockerOnly], jobs: [a], held: { u: 4 }, users: {}, head: head('q', 'v', 1, 3) });
  t.deepEqual(r?.take.get('a'), { n1: [1, 2, 3] });
});

test('reclaim: a lower-priority job of the same user is paused when shrinking is not enough', (t) => {
  const low = job('low', 'u', 1, 2, 2, { n1: [0, 1] }, { priority: 0 });
  const other = job('other', 'v', 1, 2, 2, { n2: [0, 1] }, { priority: -5 });
  const r = planReclaim({ nodes: [node('n1', [], 2), node('n2', [], 2)], jobs: [low, other], held: { u: 2, v: 2 }, users: {}, head: head('q', 'u', 1, 2, 3) });
  t.deepEqual(r, { take: new Map(), pause: ['low'] }, 'only u\'s own lower job, not v\'s');
  t.is(planReclaim({ nodes: [node('n1', [], 2)], jobs: [low], held: {}, users: {}, head: head('q', 'u', 1, 2, 0) }), undefined, 'not for an equal priority');
});

test('cargo: all or nothing, each container on one node, as few nodes as possible', (t) => {
  const free = { n1: [0, 1], n2: [0, 1, 2, 3], n3: [5] };
  const p = placeCargo(free, [{ gpus: 2, image: 'host' }, { gpus: 2, image: 'host' }, { gpus: 1, image: 'host' }], () => true)!;
  t.deepEqual(
    p.map((x) => x.node),
    ['n2', 'n2', 'n3'],
    'the last one on the tightest node that holds it',
  );
  t.deepEqual(p[0]!.gpus, [0, 1]);
  t.deepEqual(p[1]!.gpus, [2, 3]);
  t.is(placeCargo(free, [{ gpus: 5, image: 'host' }], () => true), undefined, 'a container never spans nodes');
  t.is(placeCargo(free, [{ gpus: 4, image: 'host' }, { gpus: 4, image: 'host' }], () => true), undefined);
  t.deepEqual(placeCargo({ n1: [] }, [{ gpus: 0, image: 'host' }], () => true), [{ node: 'n1', gpus: [] }], 'no GPUs: on a node of the job');
  t.is(placeCargo(free, [{ gpus: 1, image: 'img' }], (n, image) => image === 'host' || n === 'none'), undefined, 'only nodes that run its image');
});
