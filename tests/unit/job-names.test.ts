import test from 'ava';
import { defaultJobName } from '../../actors/cluster-manager/job-names.js';

const id = '3f2a9c4e-8d1b-4a7e-9f00-123456789abc';

test('a default name is the image basename and 6 hex digits of the id', (t) => {
  t.is(defaultJobName('crane-test/busybox', id, () => false), 'busybox-3f2a9c');
  t.is(defaultJobName('host', id, () => false), 'host-3f2a9c');
  t.is(defaultJobName('reg:5000/a/b:latest', id, () => false), 'b-latest-3f2a9c');
});

test('a taken default name grows its id prefix until it is free', (t) => {
  const taken = new Set(['host-3f2a9c', 'host-3f2a9c4']);
  t.is(defaultJobName('host', id, (n) => taken.has(n)), 'host-3f2a9c4e');
});
