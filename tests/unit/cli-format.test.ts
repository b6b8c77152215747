import test from 'ava';
import type { JobView } from '../../actors/protocol.js';
import {
  age,
  colorEnabled,
  grantSize,
  jobRows,
  localIso,
  palette,
  sortNewestFirst,
  table,
  tagsCell,
  toYaml,
  visibleLength,
} from '../../cli/format.js';

const NOW = Date.parse('2024-05-10T12:00:00Z');
const ago = (ms: number) => new Date(NOW - ms).toISOString();

test('age is coarse: s, m, h, d, y', (t) => {
  t.is(age(ago(0), NOW), '0s');
  t.is(age(ago(3_000), NOW), '3s');
  t.is(age(ago(59_999), NOW), '59s');
  t.is(age(ago(60_000), NOW), '1m');
  t.is(age(ago(5 * 60_000 + 59_000), NOW), '5m');
  t.is(age(ago(2 * 3600_000), NOW), '2h');
  t.is(age(ago(23 * 3600_000 + 3599_000), NOW), '23h');
  t.is(age(ago(4 * 86400_000), NOW), '4d');
  t.is(age(ago(364 * 86400_000), NOW), '364d');
  t.is(age(ago(365 * 86400_000), NOW), '1y');
  t.is(age(ago(800 * 86400_000), NOW), '2y');
  t.is(age(NOW - 3000, NOW), '3s');
  t.is(age(new Date(NOW - 3000), NOW), '3s');
});

test('age never goes negative and tolerates bad input', (t) => {
  t.is(age(ago(-10_000), NOW), '0s');
  t.is(age('not a date', NOW), '?');
});

test('table aligns columns, upper-cases headers, trims line ends', (t) => {
  const s = table(
    ['name', 'status', 'gpu'],
    [
      ['train', 'RUNNING 5s', '2/4'],
      ['a', 'QUEUED 1m', ''],
    ],
  );
  t.is(s, ['NAME    STATUS       GPU', 'train   RUNNING 5s   2/4', 'a       QUEUED 1m'].join('\n'));
});

test('table ignores colour codes when aligning', (t) => {
  const red = palette(true).red;
  const s = table(['a', 'b'], [[red('xy'), '1'], ['abc', '2']]);
  const lines = s.split('\n');
  t.is(lines[1], `${red('xy')}    1`);
  t.is(lines[2], 'abc   2');
  t.is(visibleLength(red('xy')), 2);
});

test('palette only colours when enabled', (t) => {
  t.is(palette(false).red('x'), 'x');
  t.is(palette(true).red('x'), '\x1b[31mx\x1b[39m');
});

test('colorEnabled needs a TTY and no NO_COLOR', (t) => {
  t.true(colorEnabled({ isTTY: true }, {}));
  t.false(colorEnabled({ isTTY: false }, {}));
  t.false(colorEnabled({}, {}));
  t.false(colorEnabled({ isTTY: true }, { NO_COLOR: '1' }));
  t.true(colorEnabled({ isTTY: true }, { NO_COLOR: '' }));
});

test('toYaml', async (t) => {
  t.is(await toYaml({ a: 1, b: ['x', 'y'], c: { d: 'e' } }), 'a: 1\nb:\n  - x\n  - y\nc:\n  d: e\n');
});

test('localIso round-trips to the same second', (t) => {
  const d = new Date('2024-05-10T12:34:56.789Z');
  const s = localIso(d);
  t.regex(s, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/);
  t.is(Date.parse(s), Date.parse('2024-05-10T12:34:56Z'));
});

test('tagsCell shows at most 3 tags', (t) => {
  t.is(tagsCell([]), '');
  t.is(tagsCell(['a', 'b', 'c']), 'a, b, c');
  t.is(tagsCell(['a', 'b', 'c', 'd']), 'a, b, c ...');
});

function job(name: string, createdMsAgo: number, over: Partial<JobView> = {}): JobView {
  return {
    id: `${name}-id`,
    name,
    user: 'u',
    tags: [],
    spec: { tags: [], resources: { app: 1, min: 2, max: 4 }, am: { image: 'i', shell: false, init: true, env: {}, mounts: [], ports: [], shmSize: 1 } },
    state: 'RUNNING',
    history: [
      { state: 'QUEUED', at: ago(createdMsAgo) },
      { state: 'RUNNING', at: ago(5_000) },
    ],
    acquired: { n1: [0, 1], n2: [3] },
    ...over,
  };
}

test('grantSize counts GPUs across nodes', (t) => {
  t.is(grantSize({}), 0);
  t.is(grantSize({ a: [0, 1], b: [2] }), 3);
});

test('jobRows: newest first, status with age, GPU acquired/max', (t) => {
  const jobs = [job('old', 3 * 86400_000), job('new', 60_000, { tags: ['x', 'y'] }), job('mid', 2 * 3600_000, { state: 'QUEUED', acquired: {} })];
  t.deepEqual(jobRows(jobs, NOW), [
    ['new', 'x, y', '1m', 'RUNNING 5s', '3/4'],
    ['mid', '', '2h', 'QUEUED 5s', '0/4'],
    ['old', '', '3d', 'RUNNING 5s', '3/4'],
  ]);
  t.deepEqual(
    sortNewestFirst(jobs).map((j) => j.name),
    ['new', 'mid', 'old'],
  );
});

test('jobRows shows failed states in red when colours are on', (t) => {
  const [row] = jobRows([job('bad', 1000, { state: 'ERROR' })], NOW, palette(true));
  t.is(row![3], '\x1b[91mERROR 5s\x1b[39m');
});
