/**
 * What the compose `runner` service runs (compose-files/runner.yml): imports the compiled test
 * script named by DCOMPOSE_TEST_SCRIPT (relative to dist/, e.g. tests/int/composetest_harness.js)
 * and awaits its default export if it is a function. Exit 0 if that resolves, 1 with the error
 * printed if it throws, 2 if DCOMPOSE_TEST_SCRIPT is missing.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const distRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const script = process.env.DCOMPOSE_TEST_SCRIPT;
if (!script) {
  console.error('dcompose-entry: DCOMPOSE_TEST_SCRIPT is not set (a path relative to dist/)');
  process.exit(2);
}
const started = Date.now();
try {
  const mod = (await import(pathToFileURL(resolve(distRoot, script)).href)) as { default?: unknown };
  if (typeof mod.default === 'function') await (mod.default as () => unknown)();
  console.log(`dcompose-entry: ${script} passed in ${Date.now() - started} ms`);
  process.exit(0);
} catch (e) {
  console.error(`dcompose-entry: ${script} failed after ${Date.now() - started} ms:`);
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
}
