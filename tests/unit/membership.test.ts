import test from 'ava';
import { checkVersion, decodeToken, encodeToken, joinCommand, natsConfig, parseSeed, type Member } from '../../actors/admin/membership.js';

const manager: Member = {
  cluster: 'c1', node: 'h1', role: 'manager', user: 'crane', secret: 's3cr3t', leafPort: 7422, advertise: '10.0.0.5',
  gpus: [0, 1], hostJobs: true, version: '0.1.0', joinedAt: '2026-01-01T00:00:00Z',
};

test('a join token round-trips and carries the version, cluster and bus credentials', (t) => {
  const tok = encodeToken({ v: '0.1.0', cluster: 'c1', user: 'crane', secret: 's3cr3t' });
  t.regex(tok, /^crane1\.[A-Za-z0-9_-]+$/);
  t.deepEqual(decodeToken(tok), { v: '0.1.0', cluster: 'c1', user: 'crane', secret: 's3cr3t' });
  t.is(joinCommand(manager), `craneadm join ${tok} 10.0.0.5:7422`);
});

test('anything else is an invalid token, in one line', (t) => {
  for (const bad of ['', 'crane1.', 'crane2.eyJ9', 'crane1.!!!', `crane1.${Buffer.from('{"v":1}').toString('base64url')}`, 'hello']) {
    t.throws(() => decodeToken(bad), { message: 'invalid join token: copy the whole token that craneadm init printed' });
  }
});

test('a token from another Crane version is refused naming both', (t) => {
  t.throws(() => checkVersion({ v: '9.9.9', cluster: 'c', user: 'u', secret: 's' }, '0.1.0'), {
    message: 'this host runs Crane 0.1.0 but the cluster runs 9.9.9: install Crane 9.9.9 here first',
  });
  t.notThrows(() => checkVersion({ v: '0.1.0', cluster: 'c', user: 'u', secret: 's' }, '0.1.0'));
});

test('the manager address is HOST:PORT', (t) => {
  t.deepEqual(parseSeed('10.0.0.5:7422'), { host: '10.0.0.5', port: 7422 });
  t.deepEqual(parseSeed('host1:7422'), { host: 'host1', port: 7422 });
  for (const bad of ['10.0.0.5', ':7422', 'h:0', 'h:70000', 'a b:1']) t.throws(() => parseSeed(bad), { message: /^invalid address/ });
});

test('the manager runs JetStream and a leaf-node hub; a worker is a leaf node with the credentials', (t) => {
  const m = natsConfig(manager, { jetstreamDir: '/var/lib/crane/state/jetstream' });
  t.regex(m, /^jetstream \{ store_dir: "\/var\/lib\/crane\/state\/jetstream" \}$/m);
  t.regex(m, /^leafnodes \{ listen: "0\.0\.0\.0:7422", authorization \{ user: "crane", password: "s3cr3t" \} \}$/m);
  const w = natsConfig({ ...manager, role: 'worker', node: 'h2', seed: '10.0.0.5:7422' }, { jetstreamDir: '/x' });
  t.false(w.includes('jetstream'));
  t.regex(w, /nats-leaf:\/\/crane:s3cr3t@10\.0\.0\.5:7422/);
  t.regex(w, /^server_name: "h2"$/m);
});
