/**
 * The log store on a real nats-server with JetStream: a log store that starts after another one
 * (a manager taking over) answers `crane job log` with every line the stream holds, at once.
 */
import test from 'ava';
import { ActorSystem } from '../../bus/actor.js';
import { openStreamReader } from '../../bus/stream.js';
import { subjects } from '../../bus/subjects.js';
import { logStoreSpec } from '../../actors/cluster-manager/log-store.js';
import type { LogLine } from '../../actors/protocol.js';
import { startNats } from '../helpers/nats.js';

const LINES = 3_000;

async function read(system: ActorSystem, cluster: string, job: string): Promise<LogLine[]> {
  const sub = subjects(cluster);
  const reader = openStreamReader(system.nc, sub.inbox);
  await system.ask(sub.logstore('read'), 'read', { job, follow: false, ended: true }, { cause: { trace: 't', stream: reader.inbox }, timeout: 10_000 });
  const out: LogLine[] = [];
  for await (const l of reader.items) out.push(l as LogLine);
  return out;
}

test('a log store that takes over answers with every stored line, not with what it replayed so far', async (t) => {
  const nats = await startNats();
  const cluster = 'logs1';
  const sub = subjects(cluster);
  const first = new ActorSystem(await nats.connect('first'), 'first');
  let second: ActorSystem | undefined;
  try {
    await first.spawn(logStoreSpec({ cluster, persist: { nc: first.nc } }));
    for (let i = 0; i < LINES; i++) first.tell(sub.log('job1', 'c1'), 'log', { t: Date.now(), src: 'stdout', line: `line ${i}`, container: 'c1' });
    const end = Date.now() + 15_000;
    while ((await read(first, cluster, 'job1')).length < LINES && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    await first.stop();

    second = new ActorSystem(await nats.connect('second'), 'second');
    await second.spawn(logStoreSpec({ cluster, persist: { nc: second.nc } }));
    const lines = await read(second, cluster, 'job1');
    t.is(lines.length, LINES);
    t.is(lines.at(-1)?.line, `line ${LINES - 1}`);
  } finally {
    await second?.stop();
    await first.stop().catch(() => {});
    await nats.teardown();
  }
});
