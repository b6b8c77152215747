import test from 'ava';
import { canTransition, isTerminal, transition } from '../../actors/cluster-manager/job-states.js';
import { CraneError } from '../../bus/errors.js';
import type { JobView } from '../../actors/protocol.js';

test('the reference §8.1 table', (t) => {
  t.true(canTransition('QUEUED', 'RUNNING'));
  t.true(canTransition('QUEUED', 'ERROR'));
  t.false(canTransition('QUEUED', 'DONE'));
  for (const to of ['QUEUED', 'PAUSED', 'INVALID', 'DONE', 'ERROR'] as const) t.true(canTransition('RUNNING', to));
  t.true(canTransition('PAUSED', 'RUNNING'));
  t.false(canTransition('PAUSED', 'DONE'));
  for (const from of ['DONE', 'ERROR', 'INVALID'] as const) {
    t.true(isTerminal(from));
    t.false(canTransition(from, 'RUNNING'));
  }
});

test('transition appends history and refuses forbidden moves', (t) => {
  const j = { state: 'QUEUED', history: [{ state: 'QUEUED', at: 'x' }] } as unknown as JobView;
  transition(j, 'RUNNING', new Date(0));
  transition(j, 'ERROR', new Date(1), 'killed');
  t.deepEqual(j.history.map((h) => h.state), ['QUEUED', 'RUNNING', 'ERROR']);
  t.is(j.reason, 'killed');
  const err = t.throws(() => transition(j, 'RUNNING', new Date()), { instanceOf: CraneError });
  t.is(err?.code, 'conflict');
});
