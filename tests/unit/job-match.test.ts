import test from 'ava';
import { matches, resolveOne } from '../../actors/cluster-manager/job-match.js';
import { CraneError } from '../../bus/errors.js';
import type { JobView } from '../../actors/protocol.js';

const j = (id: string, name: string, tags: string[] = [], state = 'RUNNING') => ({ id, name, tags, state }) as unknown as JobView;
const jobs = [j('aaaa-1', 'first', ['demo', 'x']), j('aabb-2', 'fast'), j('cccc-3', 'other', ['demo'], 'DONE')];

test('exact id, exact name, then a unique prefix', (t) => {
  t.is(resolveOne(jobs, 'aabb-2').name, 'fast');
  t.is(resolveOne(jobs, 'other').id, 'cccc-3');
  t.is(resolveOne(jobs, 'fi').id, 'aaaa-1');
  t.is(resolveOne(jobs, 'cc').name, 'other');
});

test('no match is not-found; two matches is a clear ambiguity', (t) => {
  t.is(t.throws(() => resolveOne(jobs, 'zzz'), { instanceOf: CraneError })?.code, 'not-found');
  const err = t.throws(() => resolveOne(jobs, 'f'), { instanceOf: CraneError });
  t.is(err?.code, 'invalid');
  t.regex(err!.message, /'f' matches 2 jobs: first \(aaaa-1\), fast \(aabb-2\)/);
});

test('filters: prefix, every tag, states', (t) => {
  t.deepEqual(jobs.filter((x) => matches(x, { tags: ['demo'] })).map((x) => x.name), ['first', 'other']);
  t.deepEqual(jobs.filter((x) => matches(x, { tags: ['demo', 'x'] })).map((x) => x.name), ['first']);
  t.deepEqual(jobs.filter((x) => matches(x, { states: ['DONE'] })).map((x) => x.name), ['other']);
  t.deepEqual(jobs.filter((x) => matches(x, { q: 'aa' })).map((x) => x.name), ['first', 'fast']);
});
