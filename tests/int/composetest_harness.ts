// Compose script (run by dcompose-entry in the runner; see compose.test.ts): the three hosts run
// Crane's binaries, know their names, and reach each other by service name.
import { assert, eventually, hostIp, onHost, onHostOk } from '../helpers/compose-host.js';

const HOSTS = ['host1', 'host2', 'host3'];

export default async function main(): Promise<void> {
  await Promise.all(
    HOSTS.map(async (h) => {
      assert.match(await onHostOk(h, ['craneadm', '--version']), /^craneadm\/\d/);
      assert.match(await onHostOk(h, ['nats-server', '--version']), /^nats-server: v2\./);
      assert.equal((await onHostOk(h, ['hostname'])).trim(), h);
    }),
  );
  // stdin and a non-zero exit code come through; stdout and stderr stay apart.
  const r = await onHost('host1', ['sh', '-c', 'cat; echo oops >&2; exit 3'], { input: 'typed\n', env: { X: '1' } });
  assert.deepEqual(r, { code: 3, stdout: 'typed\n', stderr: 'oops\n' });
  assert.match(await hostIp('host2'), /^\d+\.\d+\.\d+\.\d+$/);

  // A nats-server on host2, reached from host1 by name: its first line is INFO {...}.
  await onHostOk('host2', ['sh', '-c', 'nats-server -p 4222 >/tmp/nats.log 2>&1 &']);
  const probe = `const s = require('net').connect(4222, 'host2');
s.on('data', (d) => { process.stdout.write(String(d).split('\\n')[0]); process.exit(0); });
s.on('error', (e) => { console.error(e.message); process.exit(1); });`;
  const info = await eventually(() => onHostOk('host1', ['node', '-e', probe]), 10_000, 300);
  assert.match(info, /^INFO \{.*"server_id"/);
  console.log('harness: 3 hosts ok; host1 reached nats-server on host2');
}
