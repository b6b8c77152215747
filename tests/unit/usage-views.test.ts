import test from 'ava';
import { CraneError } from '../../bus/errors.js';
import { noteGrant } from '../../actors/cluster-manager/accounting.js';
import { ClusterState, type JobRecord } from '../../actors/cluster-manager/state.js';
import { jobUsage, usageFor, usageWindow } from '../../actors/cluster-manager/usage-views.js';
import type { Grant, JobState, RegisterNode, UserInfo } from '../../actors/protocol.js';

const alice: UserInfo = { id: 'a', username: 'alice', isAdmin: false };
const bob: UserInfo = { id: 'b', username: 'bob', isAdmin: false };
const root: UserInfo = { id: 'r', username: 'root', isAdmin: true };

function addJob(s: ClusterState, user: string, name: string, state: JobState, acquired: Grant, at: number, am?: { node: string; gpus: number[] }): JobRecord {
  const r: JobRecord = {
    seq: ++s.seq,
    view: {
      id: `id-${name}`,
      name,
      user,
      tags: [],
      spec: { name, tags: [], resources: { app: 1, min: 2, max: 2 }, am: { image: 'host', shell: true, init: false, env: {}, mounts: [], ports: [], shmSize: 0 } },
      state,
      history: [],
      acquired,
      ...(am ? { am: { ...am, container: `${name}-am` } } : {}),
    },
  };
  noteGrant(r, at);
  s.jobs.set(r.view.id, r);
  return r;
}

function addNode(s: ClusterState, name: string, gpus: number[], state: 'READY' | 'LOST' = 'READY') {
  const reg: RegisterNode = { name, gpus, docker: false, hostJobs: true, pid: 1, version: 'x', running: [] };
  s.nodes.set(name, {
    reg,
    free: new Set(),
    owners: new Map(),
    lastHeartbeat: 5_000,
    state,
    confirmed: true,
    usage: gpus.map((gpu) => ({ gpu, util: 10 * (gpu + 1), memUsedMiB: 100, memTotalMiB: 1000 })),
  });
}

test('job usage: a row per GPU of the grant with its container (the AM) and the node’s latest sample', (t) => {
  const s = ClusterState.withRoot('h');
  addNode(s, 'n2', [0, 1]);
  addNode(s, 'n10', [0, 1]);
  addNode(s, 'gone', [0], 'LOST');
  const r = addJob(s, 'alice', 'train', 'RUNNING', { n10: [1], n2: [0, 1], gone: [0] }, 0, { node: 'n2', gpus: [1] });
  const u = jobUsage(s, r, 10_000);
  t.like(u, { id: 'id-train', name: 'train', user: 'alice', state: 'RUNNING', gpuSeconds: 40 });
  t.deepEqual(u.gpus, [
    { node: 'gone', gpu: 0 },
    { node: 'n2', gpu: 0, util: 10, memUsedMiB: 100, memTotalMiB: 1000, sampledAt: new Date(5_000).toISOString() },
    { node: 'n2', gpu: 1, container: 'train-am', util: 20, memUsedMiB: 100, memTotalMiB: 1000, sampledAt: new Date(5_000).toISOString() },
    { node: 'n10', gpu: 1, util: 20, memUsedMiB: 100, memTotalMiB: 1000, sampledAt: new Date(5_000).toISOString() },
  ]);
});

test('job usage of an ended job: no GPUs, its GPU-seconds', (t) => {
  const s = ClusterState.withRoot('h');
  addNode(s, 'n', [0, 1]);
  const r = addJob(s, 'alice', 'done', 'RUNNING', { n: [0, 1] }, 0);
  r.view.state = 'DONE';
  noteGrant(r, 3_000);
  const u = jobUsage(s, r, 100_000);
  t.deepEqual(u.gpus, []);
  t.is(u.gpuSeconds, 6);
});

test('usage: a user sees their own, an admin (and the admin report) every user, removed jobs included', (t) => {
  const s = ClusterState.withRoot('h');
  addJob(s, 'alice', 'a', 'RUNNING', { n: [0] }, 0);
  addJob(s, 'bob', 'b', 'RUNNING', { n: [1, 2] }, 0);
  const gone = addJob(s, 'bob', 'gone', 'RUNNING', { n: [3] }, 0);
  gone.view.state = 'DONE';
  noteGrant(gone, 4_000);
  s.dropJob(gone.view.id);
  const users = (u: ReturnType<typeof usageFor>) => u.users.map((x) => [x.user, x.gpuSeconds, x.jobs]);
  t.deepEqual(users(usageFor(s, { user: alice }, 10_000)), [['alice', 10, 1]]);
  t.deepEqual(users(usageFor(s, { user: bob }, 10_000)), [['bob', 24, 2]]);
  t.deepEqual(users(usageFor(s, { user: root }, 10_000)), [['bob', 24, 2], ['alice', 10, 1]]);
  const all = usageFor(s, { all: true, since: 5_000 }, 10_000);
  t.deepEqual(users(all), [['bob', 10, 1], ['alice', 5, 1]]);
  t.is(all.since, new Date(5_000).toISOString());
  t.true(usageFor(s, { user: bob }, 10_000).jobs.find((j) => j.name === 'gone')!.removed);
});

test('usage: bad windows are refused', (t) => {
  const s = ClusterState.withRoot('h');
  t.is(t.throws(() => usageFor(s, {}, 0), { instanceOf: CraneError })!.code, 'invalid');
  t.regex(t.throws(() => usageFor(s, { user: alice, since: 10, until: 5 }, 0))!.message, /starts .* after it ends/);
  t.regex(t.throws(() => usageFor(s, { user: alice, since: 'x' as unknown as number }, 0))!.message, /invalid since/);
});

test('usageWindow reads ISO times from the query', (t) => {
  t.deepEqual(usageWindow({}), {});
  t.deepEqual(usageWindow({ since: '2024-05-01T00:00:00Z' }), { since: Date.parse('2024-05-01T00:00:00Z') });
  t.deepEqual(usageWindow({ since: '', until: ['x', '2024-05-02T00:00:00Z'] }), { until: Date.parse('2024-05-02T00:00:00Z') });
  const err = t.throws(() => usageWindow({ since: '7d' }), { instanceOf: CraneError });
  t.is(err!.message, "invalid since '7d': use an ISO-8601 time");
});

test('job usage names the cargo container holding a GPU; a GPU of the grant nobody uses has none', (t) => {
  const s = ClusterState.withRoot('h');
  addNode(s, 'n', [0, 1, 2]);
  const r = addJob(s, 'alice', 'cargoed', 'RUNNING', { n: [0, 1, 2] }, 0, { node: 'n', gpus: [0] });
  const config = { image: 'host', shell: true, init: false, env: {}, mounts: [], ports: [], shmSize: 0 };
  r.cargos = [
    {
      name: 'trial',
      createdAt: new Date(0).toISOString(),
      age: 1,
      containers: [
        { name: 'w0', id: 'cargoed-trial-w0', node: 'n', gpus: [2], image: 'host', state: 'RUNNING', config },
        { name: 'w1', id: 'cargoed-trial-w1', node: 'n', gpus: [1], image: 'host', state: 'DONE', config },
      ],
    },
  ];
  t.deepEqual(
    jobUsage(s, r, 1_000).gpus.map((g) => [g.gpu, g.container]),
    [
      [0, 'cargoed-am'],
      [1, undefined],
      [2, 'cargoed-trial-w0'],
    ],
  );
});
