import test from 'ava';
import { validateJobSpec } from '../../actors/gateway/validate-job.js';
import { CraneError } from '../../bus/errors.js';

const ok = { tags: [], resources: { app: 1, min: 2, max: 4 }, am: { image: 'host', cmd: 'true' } };

test('fills defaults', (t) => {
  const s = validateJobSpec(ok);
  t.deepEqual(s.am, { image: 'host', cmd: 'true', shell: false, init: true, env: {}, mounts: [], ports: [], shmSize: 64 * 1024 * 1024 });
});

test('bad specs are one clear invalid error each', (t) => {
  const bad = [
    [{ ...ok, resources: { app: 2, min: 1, max: 1 } }, /APP ≤ MIN ≤ MAX/],
    [{ ...ok, resources: { app: 0, min: 0, max: 0 } }, /MAX must be at least 1/],
    [{ ...ok, resources: { app: -1, min: 1, max: 1 } }, /whole GPU counts/],
    [{ ...ok, resources: { app: 1.5, min: 2, max: 2 } }, /whole GPU counts/],
    [{ ...ok, name: 'bad name' }, /invalid job name/],
    [{ ...ok, am: { image: '' } }, /image name is required/],
    [{ ...ok, am: { image: 'host' } }, /host job needs a command/],
    [{ ...ok, am: { image: 'x', env: { '1A': 'v' } } }, /environment variable name/],
    [{ ...ok, am: { image: 'x', mounts: [{ hostDir: 'a', containerDir: '/b', mode: 'rw' }] } }, /absolute/],
    ['nope', /JSON object/],
  ] as const;
  for (const [spec, re] of bad) {
    const err = t.throws(() => validateJobSpec(spec), { instanceOf: CraneError });
    t.is(err?.code, 'invalid');
    t.regex(err!.message, re);
  }
});
