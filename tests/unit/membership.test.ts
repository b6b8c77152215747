import test from 'ava';
import { checkVersion, decodeToken, demoted, encodeToken, hostAddress, joinCommand, natsConfig, parseSeed, promoted, serverName, withManagerChange, type Member } from '../../actors/admin/membership.js';
import { parseNatsVersion, supportsSyncAlways } from '../../bus/nats-server.js';

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
  t.regex(m, /^leafnodes \{ listen: "0\.0\.0\.0:7422", advertise: "10\.0\.0\.5:7422", authorization \{ user: "crane", password: "s3cr3t", account: "CRANE" \} \}$/m);
  t.regex(m, /^ {2}CRANE: \{ jetstream: enabled, users: \[ \{ user: "crane", password: "s3cr3t" \} \] \}$/m);
  t.regex(m, /^ {2}SYS: \{ users: \[ \{ user: "crane-sys", password: "s3cr3t" \} \] \}$/m);
  t.false(m.includes('cluster {'), 'one manager: no routes');
  const w = natsConfig({ ...manager, role: 'worker', node: 'h2', seed: '10.0.0.5:7422' }, { jetstreamDir: '/x' });
  t.false(w.includes('jetstream'));
  t.regex(w, /remotes: \[ \{ urls: \["nats-leaf:\/\/crane:s3cr3t@10\.0\.0\.5:7422"\], account: "CRANE" \} \]/);
  t.regex(w, /^server_name: "h2"$/m);
});

test('a demoted manager knows every manager; a promoted one routes to all of them under a new server name', (t) => {
  const w = natsConfig({ ...manager, role: 'worker', seed: '10.0.0.6:7422', seeds: ['10.0.0.6:7422', '10.0.0.7:7422'] }, { jetstreamDir: '/x' });
  t.regex(w, /urls: \["nats-leaf:\/\/crane:s3cr3t@10\.0\.0\.6:7422", "nats-leaf:\/\/crane:s3cr3t@10\.0\.0\.7:7422"\]/);
  const p = natsConfig(
    { ...manager, node: 'h3', ha: true, routePort: 6222, seedRoute: '10.0.0.5:6222', routes: ['10.0.0.5:6222', '10.0.0.6:6222'], serverName: 'h3-1a2b3c' },
    { jetstreamDir: '/x' },
  );
  t.regex(p, /^server_name: "h3-1a2b3c"$/m);
  t.regex(p, /routes: \["nats-route:\/\/crane:s3cr3t@10\.0\.0\.5:6222", "nats-route:\/\/crane:s3cr3t@10\.0\.0\.6:6222"\] \}$/m);
  t.is(serverName({ node: 'h1' }), 'h1');
  // The first manager of an HA cluster routes to itself.
  t.regex(natsConfig({ ...manager, ha: true, routePort: 6222 }, { jetstreamDir: '/x' }), /routes: \["nats-route:\/\/crane:s3cr3t@10\.0\.0\.5:6222"\]/);
});

test('JetStream fsyncs every write only where nats-server supports it (2.10+)', (t) => {
  t.regex(natsConfig(manager, { jetstreamDir: '/j', syncAlways: true }), /^jetstream \{ store_dir: "\/j", sync_interval: always \}$/m);
  t.false(natsConfig(manager, { jetstreamDir: '/j' }).includes('sync_interval'));
  t.deepEqual(parseNatsVersion('nats-server: v2.9.10\n'), [2, 9, 10]);
  t.false(supportsSyncAlways(parseNatsVersion('nats-server: v2.9.10')));
  t.true(supportsSyncAlways(parseNatsVersion('nats-server: v2.10.0')));
  t.true(supportsSyncAlways(parseNatsVersion('nats-server: v3.0.1')));
  t.false(supportsSyncAlways(parseNatsVersion('command not found')));
});

const ha: Member = { ...manager, ha: true, routePort: 6222 };
const worker: Member = { ...manager, node: 'h2', role: 'worker', ha: true, seed: '10.0.0.5:7422', seedRoute: '10.0.0.5:6222', leafPort: 7422, routePort: 6222, advertise: undefined };

test('a promoted worker routes to every manager and the route its token carried, under a new server name', (t) => {
  const m = promoted(worker, [hostAddress(ha), { node: 'h3', role: 'manager', advertise: '10.0.0.7', leafPort: 7422, routePort: 6223 }], { advertise: '10.0.0.6', suffix: 'ab12cd' });
  t.like(m, { role: 'manager', ha: true, advertise: '10.0.0.6', leafPort: 7422, routePort: 6222, seedRoute: '10.0.0.5:6222', serverName: 'h2-ab12cd' });
  t.deepEqual(m.routes, ['10.0.0.5:6222', '10.0.0.7:6223']);
  t.is(m.seed, undefined);
  t.is(promoted({ ...worker, advertise: '192.168.1.2' }, [], { advertise: '10.0.0.6', suffix: 'x' }).advertise, '192.168.1.2', '--advertise at join wins');
  t.throws(() => promoted({ ...worker, seedRoute: undefined }, [], { advertise: '10.0.0.6', suffix: 'x' }), { message: /^no manager host told its route address/ });
});

test('a demoted manager is a leaf node of the other managers', (t) => {
  const m = demoted({ ...ha, serverName: 'h1-x', routes: ['10.0.0.6:6222'] }, [hostAddress(ha), { node: 'h2', role: 'manager', advertise: '10.0.0.6', leafPort: 7422, routePort: 6222 }]);
  t.like(m, { role: 'worker', seed: '10.0.0.6:7422', routes: undefined, serverName: undefined, advertise: '10.0.0.5', routePort: 6222 });
  t.deepEqual(m.seeds, ['10.0.0.6:7422']);
  t.throws(() => demoted(ha, [hostAddress(ha)]), { message: /^no other manager host told its address/ });
});

test('the other hosts note a promotion or demotion for their next start', (t) => {
  const a = { node: 'h3', role: 'manager' as const, advertise: '10.0.0.7', leafPort: 7422, routePort: 6222 };
  t.deepEqual(withManagerChange({ ...ha, routes: undefined }, { promoted: a }).routes, ['10.0.0.7:6222']);
  t.deepEqual(withManagerChange({ ...ha, routes: ['10.0.0.7:6222'] }, { demoted: a }).routes, []);
  const w = withManagerChange(worker, { promoted: a });
  t.deepEqual([w.seed, w.seeds], ['10.0.0.5:7422', ['10.0.0.5:7422', '10.0.0.7:7422']]);
  const w2 = withManagerChange(w, { demoted: { ...hostAddress(ha) } });
  t.deepEqual([w2.seed, w2.seeds], ['10.0.0.7:7422', ['10.0.0.7:7422']]);
  // Its only manager demoted: a worker keeps the address it has (the hub tells it the others).
  t.is(withManagerChange({ ...worker, seeds: undefined }, { demoted: hostAddress(ha) }).seed, '10.0.0.5:7422');
});
