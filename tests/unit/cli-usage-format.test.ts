import test from 'ava';
import type { JobUsage, UsageReport } from '../../actors/protocol.js';
import { localIso } from '../../cli/format.js';
import { gpuHours, gpuSecs, jobUsageText, reportText, resourceUsageText } from '../../cli/usage-format.js';

test('GPU-hours and GPU-seconds', (t) => {
  t.is(gpuHours(0), '0.000');
  t.is(gpuHours(36), '0.010');
  t.is(gpuHours(7200), '2.000');
  t.is(gpuHours(3600 * 250.04), '250.0');
  t.is(gpuSecs(6.44), '6.4');
  t.is(gpuSecs(1234.6), '1235');
});

test('job usage: NODE GPU CONTAINER UTIL MEM, then the GPU-seconds', (t) => {
  const u: JobUsage = {
    id: 'x',
    name: 'train',
    user: 'alice',
    state: 'RUNNING',
    gpuSeconds: 90,
    gpus: [
      { node: 'n1', gpu: 0, container: 'abc-am', util: 87, memUsedMiB: 1200, memTotalMiB: 16384, sampledAt: 'x' },
      { node: 'n1', gpu: 1 },
    ],
  };
  t.is(
    jobUsageText(u),
    ['NODE   GPU   CONTAINER   UTIL   MEM', 'n1     0     abc-am      87%    1200 / 16384 MiB', 'n1     1     -           -      -', '', 'GPU-seconds: 90.0 (0.025 GPU-hours)'].join('\n'),
  );
  t.is(jobUsageText({ ...u, state: 'DONE', gpus: [] }), 'Job train is DONE: it holds no GPUs now.\n\nGPU-seconds: 90.0 (0.025 GPU-hours)');
});

const report: UsageReport = {
  since: '2024-05-01T00:00:00.000Z',
  until: '2024-05-02T00:00:00.000Z',
  totalGpuSeconds: 7200,
  users: [
    { user: 'alice', gpuSeconds: 5400, jobs: 2, share: 0.75 },
    { user: 'bob', gpuSeconds: 1800, jobs: 1, share: 0.25 },
  ],
  jobs: [
    { id: '1', name: 'a1', user: 'alice', gpuSeconds: 3600, state: 'DONE' },
    { id: '2', name: 'b1', user: 'bob', gpuSeconds: 1800, removed: true },
    { id: '3', name: 'a2', user: 'alice', gpuSeconds: 1800, state: 'RUNNING' },
  ],
};

test('resource usage: per user; -v per job', (t) => {
  const since = localIso(new Date(report.since!));
  const text = resourceUsageText(report, false);
  t.is(text, [`GPU usage since ${since}:`, 'USER    GPU-HOURS   GPU-SECONDS   JOBS', 'alice   1.500       5400          2', 'bob     0.500       1800          1'].join('\n'));
  const v = resourceUsageText(report, true);
  t.regex(v, /\nJOB +USER +STATE +GPU-HOURS +GPU-SECONDS\na1 +alice +DONE +1\.000 +3600\nb1 +bob +removed +0\.500 +1800\na2 +alice +RUNNING/);
  t.is(resourceUsageText({ ...report, since: undefined, users: [], jobs: [] }, false), 'No GPU usage since the first job.');
});

test('report: total, then per user GPU-hours, share and jobs', (t) => {
  const text = reportText(report, false).split('\n');
  t.is(text[0], `GPU-time since ${localIso(new Date(report.since!))} until ${localIso(new Date(report.until))}: 2.000 GPU-hours (7200 GPU-seconds)`);
  t.regex(text[1]!, /^USER +GPU-HOURS +GPU-SECONDS +SHARE +JOBS$/);
  t.regex(text[2]!, /^alice +1\.500 +5400 +75\.0% +2$/);
  t.regex(text[3]!, /^bob +0\.500 +1800 +25\.0% +1$/);
  t.regex(reportText({ ...report, users: [], jobs: [], totalGpuSeconds: 0 }, false), /\nNo jobs held GPUs in this window\.$/);
});
