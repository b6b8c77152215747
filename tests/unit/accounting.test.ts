import test from 'ava';
import { accountOf, gpuSeconds, noteGrant, usageReport, type Accountable } from '../../actors/cluster-manager/accounting.js';
import { ClusterState, type JobRecord } from '../../actors/cluster-manager/state.js';
import type { Grant, JobState } from '../../actors/protocol.js';

let n = 0;
function job(user = 'alice', name = `j${++n}`): JobRecord {
  return {
    seq: n,
    view: {
      id: `id-${name}`,
      name,
      user,
      tags: [],
      spec: { name, tags: [], resources: { app: 1, min: 1, max: 4 }, am: { image: 'host', shell: true, init: false, env: {}, mounts: [], ports: [], shmSize: 0 } },
      state: 'QUEUED',
      history: [],
      acquired: {},
    },
  };
}

/** Sets the job's state and grant, then notes it at `at` (seconds, for readability). */
function set(r: JobRecord, at: number, state: JobState, acquired: Grant = r.view.acquired): void {
  r.view.state = state;
  r.view.acquired = acquired;
  noteGrant(r, at * 1000);
}

test('segments follow the grant: start, grow, shrink, requeue, end', (t) => {
  const r = job();
  set(r, 0, 'QUEUED');
  t.is(r.usage, undefined, 'a queued job holds nothing: no segment');
  set(r, 10, 'RUNNING', { a: [0, 1] });
  set(r, 20, 'RUNNING', { a: [0, 1], b: [3] });
  set(r, 25, 'RUNNING', { a: [0, 1], b: [3] });
  set(r, 30, 'RUNNING', { a: [1] });
  set(r, 40, 'QUEUED', {});
  set(r, 50, 'RUNNING', { b: [0, 1, 2, 3] });
  set(r, 60, 'DONE'); // an ended job keeps its grant for inspect, but holds nothing
  t.deepEqual(r.usage, [
    { at: 10_000, gpus: 2 },
    { at: 20_000, gpus: 3 },
    { at: 30_000, gpus: 1 },
    { at: 40_000, gpus: 0 },
    { at: 50_000, gpus: 4 },
    { at: 60_000, gpus: 0 },
  ]);
  // 10 s × 2 + 10 s × 3 + 10 s × 1 + 10 s × 4
  t.is(gpuSeconds(r), 100);
});

test('two changes at the same instant keep the last; time never runs backwards', (t) => {
  const r = job();
  set(r, 10, 'RUNNING', { a: [0] });
  set(r, 10, 'RUNNING', { a: [0, 1] });
  t.deepEqual(r.usage, [{ at: 10_000, gpus: 2 }]);
  set(r, 10, 'QUEUED', {});
  t.deepEqual(r.usage, [], 'started and requeued at once: nothing was held');
  set(r, 20, 'RUNNING', { a: [0] });
  set(r, 15, 'DONE');
  t.deepEqual(r.usage, [], 'a change stamped before the last counts at the last instant (and replaces it)');
  t.is(gpuSeconds(r, undefined, 100_000), 0);
  set(r, 30, 'RUNNING', { a: [0] });
  set(r, 40, 'RUNNING', { a: [0, 1] });
  t.deepEqual(r.usage, [{ at: 30_000, gpus: 1 }, { at: 40_000, gpus: 2 }]);
});

test('windows cut segments; an open segment runs until `until`', (t) => {
  const r = job();
  set(r, 100, 'RUNNING', { a: [0, 1] });
  set(r, 200, 'RUNNING', { a: [0] });
  // open since 200 with 1 GPU
  t.is(gpuSeconds(r, undefined, 300_000), 100 * 2 + 100);
  t.is(gpuSeconds(r, 150_000, 250_000), 50 * 2 + 50);
  t.is(gpuSeconds(r, 0, 100_000), 0);
  t.is(gpuSeconds(r, 400_000, 300_000), 0, 'an empty window');
  t.is(gpuSeconds(r, 250_000, 250_500), 0.5);
});

test('the report: per user and per job in a window, most first, with shares', (t) => {
  const a1 = job('alice', 'a1');
  set(a1, 0, 'RUNNING', { n: [0, 1] });
  set(a1, 100, 'DONE');
  const a2 = job('alice', 'a2');
  set(a2, 50, 'RUNNING', { n: [2] });
  const b1 = job('bob', 'b1');
  set(b1, 0, 'RUNNING', { n: [3] });
  set(b1, 100, 'ERROR');
  const idle = job('carol', 'queued');
  const records: Accountable[] = [a1, a2, b1, idle].map((r) => ({ ...accountOf(r), state: r.view.state }));
  const rep = usageReport(records, { until: 150_000 });
  t.is(rep.since, undefined);
  t.is(rep.until, new Date(150_000).toISOString());
  t.is(rep.totalGpuSeconds, 200 + 100 + 100);
  t.deepEqual(rep.users, [
    { user: 'alice', gpuSeconds: 300, jobs: 2, share: 0.75 },
    { user: 'bob', gpuSeconds: 100, jobs: 1, share: 0.25 },
  ]);
  t.deepEqual(rep.jobs.map((j) => [j.name, j.gpuSeconds, j.state]), [
    ['a1', 200, 'DONE'],
    ['a2', 100, 'RUNNING'],
    ['b1', 100, 'ERROR'],
  ]);

  const late = usageReport(records, { since: 90_000, until: 150_000 });
  t.is(late.since, new Date(90_000).toISOString());
  t.deepEqual(late.users.map((u) => [u.user, u.gpuSeconds, u.jobs]), [['alice', 20 + 60, 2], ['bob', 10, 1]]);
  const ended = records.filter((r) => r.state !== 'RUNNING');
  t.deepEqual(usageReport(ended, { since: 1e9, until: 2e9 }), { since: new Date(1e9).toISOString(), until: new Date(2e9).toISOString(), totalGpuSeconds: 0, users: [], jobs: [] });
});

test('a removed job stays accounted: acct.<id> in the store, loaded again by withRoot', (t) => {
  const s = ClusterState.withRoot('h');
  const used = job('alice', 'used');
  set(used, 0, 'RUNNING', { n: [0, 1] });
  set(used, 30, 'DONE');
  const never = job('alice', 'never');
  set(never, 0, 'ERROR'); // killed while queued: never held a GPU
  for (const r of [used, never]) s.jobs.set(r.view.id, r);
  s.dropJob(used.view.id);
  s.dropJob(never.view.id);
  t.is(s.jobs.size, 0);
  t.deepEqual([...s.accounts.keys()], ['id-used']);
  t.deepEqual(s.accounts.get('id-used'), { id: 'id-used', name: 'used', user: 'alice', usage: [{ at: 0, gpus: 2 }, { at: 30_000, gpus: 0 }] });

  // What the store would hold, read back by a new cluster manager.
  const entries = new Map<string, unknown>([['acct.id-used', s.accounts.get('id-used')]]);
  const again = ClusterState.withRoot('h', undefined, entries);
  const rep = usageReport([...again.accounts.values()].map((a) => ({ ...a, removed: true })), { since: 0, until: 3_600_000 });
  t.deepEqual(rep.users, [{ user: 'alice', gpuSeconds: 60, jobs: 1, share: 1 }]);
  t.true(rep.jobs[0]!.removed);
});
