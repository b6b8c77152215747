/**
 * Simulated node managers for bench/bus-scale.ts: real node-manager actors on the real bus, whose
 * containers are simulated (image `sim`, command `sleep SECONDS`: they exit 0 after that long).
 *   node dist/bench/sim-nodes.js BUS_URL CLUSTER FIRST COUNT GPUS
 */
import { ActorSystem } from '../bus/actor.js';
import { connectBus } from '../bus/connect.js';
import { subjects } from '../bus/subjects.js';
import { nodeManagerSpec } from '../actors/node-manager/node-manager.js';
import type { ContainerRuntime, RuntimeHooks } from '../actors/node-manager/runtime.js';
import type { RunRequest } from '../actors/protocol.js';

class SimRuntime implements ContainerRuntime {
  private readonly timers = new Map<string, { t: NodeJS.Timeout; hooks: RuntimeHooks }>();
  async start(req: RunRequest, hooks: RuntimeHooks): Promise<void> {
    const s = Number(/sleep ([\d.]+)/.exec(req.config.cmd ?? '')?.[1] ?? 1);
    const t = setTimeout(() => {
      this.timers.delete(req.container);
      hooks.onExit(0);
    }, s * 1000);
    this.timers.set(req.container, { t, hooks });
  }
  async kill(container: string): Promise<void> {
    const x = this.timers.get(container);
    if (!x) return;
    clearTimeout(x.t);
    this.timers.delete(container);
    x.hooks.onExit(137, 'SIGKILL');
  }
  async canRun() {
    return { ok: true as const };
  }
  running(): string[] {
    return [...this.timers.keys()];
  }
  async reapOrphans(): Promise<number> {
    return 0;
  }
}

const [busUrl, cluster, first, count, gpus] = process.argv.slice(2) as [string, string, string, string, string];
const nc = await connectBus(busUrl, `sim-nodes-${first}`, subjects(cluster).inbox);
const system = new ActorSystem(nc, `sim-nodes-${first}`);
const indices = Array.from({ length: Number(gpus) }, (_, i) => i);
for (let i = Number(first); i < Number(first) + Number(count); i++) {
  const runtime = new SimRuntime();
  await system.spawn(nodeManagerSpec({ cluster, name: `sim-${i}`, gpus: indices, hostJobs: false, docker: runtime }));
}
process.stdout.write('ready\n');
process.on('SIGTERM', () => void system.stop().then(() => nc.close()).then(() => process.exit(0)));
