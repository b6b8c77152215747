import test from 'ava';
import { LineSplitter } from '../../actors/node-manager/line-splitter.js';
import { containerEnv } from '../../actors/node-manager/runtime.js';
import type { RunRequest } from '../../actors/protocol.js';

const req = (gpus: number[]): RunRequest => ({
  job: 'j1',
  container: 'c1',
  jobName: 'train',
  user: 'alice',
  gpus,
  config: { image: 'host', cmd: 'true', shell: true, init: false, env: { A: '1', CUDA_VISIBLE_DEVICES: '9' }, mounts: [], ports: [], shmSize: 0 },
});

test('container env carries the grant and the Crane variables', (t) => {
  t.deepEqual(containerEnv(req([1, 2]), 'n1'), {
    A: '1',
    CUDA_VISIBLE_DEVICES: '1,2',
    NVIDIA_VISIBLE_DEVICES: '1,2',
    CRANE_JOB_ID: 'j1',
    CRANE_JOB_NAME: 'train',
    CRANE_CONTAINER_ID: 'c1',
    CRANE_GPUS: '1,2',
    CRANE_NODE: 'n1',
    CRANE_USER: 'alice',
  });
});

test('no GPUs: CUDA empty, NVIDIA void', (t) => {
  const env = containerEnv(req([]), 'n1');
  t.is(env.CUDA_VISIBLE_DEVICES, '');
  t.is(env.NVIDIA_VISIBLE_DEVICES, 'void');
  t.is(env.CRANE_GPUS, '');
});

const split = (chunks: string[], max?: number) => {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l), max);
  for (const c of chunks) s.push(Buffer.from(c));
  s.end();
  return lines;
};

test('lines across chunks, CRLF, empty lines and a final partial line', (t) => {
  t.deepEqual(split(['a\nb', 'c\r\n\n', 'tail']), ['a', 'bc', '', 'tail']);
  t.deepEqual(split(['x\n']), ['x']);
});

test('long lines are cut', (t) => {
  t.deepEqual(split(['abcdefgh', 'ij\nshort\n'], 4), ['abcd', 'shor']);
  t.deepEqual(split(['abcd\nxy'], 4), ['abcd', 'xy']);
  const big = split(['z'.repeat(100_000) + '\nok\n']);
  t.is(big[0]!.length, 64 * 1024);
  t.is(big[1], 'ok');
});
