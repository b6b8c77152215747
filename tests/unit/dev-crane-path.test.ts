import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { checkDevCranePath, REPO_ROOT } from '../helpers/dcompose.js';

test('--dev-crane-path takes an absolute path to a built checkout, and refuses anything else in one line', (t) => {
  t.is(checkDevCranePath(REPO_ROOT), REPO_ROOT);
  t.throws(() => checkDevCranePath('./crane'), { message: "--dev-crane-path must be an absolute path, not './crane' (try $PWD/crane)" });
  t.throws(() => checkDevCranePath('/no/such/crane'), { message: '--dev-crane-path /no/such/crane: no such directory' });
  const dir = mkdtempSync(join(tmpdir(), 'crane-dev-'));
  try {
    t.throws(() => checkDevCranePath(dir), { message: `--dev-crane-path ${dir}: not a built Crane checkout (no dist/cli/craneadm.js: run just build there)` });
    writeFileSync(join(dir, 'file'), '');
    t.throws(() => checkDevCranePath(join(dir, 'file')), { message: /no such directory$/ });
    mkdirSync(join(dir, 'dist', 'cli'), { recursive: true });
    writeFileSync(join(dir, 'dist', 'cli', 'craneadm.js'), '');
    t.is(checkDevCranePath(dir), dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
