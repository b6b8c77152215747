/**
 * The cluster manager of bench/bus-scale.ts in its own process, as in a pseudocluster, with its
 * state in memory (no JetStream store):
 *   node --expose-gc dist/bench/cm-proc.js BUS_URL CLUSTER
 * Prints `ready` once its actor runs. Its scheduler passes are timed by wrapping its schedule()
 * and elastic() methods (measurement only: the code that runs is the cluster manager's own). A
 * line on stdin asks for figures, answered with one JSON line on stdout:
 *   mark    the number of passes so far (a phase starts)
 *   stats   {at, passes, elastic} since the last mark: when each pass began (ms since the epoch),
 *           its time and its elastic phase's (ms)
 *   memory  {rss, heap} in MiB after a full collection
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { createInterface } from 'node:readline';
import { ActorSystem } from '../bus/actor.js';
import { connectBus } from '../bus/connect.js';
import { subjects } from '../bus/subjects.js';
import { clusterManagerSpec } from '../actors/cluster-manager/cluster-manager.js';
import { ClusterState } from '../actors/cluster-manager/state.js';

const [busUrl, cluster] = process.argv.slice(2) as [string, string];
const nc = await connectBus(busUrl, 'bench-cluster-manager', subjects(cluster).inbox);
const system = new ActorSystem(nc, 'bench-cluster-manager');

/** Per pass: when it started (ms since the epoch, comparable between processes), its time and its elastic phase's. */
const passAt: number[] = [];
const passMs: number[] = [];
const elasticMs: number[] = [];
let mark = 0;
const spec = clusterManagerSpec({ cluster, state: ClusterState.withRoot('x'), nodeTimeoutMs: 30_000 });
const factory = spec.factory;
spec.factory = () => {
  const cm = factory() as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const [name, into] of [
    ['schedule', passMs],
    ['elastic', elasticMs],
  ] as const) {
    const f = cm[name]!.bind(cm);
    cm[name] = (...a: unknown[]) => {
      const t = performance.now();
      if (name === 'schedule') passAt.push(performance.timeOrigin + t);
      try {
        return f(...a);
      } finally {
        into.push(performance.now() - t);
      }
    };
  }
  return cm as never;
};
await system.spawn(spec);

// BENCH_CM_PROFILE=FILE: a CPU profile of the stream phase alone (from 'mark' to 'stats').
const profile = process.env.BENCH_CM_PROFILE ? new Session() : undefined;
profile?.connect();
profile?.post('Profiler.enable');
const reply = (x: unknown) => process.stdout.write(`${JSON.stringify(x)}\n`);
createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = line.trim();
  if (cmd === 'mark') {
    mark = passMs.length;
    if (profile) profile.post('Profiler.start');
    reply({ passes: mark });
  } else if (cmd === 'stats') {
    if (profile) profile.post('Profiler.stop', (_e, r) => writeFileSync(process.env.BENCH_CM_PROFILE!, JSON.stringify(r.profile)));
    reply({ at: passAt.slice(mark), passes: passMs.slice(mark), elastic: elasticMs.slice(mark) });
  }
  else if (cmd === 'memory') {
    global.gc?.();
    const m = process.memoryUsage();
    reply({ rss: m.rss / 2 ** 20, heap: m.heapUsed / 2 ** 20 });
  }
});
// process.exit() still writes a --cpu-prof profile.
process.on('SIGTERM', () => void system.stop().then(() => nc.close()).then(() => process.exit(0)));
reply('ready');
