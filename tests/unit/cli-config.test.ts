import test from 'ava';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, resolveTarget, resolveToken, saveConfig, validateEndpoint, type CraneConfig } from '../../cli/config.js';
import { configPath, craneHome, localSockets, STANDARD_SOCKETS } from '../../cli/paths.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'crane-cli-'));

test('paths follow CRANE_HOME and XDG_CONFIG_HOME', (t) => {
  t.is(craneHome({ CRANE_HOME: '/x/h' }), '/x/h');
  t.deepEqual(localSockets({ CRANE_HOME: '/x/h' }), { cli: '/x/h/crane-cli.sock', adm: '/x/h/crane-adm.sock' });
  t.is(configPath({ XDG_CONFIG_HOME: '/cfg' }), '/cfg/crane/config.json');
  t.regex(configPath({}), /\/\.config\/crane\/config\.json$/);
  t.regex(craneHome({}), /\/\.crane$/);
});

test('config: missing file is empty; save is 0600 in a created dir; round-trip', (t) => {
  const path = join(tmp(), 'sub', 'crane', 'config.json');
  t.deepEqual(loadConfig(path), { tokens: {} });
  const cfg: CraneConfig = { endpoint: 'local', tokens: { 'unix:/s': { token: 'tk', username: 'u', expiresAt: 'e' } } };
  saveConfig(cfg, path);
  t.is(statSync(path).mode & 0o777, 0o600);
  t.deepEqual(loadConfig(path), cfg);
});

test('config: a broken file is a clear error', (t) => {
  const path = join(tmp(), 'config.json');
  writeFileSync(path, '{nope');
  t.throws(() => loadConfig(path), { message: new RegExp(`^invalid config file ${path}: `) });
  writeFileSync(path, '[]');
  t.throws(() => loadConfig(path), { message: `invalid config file ${path}: not a JSON object` });
  writeFileSync(path, '{"endpoint":"standard"}');
  t.deepEqual(loadConfig(path), { endpoint: 'standard', tokens: {} });
  t.true(readFileSync(path, 'utf8').length > 0);
});

test('validateEndpoint', (t) => {
  for (const ok of ['standard', 'local', '10.0.0.5:7070', '127.0.0.1:1', '[::1]:65535']) t.is(validateEndpoint(ok), ok);
  for (const bad of ['', 'remote', '10.0.0.5', '10.0.0.5:0', '10.0.0.5:65536', '300.0.0.1:80', 'host:80', '::1:80', 'http://1.2.3.4:80']) {
    t.throws(() => validateEndpoint(bad), { message: /^invalid endpoint/ });
  }
});

test('resolveTarget precedence: flag > env > --use-local-crane > config > default', (t) => {
  const home = tmp();
  const env = { CRANE_HOME: home };
  const cfg: CraneConfig = { endpoint: '10.0.0.5:7070', admEndpoint: 'standard', tokens: {} };
  const local = localSockets(env);

  t.like(resolveTarget('cli', { socketPath: '/a.sock', useLocalCrane: true }, cfg, { ...env, CRANE_SOCKET: '/b.sock' }), {
    socketPath: '/a.sock',
    key: 'unix:/a.sock',
    source: '--socket-path',
  });
  t.like(resolveTarget('cli', { useLocalCrane: true }, cfg, { ...env, CRANE_SOCKET: '/b.sock' }), { socketPath: '/b.sock', source: 'CRANE_SOCKET' });
  t.like(resolveTarget('adm', {}, cfg, { ...env, CRANE_ADM_SOCKET: '/c.sock', CRANE_SOCKET: '/b.sock' }), { socketPath: '/c.sock' });
  t.like(resolveTarget('cli', { useLocalCrane: true }, cfg, env), { socketPath: local.cli });
  t.like(resolveTarget('cli', {}, cfg, env), { host: '10.0.0.5', port: 7070, address: '10.0.0.5:7070', key: 'tcp:10.0.0.5:7070' });
  t.like(resolveTarget('adm', {}, cfg, env), { socketPath: STANDARD_SOCKETS.adm });
  // No config and no socket yet: the local one (the one craneadm standalone would create).
  t.like(resolveTarget('cli', {}, { tokens: {} }, env), { socketPath: localSockets(env).cli });
  writeFileSync(local.cli, '');
  t.like(resolveTarget('cli', {}, { tokens: {} }, env), { socketPath: local.cli });
  t.like(resolveTarget('cli', {}, { endpoint: 'local', tokens: {} }, env), { socketPath: local.cli });
});

test('resolveToken: CRANE_TOKEN > the token stored for the endpoint', (t) => {
  const cfg: CraneConfig = { tokens: { 'unix:/a.sock': { token: 'stored', username: 'u', expiresAt: '' } } };
  const target = resolveTarget('cli', { socketPath: '/a.sock' }, cfg, {});
  t.is(resolveToken(target, cfg, {}), 'stored');
  t.is(resolveToken(target, cfg, { CRANE_TOKEN: 'env' }), 'env');
  t.is(resolveToken(resolveTarget('cli', { socketPath: '/other.sock' }, cfg, {}), cfg, {}), undefined);
});
