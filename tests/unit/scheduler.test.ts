import test from 'ava';
import { neverFits, placeJob, type NodeCapacity, type QueuedJob } from '../../actors/cluster-manager/scheduler.js';

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
