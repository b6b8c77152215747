import test from 'ava';
import { CraneError } from '../../bus/errors.js';
import { detectGpus, parseGpuList } from '../../actors/node-manager/gpus.js';

test('a single number is a count', (t) => {
  t.deepEqual(parseGpuList('4'), [0, 1, 2, 3]);
  t.deepEqual(parseGpuList('1'), [0]);
  t.deepEqual(parseGpuList('0'), []);
});

test('a comma list gives the indices', (t) => {
  t.deepEqual(parseGpuList('0,2,5'), [0, 2, 5]);
  t.deepEqual(parseGpuList(' 3, 1 '), [3, 1]);
});

test('all and empty detect', (t) => {
  const detected = detectGpus();
  t.deepEqual(parseGpuList('all'), detected);
  t.deepEqual(parseGpuList(''), detected);
});

for (const bad of ['abc', '-1', '1,1', '0,x', '1.5', '0,,1', '2000']) {
  test(`'${bad}' is invalid`, (t) => {
    const err = t.throws(() => parseGpuList(bad), { instanceOf: CraneError });
    t.is(err?.code, 'invalid');
    t.false(err?.message.includes('\n'));
    t.true(err?.message.includes(bad));
  });
}
