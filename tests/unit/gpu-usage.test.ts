import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { GpuUsageSampler, parseInjected, parseNvidiaSmi, sameSamples, samplesFor } from '../../actors/node-manager/gpu-usage.js';

test('nvidia-smi csv (noheader, nounits) by GPU index', (t) => {
  const csv = '0, 87, 1200, 16384\n1, 0, 3, 16384\n\n';
  t.deepEqual(
    [...parseNvidiaSmi(csv)],
    [
      [0, { util: 87, memUsedMiB: 1200, memTotalMiB: 16384 }],
      [1, { util: 0, memUsedMiB: 3, memTotalMiB: 16384 }],
    ],
  );
});

test('nvidia-smi: unsupported fields read 0, warnings and short lines are skipped', (t) => {
  const csv = 'WARNING: infoROM is corrupted at gpu 0000:01:00.0\n3, [N/A], 512, 8192\n4, [Not Supported], [N/A], [N/A]\n5, 10\r\n6, 120, -1, 40960\r\n';
  t.deepEqual(
    [...parseNvidiaSmi(csv)],
    [
      [3, { util: 0, memUsedMiB: 512, memTotalMiB: 8192 }],
      [4, { util: 0, memUsedMiB: 0, memTotalMiB: 0 }],
      [6, { util: 100, memUsedMiB: 0, memTotalMiB: 40960 }],
    ],
  );
  t.is(parseNvidiaSmi('').size, 0);
});

test('injected values: JSON keyed by GPU index, missing fields 0, util clamped', (t) => {
  const m = parseInjected('{ "0": { "util": 87, "memUsedMiB": 1200, "memTotalMiB": 16384 }, "2": { "util": 150 } }');
  t.deepEqual(m.get(0), { util: 87, memUsedMiB: 1200, memTotalMiB: 16384 });
  t.deepEqual(m.get(2), { util: 100, memUsedMiB: 0, memTotalMiB: 0 });
  t.is(m.size, 2);
});

for (const [text, why] of [
  ['{', /not JSON/],
  ['[1]', /object keyed by GPU index/],
  ['{"a": {}}', /'a' is not a GPU index/],
  ['{"0": 5}', /GPU 0 must be an object/],
] as const) {
  test(`injected values: ${text} is refused in one line`, (t) => {
    const err = t.throws(() => parseInjected(text));
    t.regex(err!.message, why);
    t.false(err!.message.includes('\n'));
  });
}

test('a sample per GPU of the node, in its order; GPUs without a reading report zeros', (t) => {
  const r = new Map([[2, { util: 50, memUsedMiB: 10, memTotalMiB: 20 }], [9, { util: 1, memUsedMiB: 1, memTotalMiB: 1 }]]);
  t.deepEqual(samplesFor([2, 0], r), [
    { gpu: 2, util: 50, memUsedMiB: 10, memTotalMiB: 20 },
    { gpu: 0, util: 0, memUsedMiB: 0, memTotalMiB: 0 },
  ]);
  t.deepEqual(samplesFor([]), []);
});

test('sameSamples compares every field', (t) => {
  const a = samplesFor([0, 1]);
  t.true(sameSamples(a, samplesFor([0, 1])));
  t.false(sameSamples(a, undefined));
  t.false(sameSamples(a, samplesFor([0])));
  t.false(sameSamples(a, [{ gpu: 0, util: 1, memUsedMiB: 0, memTotalMiB: 0 }, a[1]!]));
});

test('the sampler reads the injected file at every sample; a bad file gives zeros and one warning', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crane-usage-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'usage.json');
  const warnings: string[] = [];
  const s = new GpuUsageSampler({ gpus: [0, 1], detected: false, file, log: { warn: (_o, m) => warnings.push(m) } });
  writeFileSync(file, '{"1": {"util": 42, "memUsedMiB": 7, "memTotalMiB": 100}}');
  t.deepEqual(await s.sample(), [
    { gpu: 0, util: 0, memUsedMiB: 0, memTotalMiB: 0 },
    { gpu: 1, util: 42, memUsedMiB: 7, memTotalMiB: 100 },
  ]);
  writeFileSync(file, '{"0": {"util": 9}}');
  t.is((await s.sample())[0]!.util, 9);
  writeFileSync(file, 'garbage');
  t.deepEqual(await s.sample(), samplesFor([0, 1]));
  t.deepEqual(await s.sample(), samplesFor([0, 1]));
  t.is(warnings.length, 1);
});

test('declared GPUs (not detected) report zeros without asking nvidia-smi', async (t) => {
  const s = new GpuUsageSampler({ gpus: [0, 1, 2], detected: false, log: { warn: () => t.fail() } });
  t.deepEqual(await s.sample(), samplesFor([0, 1, 2]));
});
