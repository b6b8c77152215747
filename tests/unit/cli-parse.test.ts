import test from 'ava';
import { parseEnv, parseEnvs, parseMount, parsePort, parseResource, parseShmSize, parseSince, parseDuration } from '../../cli/parse.js';

const resources: Array<[string, [number, number, number]]> = [
  ['1', [1, 1, 1]],
  ['1:4', [1, 4, 4]],
  ['1:2:8', [1, 2, 8]],
  ['0:2', [0, 2, 2]],
  ['0:1:3', [0, 1, 3]],
  ['2:2:2', [2, 2, 2]],
  ['01:02', [1, 2, 2]],
];
for (const [s, [app, min, max]] of resources) {
  test(`parseResource accepts ${s}`, (t) => {
    t.deepEqual(parseResource(s), { app, min, max });
  });
}

const badResources: Array<[string, string]> = [
  ['', "invalid resource '': expected APP[:MIN[:MAX]] GPU counts, e.g. 1, 1:4 or 1:2:8"],
  ['abc', "invalid resource 'abc': 'abc' is not a whole number of GPUs ≥ 0"],
  ['1.5', "invalid resource '1.5': '1.5' is not a whole number of GPUs ≥ 0"],
  ['-1', "invalid resource '-1': '-1' is not a whole number of GPUs ≥ 0"],
  ['1:x', "invalid resource '1:x': 'x' is not a whole number of GPUs ≥ 0"],
  ['1:2:3:4', "invalid resource '1:2:3:4': expected at most 3 fields APP[:MIN[:MAX]], got 4"],
  ['2:1', "invalid resource '2:1': APP ≤ MIN ≤ MAX must hold (got app 2 > min 1)"],
  ['1:4:2', "invalid resource '1:4:2': APP ≤ MIN ≤ MAX must hold (got min 4 > max 2)"],
  ['0', "invalid resource '0': MAX must be at least 1 GPU"],
  ['0:0:2', "invalid resource '0:0:2': MIN must be at least 1 GPU (APP may be 0 only when MIN ≥ 1)"],
  ['2::4', "invalid resource '2::4': empty field; expected APP[:MIN[:MAX]], e.g. 1, 1:4 or 1:2:8"],
  [':3', "invalid resource ':3': empty field; expected APP[:MIN[:MAX]], e.g. 1, 1:4 or 1:2:8"],
  ['99999999999999999999', "invalid resource '99999999999999999999': '99999999999999999999' is not a whole number of GPUs ≥ 0"],
];
for (const [s, message] of badResources) {
  test(`parseResource rejects ${JSON.stringify(s)}`, (t) => {
    t.throws(() => parseResource(s), { message });
  });
}

test('parseEnv splits on the first =', (t) => {
  t.deepEqual(parseEnv('K=V'), ['K', 'V']);
  t.deepEqual(parseEnv('URL=a=b=c'), ['URL', 'a=b=c']);
  t.deepEqual(parseEnv('EMPTY='), ['EMPTY', '']);
  t.throws(() => parseEnv('NOEQUALS'), { message: "invalid -e 'NOEQUALS': expected KEY=VALUE" });
  t.throws(() => parseEnv('=V'), { message: "invalid -e '=V': expected KEY=VALUE" });
});

test('parseEnvs builds a record, the later key wins', (t) => {
  t.deepEqual(parseEnvs(['A=1', 'B=2', 'A=3']), { A: '3', B: '2' });
  t.deepEqual(parseEnvs([]), {});
});

test('parseMount resolves the host dir and defaults to rw', (t) => {
  t.deepEqual(parseMount('data:/data', '/home/u'), { hostDir: '/home/u/data', containerDir: '/data', mode: 'rw' });
  t.deepEqual(parseMount('/srv/x:/x:ro', '/home/u'), { hostDir: '/srv/x', containerDir: '/x', mode: 'ro' });
  t.deepEqual(parseMount('.:/work:rw', '/home/u'), { hostDir: '/home/u', containerDir: '/work', mode: 'rw' });
  t.deepEqual(parseMount('../y:/y', '/home/u'), { hostDir: '/home/y', containerDir: '/y', mode: 'rw' });
});

test('parseMount rejects bad mounts', (t) => {
  t.throws(() => parseMount('a:b'), { message: "invalid -m 'a:b': container path must be absolute" });
  t.throws(() => parseMount('a:/b:rx'), { message: "invalid -m 'a:/b:rx': mode must be ro or rw (got 'rx')" });
  for (const s of ['a', 'a:/b:ro:x', ':/b', 'a::ro', '']) {
    t.throws(() => parseMount(s), { message: `invalid -m '${s}': expected HOST_DIR:CONTAINER_DIR[:ro|rw]` });
  }
});

test('parsePort', (t) => {
  t.is(parsePort('8080'), 8080);
  t.is(parsePort('1'), 1);
  t.is(parsePort('65535'), 65535);
  for (const s of ['0', '65536', 'http', '80.5', '-1', '']) {
    t.throws(() => parsePort(s), { message: `invalid -p '${s}': expected a port number 1-65535` });
  }
});

test('parseShmSize', (t) => {
  t.is(parseShmSize('64m'), 67_108_864);
  t.is(parseShmSize('1.5g'), 1_610_612_736);
  t.is(parseShmSize('.5m'), 524_288);
  t.is(parseShmSize('100'), 100);
  t.is(parseShmSize('100b'), 100);
  t.is(parseShmSize('2K'), 2048);
  t.is(parseShmSize('1G'), 1024 ** 3);
  for (const s of ['m', '', 'abc', '1t', '-1m', '1.m', '1 m']) {
    t.throws(() => parseShmSize(s), {
      message: `invalid --shm-size '${s}': expected a number with an optional unit b, k, m or g (e.g. 64m, 1.5g)`,
    });
  }
  t.throws(() => parseShmSize('0'), { message: "invalid --shm-size '0': must be at least 1 byte" });
});

const NOW = Date.parse('2024-05-10T12:00:00.000Z');

test('parseSince: relative durations', (t) => {
  t.is(parseSince('30s', NOW), '2024-05-10T11:59:30.000Z');
  t.is(parseSince('10m', NOW), '2024-05-10T11:50:00.000Z');
  t.is(parseSince('2h', NOW), '2024-05-10T10:00:00.000Z');
  t.is(parseSince('1d', NOW), '2024-05-09T12:00:00.000Z');
  t.is(parseSince('1h30m', NOW), '2024-05-10T10:30:00.000Z');
});

test('parseSince: dates and times with a zone', (t) => {
  t.is(parseSince('2024-05-01T10:20:30Z'), '2024-05-01T10:20:30.000Z');
  t.is(parseSince('2024-05-01T10:20:30.250Z'), '2024-05-01T10:20:30.250Z');
  t.is(parseSince('2024-05-01T10:20:30+02:00'), '2024-05-01T08:20:30.000Z');
  t.is(parseSince('2024-05-01 10:20-0130'), '2024-05-01T11:50:00.000Z');
});

test('parseSince: local dates and times', (t) => {
  t.is(parseSince('2024-05-01'), new Date(2024, 4, 1).toISOString());
  t.is(parseSince('2024-05-01T10:20:30'), new Date(2024, 4, 1, 10, 20, 30).toISOString());
  t.is(parseSince('2024-05-01 10:20'), new Date(2024, 4, 1, 10, 20).toISOString());
});

test('parseSince rejects garbage and out-of-range fields', (t) => {
  for (const s of ['yesterday', '10', '10x', '', '2024-13-01', '2024-02-30', '2024-05-01T25:00', '2024-5-1', 'm']) {
    t.throws(() => parseSince(s, NOW), { message: /^invalid --since '.*': expected a date\/time/ });
  }
});

test('parseDuration: units from ms to days, combined; garbage refused naming the option', (t) => {
  t.is(parseDuration('1500ms', '--node-timeout'), 1500);
  t.is(parseDuration('1m30s', '--token-ttl'), 90_000);
  t.is(parseDuration('2d', '--token-ttl'), 172_800_000);
  for (const s of ['', '0s', '10', 'ms', '1.5s', '-1s']) {
    t.throws(() => parseDuration(s, '--node-timeout'), { message: /^invalid --node-timeout '.*': expected a duration/ });
  }
});
